"""Temporal-difference cleaning (GCL paper §3.3): which training segments G is pre-trained on.

Anomalous events are "more eventful" than normal footage, so a segment whose feature jumps
far from its predecessor's is likely part of one. A segment f_{t+1} is kept when
||f_{t+1} - f_t||_2 <= D_th; the paper uses D_th = 0.70.

Choices the paper leaves open, made here:
* The first segment of each video has no predecessor. It is KEPT: there is no evidence
  against it, and dropping it would remove every single-segment video entirely.
* Distances are taken between L2-normalised features by default (``normalize="l2"``), so
  D_th has a fixed meaning (distances lie in [0, 2]) whatever the extractor's feature scale;
  ``normalize="none"`` uses the raw features.
* ``mode="percentile"`` sets the threshold to a percentile of the observed distances
  instead of an absolute value, for feature spaces where 0.70 means nothing.
* Consecutive means consecutive rows of the same video after sorting by position; a gap
  in positions (a segment missing from the feature file) does not break the chain.
"""

from __future__ import annotations

import warnings

import numpy as np

from gclvad.errors import GclvadError

LOW_KEPT_FRACTION = 0.05
HIGH_KEPT_FRACTION = 0.95
_CHUNK_ROWS = 8192  # distances are computed in chunks (float64, 2 x 128 MB at d=2048), never a full copy


def temporal_differences(
    features: np.ndarray, video: np.ndarray, position: np.ndarray, normalize: str = "l2"
) -> np.ndarray:
    """Per row, ||f_t - f_{t-1}||_2 to the previous segment of its video; NaN for a video's first.

    features (N, d), video (N,) and position (N,) as in `TrainingData`. Rows may come in any
    order; the result is aligned with the input rows.
    """
    features, video, position = _check_inputs(features, video, position)
    if normalize not in ("l2", "none"):
        raise GclvadError(f"temporal-difference cleaning: normalize must be 'l2' or 'none', found {normalize!r}")
    order = np.lexsort((position, video))  # by video, then by position
    sorted_video, sorted_position = video[order], position[order]
    same_video = sorted_video[1:] == sorted_video[:-1]
    repeated = same_video & (sorted_position[1:] == sorted_position[:-1])
    if repeated.any():
        i = int(np.flatnonzero(repeated)[0])
        raise GclvadError(
            f"temporal-difference cleaning: video {sorted_video[i]} has two rows at segment position "
            f"{sorted_position[i]}; positions within a video must be distinct"
        )
    distances_sorted = np.full(len(order), np.nan, dtype=np.float64)
    for start in range(1, len(order), _CHUNK_ROWS):
        stop = min(start + _CHUNK_ROWS, len(order))
        current = _rows(features, order[start:stop], normalize)
        previous = _rows(features, order[start - 1 : stop - 1], normalize)
        distances_sorted[start:stop] = np.linalg.norm(current - previous, axis=1)
    distances_sorted[1:][~same_video] = np.nan
    distances = np.empty_like(distances_sorted)
    distances[order] = distances_sorted
    return distances


def temporal_difference_mask(
    features: np.ndarray,
    video: np.ndarray,
    position: np.ndarray,
    threshold: float = 0.70,
    normalize: str = "l2",
    mode: str = "absolute",
    percentile: float = 70.0,
) -> tuple[np.ndarray, dict]:
    """The rows kept for G's pre-training, and a summary of the cleaning.

    mode "absolute": keep rows whose temporal difference is <= `threshold` (the paper's D_th).
    mode "percentile": the threshold is the `percentile`-th percentile of all observed
    differences. A video's first row is always kept (see module docstring).
    Returns (mask (N,) bool, summary dict with threshold, kept fraction, distance stats).
    Warns when fewer than 5 % or more than 95 % of rows are kept: the threshold then
    barely cleans, or leaves too little to pre-train on.
    """
    distances = temporal_differences(features, video, position, normalize)
    observed = distances[~np.isnan(distances)]
    if mode == "absolute":
        used_threshold = float(threshold)
    elif mode == "percentile":
        used_threshold = float(np.percentile(observed, percentile)) if observed.size else float("inf")
    else:
        raise GclvadError(f"temporal-difference cleaning: mode must be 'absolute' or 'percentile', found {mode!r}")
    first_of_video = np.isnan(distances)
    mask = first_of_video | (np.nan_to_num(distances, nan=np.inf) <= used_threshold)
    kept_fraction = float(mask.mean()) if mask.size else 0.0
    summary = {
        "mode": mode,
        "normalize": normalize,
        "threshold": used_threshold,
        "percentile": float(percentile) if mode == "percentile" else None,
        "rows": int(mask.size),
        "kept": int(mask.sum()),
        "kept_fraction": kept_fraction,
        "first_segments_kept": int(first_of_video.sum()),
        "distance_min": float(observed.min()) if observed.size else None,
        "distance_mean": float(observed.mean()) if observed.size else None,
        "distance_median": float(np.median(observed)) if observed.size else None,
        "distance_max": float(observed.max()) if observed.size else None,
    }
    if kept_fraction < LOW_KEPT_FRACTION or kept_fraction > HIGH_KEPT_FRACTION:
        message = (
            f"temporal-difference cleaning keeps {kept_fraction:.1%} of {mask.size} segments at threshold "
            f"{used_threshold:.4g} (distances: median {summary['distance_median']}, max {summary['distance_max']}); "
            "the threshold hardly cleans or leaves too little data"
        )
        warnings.warn(message, stacklevel=2)
    return mask, summary


def _rows(features: np.ndarray, index: np.ndarray, normalize: str) -> np.ndarray:
    rows = np.asarray(features[index], dtype=np.float64)
    if normalize == "l2":
        norms = np.linalg.norm(rows, axis=1, keepdims=True)
        rows = rows / np.where(norms > 0, norms, 1.0)  # an all-zero feature stays zero
    return rows


def _check_inputs(features, video, position):
    features = np.asarray(features)
    video = np.asarray(video)
    position = np.asarray(position)
    if features.ndim != 2:
        raise GclvadError(f"temporal-difference cleaning: features must be (N, d), found shape {features.shape}")
    if video.shape != (len(features),) or position.shape != (len(features),):
        raise GclvadError(
            "temporal-difference cleaning: video and position must hold one entry per feature row "
            f"({len(features)}), found shapes {video.shape} and {position.shape}"
        )
    return features, video, position
