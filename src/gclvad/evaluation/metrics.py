"""Frame-level evaluation: the metrics the field reports, on frame scores (gclvad.scoring.frames).

Protocol (paper §4 "Evaluation Measures"): every frame of a segment gets its segment's
score; the area under the ROC curve is computed over the frames of all scored test videos
concatenated (micro AUC, not averaged per video: the headline). Videos without frame ground
truth are left out. Beside it (`frame_metrics`), as the field reports them:
    average_precision      sklearn's average_precision_score over the same frames (the
                           XD-Violence headline; not the trapezoid of the PR curve)
    auc_anomalous_videos   micro AUC over the frames of the test videos that hold an anomaly
                           only (UCF-Crime's "AUC_A")
    macro_auc              mean of the per-video AUCs over test videos holding both classes
    false_alarm_rate       share of the frames of normal test videos scoring >= a stated
                           threshold (0.5 on D's probability, as Sultani et al.)
Per-epoch AUC curves computed with these functions are diagnostics only: they look at test
labels, so nothing may be tuned on them.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

from gclvad.errors import GclvadError


class EvaluationError(GclvadError):
    """Scores and ground truth that cannot be compared (lengths, missing classes)."""


def concatenated_frames(scores: Mapping, truths: Mapping) -> tuple[np.ndarray, np.ndarray]:
    """All frames of the videos that have both a score and a ground truth, in a fixed order."""
    videos = [v for v in scores if truths.get(v) is not None]
    if not videos:
        raise EvaluationError("no scored video has frame-level ground truth; nothing to evaluate")
    all_scores, all_truths = [], []
    for video in sorted(videos, key=str):
        video_scores = np.asarray(scores[video], dtype=np.float64).reshape(-1)
        video_truth = np.asarray(truths[video]).reshape(-1)
        if video_scores.shape != video_truth.shape:
            raise EvaluationError(
                f"video {video}: {video_scores.shape[0]} frame scores but {video_truth.shape[0]} ground-truth frames"
            )
        if not np.isfinite(video_scores).all():
            raise EvaluationError(f"video {video}: frame scores contain NaN or infinity")
        all_scores.append(video_scores)
        all_truths.append(video_truth.astype(bool))
    truth = np.concatenate(all_truths)
    if truth.all() or not truth.any():
        raise EvaluationError(
            f"frame AUC needs both normal and anomalous frames; the {len(videos)} evaluated videos have only "
            f"{'anomalous' if truth.all() else 'normal'} frames"
        )
    return np.concatenate(all_scores), truth


def frame_auc(scores: Mapping[str, np.ndarray], truths: Mapping[str, np.ndarray | None]) -> float:
    """ROC AUC over all frames of all videos with ground truth (missing or None truth: skipped)."""
    frame_scores, frame_truth = concatenated_frames(scores, truths)
    return float(roc_auc_score(frame_truth, frame_scores))


# Sultani et al. count a normal frame a false alarm when its score reaches 0.5.
FALSE_ALARM_THRESHOLD = 0.5


def frame_metrics(
    scores: Mapping[str, np.ndarray],
    truths: Mapping[str, np.ndarray | None],
    false_alarm_threshold: float | None = FALSE_ALARM_THRESHOLD,
) -> dict[str, float | int | None]:
    """The field's frame-level metrics of `scores` (see the module docstring).

    false_alarm_threshold: None where the scores are not probabilities (G's reconstruction
    errors), so that no false-alarm rate is claimed for them. A metric whose videos are
    missing (no anomalous test video, none with both classes, no normal one) is None.
    """
    frame_scores, frame_truth = concatenated_frames(scores, truths)
    videos = [v for v in sorted(scores, key=str) if truths.get(v) is not None]
    anomalous = [v for v in videos if np.asarray(truths[v]).any()]
    normal = [v for v in videos if not np.asarray(truths[v]).any()]
    both = [v for v in anomalous if not np.asarray(truths[v]).all()]
    result: dict[str, float | int | None] = {
        "auc": float(roc_auc_score(frame_truth, frame_scores)),
        "average_precision": float(average_precision_score(frame_truth, frame_scores)),
        "auc_anomalous_videos": _micro_auc(scores, truths, anomalous),
        "macro_auc": float(np.mean([_micro_auc(scores, truths, [v]) for v in both])) if both else None,
        "macro_auc_videos": len(both),
        "false_alarm_rate": None,
        "false_alarm_threshold": false_alarm_threshold,
    }
    if false_alarm_threshold is not None and normal:
        normal_scores = np.concatenate([np.asarray(scores[v], dtype=np.float64).reshape(-1) for v in normal])
        result["false_alarm_rate"] = float((normal_scores >= false_alarm_threshold).mean())
    return result


def _micro_auc(scores: Mapping, truths: Mapping, videos: list[str]) -> float | None:
    """Micro AUC over the frames of `videos`, or None when they do not hold both classes."""
    if not videos:
        return None
    try:
        chosen_scores, chosen_truth = concatenated_frames({v: scores[v] for v in videos}, truths)
    except EvaluationError:  # e.g. anomalous videos that are anomalous throughout
        return None
    return float(roc_auc_score(chosen_truth, chosen_scores))
