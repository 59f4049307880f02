"""Frame-level scores and AUC against hand-computed cases."""

import numpy as np
import pytest

from gclvad.evaluate import EvaluationError, frame_auc, segment_to_frame_scores


def test_every_frame_gets_its_segments_score_and_the_padded_tail_is_cut():
    frames = segment_to_frame_scores(np.array([0.1, 0.5, 0.9]), frames=40, segment_length=16)
    assert frames.shape == (40,)
    assert (frames[:16] == 0.1).all() and (frames[16:32] == 0.5).all() and (frames[32:] == 0.9).all()
    exact = segment_to_frame_scores(np.array([1.0, 2.0]), frames=32, segment_length=16)
    assert exact.tolist() == [1.0] * 16 + [2.0] * 16


def test_segment_count_must_match_the_frame_count():
    with pytest.raises(EvaluationError, match="40 frames in segments of 16 has 3 segments, but 2"):
        segment_to_frame_scores(np.array([0.1, 0.5]), frames=40, segment_length=16)
    with pytest.raises(EvaluationError, match="has 2 segments, but 3"):
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


