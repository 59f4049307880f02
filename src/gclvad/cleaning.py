"""Temporal-difference cleaning (GCL paper §3.3): which training segments G is pre-trained on.

Anomalous events are "more eventful" than normal footage, so a segment whose feature jumps
far from its predecessor's is likely part of one. A segment f_{t+1} is kept when
||f_{t+1} - f_t||_2 <= D_th; the paper uses D_th = 0.70.

Cleaning is a stage of its own, with its own settings (`CleaningConfig`, the workflow's
`cleaning:` section): its mask is computed once per dataset, extractor and settings, and a
run whose settings differ (a preset's or a variant's) gets its own mask.

Choices the paper leaves open, made here:
* The first segment of each video has no predecessor. It is KEPT: there is no evidence
  against it, and dropping it would remove every single-segment video entirely.
* Distances are taken between L2-normalised features by default (``normalise="l2"``), so
  D_th has a fixed meaning (distances lie in [0, 2]) whatever the extractor's feature scale;
  ``normalise="none"`` uses the raw features.
* ``mode="percentile"`` sets the threshold to a percentile of the observed distances
  instead of an absolute value, for feature spaces where 0.70 means nothing.
* Consecutive means consecutive rows of the same video after sorting by position; a gap
  in positions (a segment missing from the feature file) does not break the chain.
* Features that are not finite are refused, naming the row: a NaN distance would otherwise
  compare as neither near nor far.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import asdict, dataclass

import numpy as np

from gclvad.errors import GclvadError

LOW_KEPT_FRACTION = 0.05
HIGH_KEPT_FRACTION = 0.95
_CHUNK_ROWS = 8192  # distances are computed in chunks (float64, 2 x 128 MB at d=2048), never a full copy
MODES = ("absolute", "percentile")
NORMALISE = ("l2", "none")


@dataclass(frozen=True)
class CleaningConfig:
    """Settings of temporal-difference cleaning (the workflow's `cleaning:`). Defaults = the paper."""

    threshold: float = 0.70  # mode absolute: D_th, a distance; mode percentile: a percentile in (0, 100]
    mode: str = "absolute"  # "absolute" or "percentile" (of the observed distances)
    normalise: str = "l2"  # distances between L2-normalised features, or raw ("none")

    def __post_init__(self) -> None:
        object.__setattr__(self, "threshold", float(self.threshold))
        if self.mode not in MODES:
            raise GclvadError(f"cleaning.mode must be one of {', '.join(MODES)}; found {self.mode!r}")
        if self.normalise not in NORMALISE:
            raise GclvadError(f"cleaning.normalise must be one of {', '.join(NORMALISE)}; found {self.normalise!r}")
        if self.mode == "percentile" and not 0.0 < self.threshold <= 100.0:
            raise GclvadError(
                f"cleaning.threshold is a percentile of the observed distances when cleaning.mode is "
                f"percentile, so it must be in (0, 100]; found {self.threshold:g}"
            )
        if self.mode == "absolute" and not self.threshold > 0.0:
            raise GclvadError(f"cleaning.threshold (D_th) must be > 0; found {self.threshold:g}")

    @property
    def name(self) -> str:
        """The settings as a folder name, e.g. "l2-absolute-0.7": masks of different settings
        live side by side, each computed once."""
        return f"{self.normalise}-{self.mode}-{self.threshold:g}"

    @classmethod
    def from_name(cls, name: str) -> CleaningConfig:
        match = re.fullmatch(r"(\w+)-(\w+)-([0-9.e+\-]+)", name)
        if match is None:
            raise GclvadError(f"cleaning settings {name!r} are not of the form normalise-mode-threshold")
        normalise, mode, threshold = match.groups()
        return cls(threshold=float(threshold), mode=mode, normalise=normalise)

    def to_dict(self) -> dict:
        return asdict(self)


def temporal_differences(
    features: np.ndarray, video: np.ndarray, position: np.ndarray, normalise: str = "l2"
) -> tuple[np.ndarray, np.ndarray]:
    """Per row, ||f_t - f_{t-1}||_2 to the previous segment of its video, and whether the row
    is its video's first (distance NaN: it has no predecessor).

    features (N, d), video (N,) and position (N,) as in `TrainingData`. Rows may come in any
    order; the results are aligned with the input rows.
    """
    features, video, position = _check_inputs(features, video, position)
    if normalise not in NORMALISE:
        raise GclvadError(f"cleaning.normalise must be one of {', '.join(NORMALISE)}; found {normalise!r}")
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
        current = _rows(features, order[start:stop], normalise)
        previous = _rows(features, order[start - 1 : stop - 1], normalise)
        distances_sorted[start:stop] = np.linalg.norm(current - previous, axis=1)
    first_sorted = np.concatenate([[True], ~same_video]) if len(order) else np.zeros(0, dtype=bool)
    distances_sorted[first_sorted] = np.nan
    distances, first = np.empty_like(distances_sorted), np.empty_like(first_sorted)
    distances[order], first[order] = distances_sorted, first_sorted
    return distances, first


def temporal_difference_mask(
    features: np.ndarray, video: np.ndarray, position: np.ndarray, config: CleaningConfig | None = None
) -> tuple[np.ndarray, dict]:
    """The rows kept for G's pre-training, and a summary of the cleaning.

    mode "absolute": keep rows whose temporal difference is <= the threshold (the paper's D_th).
    mode "percentile": the threshold is that percentile of all observed differences. A video's
    first row is always kept (see module docstring).
    Returns (mask (N,) bool, summary dict with threshold, kept fraction, distance stats).
    Warns when fewer than 5 % or more than 95 % of rows are kept: the threshold then
    barely cleans, or leaves too little to pre-train on.
    """
    config = config or CleaningConfig()
    distances, first_of_video = temporal_differences(features, video, position, config.normalise)
    observed = distances[~first_of_video]
    if config.mode == "percentile":
        used_threshold = float(np.percentile(observed, config.threshold)) if observed.size else float("inf")
    else:
        used_threshold = config.threshold
    mask = first_of_video.copy()
    mask[~first_of_video] = observed <= used_threshold
    kept_fraction = float(mask.mean()) if mask.size else 0.0
    summary = {
        "mode": config.mode,
        "normalise": config.normalise,
        "threshold": used_threshold,
        "percentile": config.threshold if config.mode == "percentile" else None,
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


def _rows(features: np.ndarray, index: np.ndarray, normalise: str) -> np.ndarray:
    rows = np.asarray(features[index], dtype=np.float64)
    if normalise == "l2":
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
    finite = np.concatenate(
        [
            np.isfinite(features[start : start + _CHUNK_ROWS]).all(axis=1)
            for start in range(0, len(features), _CHUNK_ROWS)
        ]
        or [np.ones(0, dtype=bool)]
    )
    if not finite.all():
        row = int(np.flatnonzero(~finite)[0])
        raise GclvadError(
            f"temporal-difference cleaning: {int((~finite).sum())} feature row(s) hold NaN or infinity, the first "
            f"is segment {position[row]} of video {video[row]}; the feature store should have refused them"
        )
    return features, video, position


def enrichment(mask: np.ndarray, anomalous: np.ndarray) -> dict:
    """How the cleaning sorted rows whose label is known (anomalous: (N,) 1, 0, or -1 unknown):
    the share of anomalous rows among all labelled rows, the kept and the removed ones. A
    report only: labels never set the threshold."""
    labelled = anomalous >= 0
    is_anomalous, kept = anomalous[labelled] == 1, mask[labelled]

    def share(rows: np.ndarray) -> float | None:
        return float(is_anomalous[rows].mean()) if rows.any() else None

    return {
        "labelled_rows": int(labelled.sum()),
        "anomalous_fraction_all": share(np.ones_like(kept)),
        "anomalous_fraction_kept": share(kept),
        "anomalous_fraction_removed": share(~kept),
    }
