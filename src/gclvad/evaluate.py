"""Frame-level evaluation: segment scores spread onto frames, and the AUC over all test frames.

Protocol (paper §4 "Evaluation Measures"): every frame of a segment gets its segment's
score; the area under the ROC curve is computed over the frames of all scored test videos
concatenated (not averaged per video). Videos without frame ground truth are left out.
Per-epoch AUC curves computed with these functions are diagnostics only: they look at test
labels, so nothing may be tuned on them.
"""

from __future__ import annotations

import math
from typing import Mapping

import numpy as np
from sklearn.metrics import roc_auc_score

from gclvad.errors import GclvadError


class EvaluationError(GclvadError):
    """Scores and ground truth that cannot be compared (lengths, missing classes)."""


def segment_to_frame_scores(segment_scores: np.ndarray, frames: int, segment_length: int) -> np.ndarray:
    """(frames,) scores: frame f gets the score of segment f // segment_length.

    The last segment may have been padded beyond the video's end; only its real frames get
    its score. Requires len(segment_scores) == ceil(frames / segment_length).
    """
    segment_scores = np.asarray(segment_scores)
    if segment_scores.ndim != 1:
        raise EvaluationError(f"segment scores must be 1-D, found shape {segment_scores.shape}")
    if frames < 1 or segment_length < 1:
        raise EvaluationError(f"frames and segment_length must be >= 1, found {frames} and {segment_length}")
    expected = math.ceil(frames / segment_length)
    if segment_scores.shape[0] != expected:
        raise EvaluationError(
            f"a video of {frames} frames in segments of {segment_length} has {expected} segments, "
            f"but {segment_scores.shape[0]} segment scores were given"
        )
    return np.repeat(segment_scores, segment_length)[:frames]


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
