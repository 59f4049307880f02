"""The distribution of a run's scores of its own training segments: what alert thresholds come from.

At training time the run's final stage records the distribution of its final model's scores
on its own training segments (stored in the models file under `QUANTILES_KEY`); the
workflow's score_run and an ensemble's file record those of the scores the run delivers
(crops combined, ensembles as they score). `gclvad watch` takes its alert threshold from
them (gclvad.live.calibration). Pure numpy: a scorer is anything with `segment_scores` and
`score_name` (gclvad.scoring.scorer).
"""

from __future__ import annotations

import numpy as np

from gclvad.errors import GclvadError

QUANTILES_KEY = "training_score_quantiles"
# Levels recorded for every run: a threshold can be any of them without rescoring anything.
QUANTILE_LEVELS = (0.5, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999)
# The whole distribution, as this many evenly spaced quantiles (0, 0.005, ..., 1): what the
# rules of gclvad.live.threshold that look at its shape (robust spread, a split) read.
DISTRIBUTION_LEVELS = 201


def score_quantiles(scores: np.ndarray, score_name: str) -> dict:
    """The record stored with a run: which score, how many segments, its quantiles at
    QUANTILE_LEVELS (numpy's linear interpolation), its extremes, its median and median
    absolute deviation, and the distribution at DISTRIBUTION_LEVELS, as plain values."""
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if scores.size == 0 or not np.isfinite(scores).all():
        raise GclvadError(f"training score quantiles need finite scores; got {scores.size} values, some not finite")
    return {
        "score": score_name,
        "count": int(scores.size),
        "quantiles": {f"{level:g}": float(np.quantile(scores, level)) for level in QUANTILE_LEVELS},
        "min": float(scores.min()),
        "max": float(scores.max()),
        "median": float(np.median(scores)),
        "mad": float(np.median(np.abs(scores - np.median(scores)))),
        "distribution": np.quantile(scores, np.linspace(0.0, 1.0, DISTRIBUTION_LEVELS)).tolist(),
    }


def delivered_score_quantiles(scorer, feature_set) -> dict:
    """`score_quantiles` of what a scorer (gclvad.scoring.scorer: a run, crops combined, or an
    ensemble) delivers for the segments of `feature_set` (a run's training segments)."""
    return score_quantiles(scorer.segment_scores(feature_set)["score"], scorer.score_name)
