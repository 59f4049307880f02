"""Frame-level scores and AUC against hand-computed cases."""

import numpy as np
import pytest

from gclvad.errors import GclvadError
from gclvad.evaluation.metrics import EvaluationError, frame_auc
from gclvad.scoring.frames import segment_to_frame_scores


def test_every_frame_gets_its_segments_score_and_the_padded_tail_is_cut():
    frames = segment_to_frame_scores(np.array([0.1, 0.5, 0.9]), frames=40, segment_length=16)
    assert frames.shape == (40,)
    assert (frames[:16] == 0.1).all() and (frames[16:32] == 0.5).all() and (frames[32:] == 0.9).all()
    exact = segment_to_frame_scores(np.array([1.0, 2.0]), frames=32, segment_length=16)
    assert exact.tolist() == [1.0] * 16 + [2.0] * 16


def test_segment_count_must_match_the_frame_count():
    with pytest.raises(GclvadError, match="40 frames in segments of 16 has 3 segments, but 2"):
        segment_to_frame_scores(np.array([0.1, 0.5]), frames=40, segment_length=16)
    with pytest.raises(GclvadError, match="has 2 segments, but 3"):
        segment_to_frame_scores(np.array([0.1, 0.5, 0.9]), frames=32, segment_length=16)


def test_frame_auc_concatenates_videos_and_matches_a_hand_count():
    # Frames over both videos: anomalous scores {0.35, 0.8, 0.6}, normal {0.1, 0.4, 0.7}.
    # Pairs (anomalous > normal): 0.35 beats 1, 0.8 beats 3, 0.6 beats 2 -> 6 of 9.
    scores = {"a": np.array([0.1, 0.4, 0.35, 0.8]), "b": np.array([0.7, 0.6]), "c": np.array([0.0, 1.0])}
    truths = {"a": np.array([0, 0, 1, 1], bool), "b": np.array([0, 1], bool), "c": None}
    assert frame_auc(scores, truths) == pytest.approx(6 / 9)
    # a tie counts one half
    assert frame_auc({"v": np.array([0.5, 0.5, 0.9])}, {"v": np.array([0, 1, 1], bool)}) == pytest.approx(0.75)


def test_frame_auc_needs_both_classes_and_matching_lengths():
    with pytest.raises(EvaluationError, match="only normal frames"):
        frame_auc({"a": np.array([0.1, 0.2])}, {"a": np.array([0, 0], bool)})
    with pytest.raises(EvaluationError, match="video a: 3 frame scores but 2 ground-truth frames"):
        frame_auc({"a": np.array([0.1, 0.2, 0.3])}, {"a": np.array([0, 1], bool)})
    with pytest.raises(EvaluationError, match="no scored video has frame-level ground truth"):
        frame_auc({"a": np.array([0.1])}, {"b": np.array([1], bool)})


def test_the_fields_metrics_by_hand():
    from gclvad.evaluation.metrics import frame_metrics

    # a: anomalous video (2 of 4 frames), b: normal, c: anomalous with both classes, d: no truth
    scores = {
        "a": np.array([0.1, 0.4, 0.35, 0.8]),
        "b": np.array([0.7, 0.2, 0.6]),
        "c": np.array([0.3, 0.9]),
        "d": np.array([0.99]),
    }
    truths = {"a": np.array([0, 0, 1, 1], bool), "b": np.zeros(3, bool), "c": np.array([0, 1], bool), "d": None}
    metrics = frame_metrics(scores, truths)
    frames = np.concatenate([scores[v] for v in "abc"])
    labels = np.concatenate([truths[v] for v in "abc"])
    assert metrics["auc"] == pytest.approx(frame_auc(scores, truths))
    # average precision as sklearn defines it: precision at each anomalous frame, ranked by score
    ranked = labels[np.argsort(-frames, kind="stable")]
    precision_at_hits = [ranked[: i + 1].mean() for i in np.flatnonzero(ranked)]
    assert metrics["average_precision"] == pytest.approx(np.mean(precision_at_hits))
    # AUC_A: frames of a and c only. Anomalous {0.35, 0.8, 0.9} vs normal {0.1, 0.4, 0.3}: 8 of 9 pairs
    assert metrics["auc_anomalous_videos"] == pytest.approx(8 / 9)
    # macro: a (0.35 beats 0.1 only, 0.8 beats both: 3 of 4) and c (1 of 1)
    assert metrics["macro_auc"] == pytest.approx((3 / 4 + 1) / 2) and metrics["macro_auc_videos"] == 2
    # false alarms: frames of the normal video b at >= 0.5: 0.7 and 0.6 of 3
    assert metrics["false_alarm_rate"] == pytest.approx(2 / 3) and metrics["false_alarm_threshold"] == 0.5
    # not probabilities (G's errors): no false-alarm rate is claimed
    assert frame_metrics(scores, truths, false_alarm_threshold=None)["false_alarm_rate"] is None
    # no anomalous video with a normal frame: those metrics are None, not a number
    only_normal = frame_metrics({"a": scores["a"], "b": scores["b"]}, {"a": truths["a"], "b": truths["b"]})
    assert only_normal["auc_anomalous_videos"] == pytest.approx(3 / 4)
    everything_anomalous = frame_metrics(
        {"x": np.array([0.2, 0.9]), "b": scores["b"]}, {"x": np.ones(2, bool), "b": truths["b"]}
    )
    assert everything_anomalous["auc_anomalous_videos"] is None and everything_anomalous["macro_auc"] is None
