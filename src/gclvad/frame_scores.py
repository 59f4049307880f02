"""Per-video frame scores of a trained run: computed from segment features, stored in HDF5
(for plots and evaluation) and CSV (for people)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from gclvad.atomic import atomic_path, write_atomic
from gclvad.errors import GclvadError
from gclvad.evaluate import segment_to_frame_scores
from gclvad.features import FeatureSet
from gclvad.postprocess import gaussian_smooth, window_frame_scores

# Score names: "score" is what the run delivers: its score (D's probability for GCL, G's
# reconstruction error for the autoencoders; crops combined) spread onto frames and then
# post-processed (smoothing); "score_raw" is the same before post-processing (the paper's
# protocol); "d" and "g" are the networks' outputs beside them (paper §3.4).
VideoScores = dict[str, np.ndarray]


def segment_scores(models, feature_set: FeatureSet) -> dict[str, np.ndarray]:
    """Scores of every segment row of `feature_set` by bare networks (crops: their mean)."""
    from gclvad.scorer import RunScorer  # torch: imported only where networks run

    return RunScorer(models).segment_scores(feature_set)


def to_frames(values: np.ndarray, frames: int, segment_length: int, stride: int) -> np.ndarray:
    """One video's (windows,) scores as (frames,) scores: each frame its window's score, or
    with overlapping windows (stride < segment_length) the mean of every window covering it."""
    if stride == segment_length:  # the paper's protocol, exactly
        return segment_to_frame_scores(values, frames, segment_length)
    return window_frame_scores(values, np.arange(len(values)) * stride, frames, segment_length)


def score_feature_set(
    scorer, feature_set: FeatureSet, segment_length: int, smoothing_sigma: float = 0.0
) -> dict[str, VideoScores]:
    """Frame scores of every video of `feature_set`, one forward pass over all its segments.

    scorer: a gclvad.scorer RunScorer or EnsembleScorer, or bare networks (Models). The
    windows' stride is the feature set's (`segment_stride`, default segment_length)."""
    if not hasattr(scorer, "segment_scores"):
        from gclvad.scorer import RunScorer

        scorer = RunScorer(scorer)
    by_segment = scorer.segment_scores(feature_set)
    stride = int(feature_set.attrs.get("segment_stride", segment_length))
    out = {}
    for i, video in enumerate(feature_set.videos):
        rows = slice(feature_set.offsets[i], feature_set.offsets[i + 1])
        frames = int(feature_set.frames[i])
        named = {name: to_frames(values[rows], frames, segment_length, stride) for name, values in by_segment.items()}
        named["score_raw"] = named["score"]
        if smoothing_sigma > 0:
            named["score"] = gaussian_smooth(named["score_raw"], smoothing_sigma)
        out[video] = named
    return out


def write_scores(path: str | Path, scores: Mapping[str, VideoScores]) -> None:
    """HDF5: /videos/<id>/<score name> (frames,) float32; written to a temp name, then renamed."""
    with atomic_path(path) as temporary, h5py.File(temporary, "w") as out:
        for video, named in scores.items():
            group = out.create_group(f"videos/{video}")
            for name, values in named.items():
                group.create_dataset(name, data=_finite(values, video, name))


def _finite(values, video: str, name: str) -> np.ndarray:
    """Scores as float32, refusing NaN or infinity: no scores file is written with them."""
    values = np.asarray(values, dtype=np.float32)
    if not np.isfinite(values).all():
        raise GclvadError(
            f"video {video}: {int((~np.isfinite(values)).sum())} {name!r} frame scores are NaN or infinite; "
            "no scores are written (the networks or their features are broken)"
        )
    return values


def read_scores(path: str | Path) -> dict[str, VideoScores]:
    with h5py.File(path, "r") as source:
        return {video: {name: group[name][()] for name in group} for video, group in source["videos"].items()}


def write_scores_csv(path: str | Path, scores: VideoScores, fps: float) -> None:
    """One row per frame: frame, time in seconds (when fps is known), and each score."""
    frames = len(next(iter(scores.values())))
    table = pd.DataFrame({"frame": np.arange(frames)})
    if fps > 0:
        table["time_s"] = np.round(table["frame"] / fps, 3)
    for name, values in scores.items():
        table[f"{name}"] = values
    for name, values in scores.items():
        _finite(values, Path(path).stem, name)
    write_atomic(path, lambda temporary: table.to_csv(temporary, index=False, float_format="%.6g"))
