"""Per-video frame scores of a trained run: computed from segment features, stored in HDF5
(for plots and evaluation) and CSV (for people)."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import h5py
import numpy as np
import pandas as pd

from gclvad.atomic import atomic_path, write_atomic
from gclvad.errors import GclvadError
from gclvad.evaluate import segment_to_frame_scores
from gclvad.features import FeatureSet

# Score names: "score" is what the run's config scores with (D's probability for GCL, G's
# reconstruction error for the autoencoders); "d" and "g" are kept beside it (paper §3.4).
VideoScores = dict[str, np.ndarray]


def segment_scores(models, feature_set: FeatureSet) -> dict[str, np.ndarray]:
    """Scores of every segment row of `feature_set` ("score", "d", "g"; (N,) each). With
    several crops per segment (features (N, C, d), crops used "each"), every crop is scored
    and a segment's score is the mean over its crops, as the RTFM family evaluates."""
    from gclvad.gcl.store import score  # torch: imported only where networks run

    features = feature_set.features
    scored = score(models, features.reshape(-1, features.shape[-1]))
    return {name: values.reshape(len(features), feature_set.crops).mean(axis=1) for name, values in scored.items()}


def score_feature_set(models, feature_set: FeatureSet, segment_length: int) -> dict[str, VideoScores]:
    """Frame scores of every video of `feature_set`, one forward pass over all its segments."""
    by_segment = segment_scores(models, feature_set)
    out = {}
    for i, video in enumerate(feature_set.videos):
        rows = slice(feature_set.offsets[i], feature_set.offsets[i + 1])
        frames = int(feature_set.frames[i])
        out[video] = {
            name: segment_to_frame_scores(values[rows], frames, segment_length)
            for name, values in by_segment.items()
        }
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
        return {
            video: {name: group[name][()] for name in group}
            for video, group in source["videos"].items()
        }


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
