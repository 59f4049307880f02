"""Post-processing of anomaly scores beyond the paper: a run's settings, and normalisation.

None of this is in the paper, whose protocol gives every frame its segment's score; these are
the building blocks of the settings of issue 10 (its defaults were chosen on the synthetic
walkway benchmark, `benchmarks/detection.py`, never on a labelled test set):

* windows to frames and smoothing along time: gclvad.scoring.frames.
* `reference_ranks` and `rank_normalise`: scores mapped to [0, 1] by where they fall among
  reference scores (the empirical CDF, ties counted half), so that networks of different
  seeds, or crops at different positions, speak the same scale before they are averaged.
  Against a fixed reference (the run's own training-segment scores) a new video's scores
  keep their meaning, which ranks within the scored set alone would not.
* `normalised`: scores on the scale of reference scores (rank, z or none).
* `combine_crops`: one segment score from the scores of several crops (mean or max),
  optionally normalised per crop position against that position's reference scores first.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass

import numpy as np

from gclvad.errors import GclvadError
from gclvad.scoring.frames import gaussian_kernel

CROP_REDUCTIONS = ("mean", "max")
NORMALISATIONS = ("none", "rank", "z")  # of crop positions' or ensemble members' scores


def reference_ranks(scores, reference) -> np.ndarray:
    """Where each score falls among `reference`: (#reference below + #equal / 2) / #reference."""
    reference = np.sort(np.asarray(reference, np.float64).reshape(-1))
    if reference.size == 0 or not np.isfinite(reference).all():
        raise GclvadError("reference scores for rank normalisation must be non-empty and finite")
    scores = np.asarray(scores, np.float64)
    below = np.searchsorted(reference, scores, side="left")
    not_above = np.searchsorted(reference, scores, side="right")
    return (below + not_above) / (2.0 * reference.size)


def rank_normalise(scores) -> np.ndarray:
    """Scores ranked among themselves, in [0, 1] (`reference_ranks` against the scores)."""
    return reference_ranks(scores, scores)


def combine_crops(scores, reference=None, reduce: str = "max", normalise: str = "rank") -> np.ndarray:
    """(S,) segment scores from (S, C) scores of C crop positions.

    normalise: "none"; "rank": each crop position's `reference_ranks` against column c of
    `reference` (R, C); "z": (score - mean) / std of that column. reduce: "mean" or "max".
    """
    scores = np.asarray(scores, np.float64)
    if scores.ndim != 2:
        raise GclvadError(f"crop scores must be (segments, crops), found shape {scores.shape}")
    if reduce not in CROP_REDUCTIONS or normalise not in NORMALISATIONS:
        raise GclvadError(
            f"crop combination: reduce must be one of {', '.join(CROP_REDUCTIONS)} and normalise one of "
            f"{', '.join(NORMALISATIONS)}; found {reduce!r}, {normalise!r}"
        )
    if normalise != "none":
        reference = np.asarray(reference, np.float64) if reference is not None else None
        if reference is None or reference.ndim != 2 or reference.shape[1] != scores.shape[1]:
            found = None if reference is None else reference.shape
            raise GclvadError(f"crop normalisation needs reference scores (R, {scores.shape[1]}), found {found}")
        scores = np.stack([normalised(scores[:, c], reference[:, c], normalise) for c in range(scores.shape[1])], 1)
    return scores.max(axis=1) if reduce == "max" else scores.mean(axis=1)


def normalised(scores, reference, how: str) -> np.ndarray:
    """`scores` on the scale of `reference` scores: "rank" (`reference_ranks`), "z" ((score -
    mean) / std of the reference; std 0 counts as 1) or "none" (unchanged)."""
    if how not in NORMALISATIONS:
        raise GclvadError(f"normalisation must be one of {', '.join(NORMALISATIONS)}; found {how!r}")
    scores = np.asarray(scores, np.float64)
    if how == "none":
        return scores
    if how == "rank":
        return reference_ranks(scores, reference)
    reference = np.asarray(reference, np.float64)
    spread = reference.std()
    return (scores - reference.mean()) / (spread if spread > 0 else 1.0)


# ---------------------------------------------------------------- a run's post-processing settings

SMOOTHING_UNIT = "frames"


@dataclass(frozen=True)
class PostprocessConfig:
    """How a run's segment scores become the frame scores it delivers, beyond the paper's
    protocol (whose values are the defaults: nothing beyond it). A run setting: training
    presets (`postprocess:`) and variant names (`~postprocess.smoothing_sigma=16`) set it;
    only scoring reads it, so changing it re-runs no training."""

    smoothing_sigma: float = 0.0  # Gaussian smoothing of frame scores along time, sigma in frames; 0: none
    crop_reduce: str = "mean"  # crops used "each": a segment's score from its crops' (mean: the RTFM family's)
    crop_normalise: str = "none"  # each crop position's scores against its own training scores first: none|rank|z
    # A seed ensemble's members' scores against each member's own training scores, then
    # averaged. "z" by default: on the walkway benchmark (GCL_PT, three crops, sigma 16, groups
    # of 5 seeds) z gave 0.756 and rank 0.723 — ranks flatten the margins that smoothing and
    # averaging then need; "none" (raw D scores, one scale already) equalled z.
    ensemble_normalise: str = "z"

    def __post_init__(self) -> None:
        object.__setattr__(self, "smoothing_sigma", float(self.smoothing_sigma))
        gaussian_kernel(self.smoothing_sigma)  # refuses a negative or infinite sigma
        if self.crop_reduce not in CROP_REDUCTIONS:
            raise GclvadError(
                f"postprocess.crop_reduce must be one of {', '.join(CROP_REDUCTIONS)}; found {self.crop_reduce!r}"
            )
        for name in ("crop_normalise", "ensemble_normalise"):
            if getattr(self, name) not in NORMALISATIONS:
                raise GclvadError(
                    f"postprocess.{name} must be one of {', '.join(NORMALISATIONS)}; found {getattr(self, name)!r}"
                )

    def to_dict(self) -> dict:
        return asdict(self)


def normalised_scores(metadata: Mapping, postprocess: Mapping) -> bool:
    """Whether a run's delivered scores are normalised (crop positions, or an ensemble's members,
    against their training scores) and so no longer the networks' own outputs (D's probability,
    G's error). Smoothing keeps them what they were: a weighted mean of probabilities is one.
    metadata: the run's models file's; postprocess: its PostprocessConfig as a dict."""
    crops = postprocess.get("crop_normalise", "none") != "none"
    members = "members" in metadata and postprocess.get("ensemble_normalise", "z") != "none"
    return crops or members


# Where a run keeps the distribution of its training-segment scores, per crop position: what
# rank normalisation (of crops, of ensemble members) compares new scores with.
REFERENCE_KEY = "training_score_reference"
REFERENCE_LEVELS = 1001  # quantiles 0, 0.001, ..., 1: a rank is then exact to 0.1 %


def score_reference(crop_scores) -> dict:
    """The stored reference of (R, C) training scores: REFERENCE_LEVELS quantiles per crop position."""
    crop_scores = np.asarray(crop_scores, np.float64)
    if crop_scores.ndim != 2 or crop_scores.shape[0] == 0 or not np.isfinite(crop_scores).all():
        raise GclvadError(f"a score reference needs finite (rows, crops) scores, found shape {crop_scores.shape}")
    levels = np.linspace(0.0, 1.0, REFERENCE_LEVELS)
    return {"rows": int(crop_scores.shape[0]), "by_crop": np.quantile(crop_scores, levels, axis=0).tolist()}


def reference_table(record: dict | None) -> np.ndarray | None:
    """(REFERENCE_LEVELS, C) reference scores of a stored record (None when there is none)."""
    return None if record is None else np.asarray(record["by_crop"], np.float64)
