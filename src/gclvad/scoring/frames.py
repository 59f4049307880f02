"""Frame scores: segment (window) scores onto frames, smoothing along time, and their files.

Protocol (paper §4): every frame of a segment gets its segment's score
(`segment_to_frame_scores`). Beyond it (gclvad.scoring.postprocess says which run uses what):

* `window_frame_scores`: frame scores from windows that may overlap (segment_stride <
  segment_length): a frame gets the mean score of every window that covers it. With
  non-overlapping windows this is the paper's protocol exactly.
* `gaussian_smooth`: a Gaussian filter along time, sigma in frames (0: unchanged); edges are
  mirrored (half-sample symmetric, like scipy.ndimage's "reflect"), so a video's first and
  last frames are not pulled towards zero.

A run's frame scores are stored in HDF5 (for plots and evaluation) and CSV (for people).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from gclvad.atomic import atomic_path, write_atomic
from gclvad.errors import GclvadError

# Score names: "score" is what the run delivers: its score (D's probability for GCL, G's
# reconstruction error for the autoencoders; crops combined) spread onto frames and then
# post-processed (smoothing); "score_raw" is the same before post-processing (the paper's
# protocol); "d" and "g" are the networks' outputs beside them (paper §3.4).
VideoScores = dict[str, np.ndarray]
# Frame-score CSV columns after frame and time_s (`gclvad score`, `gclvad export`): the run's
# score first, then D's and G's, then an ensemble's second opinion where it has one
# (gclvad.scoring.density).
SCORE_COLUMNS = ("score", "score_raw", "d", "g", "density")

_TRUNCATE = 4.0  # the smoothing kernel reaches this many sigmas each side


def segment_to_frame_scores(segment_scores: np.ndarray, frames: int, segment_length: int) -> np.ndarray:
    """(frames,) scores: frame f gets the score of segment f // segment_length.

    The last segment may have been padded beyond the video's end; only its real frames get
    its score. Requires len(segment_scores) == ceil(frames / segment_length).
    """
    segment_scores = np.asarray(segment_scores)
    if segment_scores.ndim != 1:
        raise GclvadError(f"segment scores must be 1-D, found shape {segment_scores.shape}")
    if frames < 1 or segment_length < 1:
        raise GclvadError(f"frames and segment_length must be >= 1, found {frames} and {segment_length}")
    expected = math.ceil(frames / segment_length)
    if segment_scores.shape[0] != expected:
        raise GclvadError(
            f"a video of {frames} frames in segments of {segment_length} has {expected} segments, "
            f"but {segment_scores.shape[0]} segment scores were given"
        )
    return np.repeat(segment_scores, segment_length)[:frames]


def window_frame_scores(window_scores, starts, frames: int, window_length: int) -> np.ndarray:
    """(frames,) float64: each frame's mean over the windows [start, start + window_length) covering it.

    Windows may reach past the last frame (a padded tail); every frame must be covered.
    """
    window_scores, starts = np.asarray(window_scores, np.float64), np.asarray(starts, np.int64)
    if window_scores.ndim != 1 or window_scores.shape != starts.shape:
        raise GclvadError(
            "window scores and starts must be 1-D and of one length, "
            f"found shapes {window_scores.shape} and {starts.shape}"
        )
    if frames < 1 or window_length < 1:
        raise GclvadError(f"frames and window_length must be >= 1, found {frames} and {window_length}")
    # Difference arrays: +score at a window's first frame, -score after its last.
    total, count = np.zeros(frames + 1), np.zeros(frames + 1)
    first = np.clip(starts, 0, frames)
    after = np.clip(starts + window_length, 0, frames)
    np.add.at(total, first, window_scores)
    np.add.at(total, after, -window_scores)
    np.add.at(count, first, 1)
    np.add.at(count, after, -1)
    total, count = np.cumsum(total)[:frames], np.cumsum(count)[:frames]
    if (count < 0.5).any():
        missing = int(np.flatnonzero(count < 0.5)[0])
        raise GclvadError(
            f"frame {missing} of {frames} lies in no window (windows of {window_length} frames starting at "
            f"{starts[:4].tolist()}...); windows must cover every frame"
        )
    return total / np.rint(count)


def gaussian_kernel(sigma: float) -> np.ndarray:
    """Normalised Gaussian weights over [-4 sigma, 4 sigma] (one tap of weight 1 for sigma 0)."""
    if not sigma >= 0 or not math.isfinite(sigma):
        raise GclvadError(f"smoothing sigma must be a finite number of frames >= 0, found {sigma}")
    radius = int(_TRUNCATE * sigma + 0.5)
    if radius == 0:
        return np.ones(1)
    offsets = np.arange(-radius, radius + 1)
    weights = np.exp(-0.5 * (offsets / sigma) ** 2)
    return weights / weights.sum()


def gaussian_smooth(scores, sigma: float) -> np.ndarray:
    """One video's frame scores filtered along time with a Gaussian of `sigma` frames."""
    scores = np.asarray(scores, np.float64)
    if scores.ndim != 1 or scores.size == 0:
        raise GclvadError(f"scores to smooth must be a non-empty 1-D array, found shape {scores.shape}")
    kernel = gaussian_kernel(sigma)
    radius = len(kernel) // 2
    if radius == 0:
        return scores.copy()
    padded = np.pad(scores, radius, mode="symmetric")  # mirrors repeatedly when radius > len
    return np.convolve(padded, kernel, mode="valid")


def to_frames(values: np.ndarray, frames: int, segment_length: int, stride: int) -> np.ndarray:
    """One video's (windows,) scores as (frames,) scores: each frame its window's score, or
    with overlapping windows (stride < segment_length) the mean of every window covering it."""
    if stride == segment_length:  # the paper's protocol, exactly
        return segment_to_frame_scores(values, frames, segment_length)
    return window_frame_scores(values, np.arange(len(values)) * stride, frames, segment_length)


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
