"""The alert threshold of a run, without labels: where it comes from.

The default alert threshold is the `DEFAULT_QUANTILE` (0.99) quantile of the run's recorded
training-segment scores (gclvad.scoring.quantiles): with training footage like the live
footage, about 1 % of normal segments would cross it. The level is a stated choice, not
tuned on any labels; `--quantile` picks another recorded level and `--threshold` gives a
value. Runs trained before this was recorded get it from `gclvad calibrate RUN`, which
scores the run's recorded training features and writes `CALIBRATION_FILE` beside the models
file (gclvad.live.calibration) (the models file itself is never rewritten: the workflow would take it for a new model
and redo everything after it).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from gclvad.errors import GclvadError
from gclvad.scoring.quantiles import QUANTILES_KEY
from gclvad.weights import sha256_file

CALIBRATION_FILE = "training_score_quantiles.json"
# The default alert level: the 1 % most unusual training segments would alert. A stated
# choice (no labels looked at); see the module docstring.
DEFAULT_QUANTILE = 0.99


@dataclass(frozen=True)
class Threshold:
    """The alert threshold and, in words, where it comes from (shown when watching starts)."""

    value: float
    origin: str
    quantile: float | None = None


def _score_words(record: Mapping) -> str:
    return {"d": "D's probability", "g": "G's reconstruction error"}.get(record.get("score"), str(record.get("score")))


def quantile_threshold(record: Mapping, quantile: float, where: str) -> Threshold:
    """The threshold at a recorded quantile level of a run's training scores."""
    levels = record["quantiles"]
    key = f"{quantile:g}"
    if key not in levels:
        raise GclvadError(
            f"{where}: the run recorded its training scores at quantiles {', '.join(levels)}, not at {quantile:g}; "
            "pick one of those with --quantile, or give the value with --threshold"
        )
    return Threshold(
        value=float(levels[key]),
        origin=(
            f"quantile {key} of the run's scores ({_score_words(record)}) on its {record['count']} training "
            f"segments ({where})"
        ),
        quantile=quantile,
    )


def read_calibration(models_path: Path) -> dict | None:
    """The quantiles `gclvad calibrate` wrote beside `models_path`, if they belong to this models file."""
    path = Path(models_path).parent / CALIBRATION_FILE
    if not path.is_file():
        return None
    saved = json.loads(path.read_text())
    if saved.get("models_sha256") != sha256_file(models_path):
        raise GclvadError(
            f"{path} was computed for another {Path(models_path).name} (the run was trained again since): "
            f"run `gclvad calibrate {Path(models_path).parent}` again, or pass --threshold"
        )
    return saved


def run_threshold(
    models_path: Path,
    metadata: Mapping,
    quantile: float = DEFAULT_QUANTILE,
    value: float | None = None,
    scoring: Mapping | None = None,
) -> Threshold:
    """The alert threshold of a run: `value` when given, else `quantile` of its recorded training
    scores: those the workflow's score_run recorded of the scores the run delivers (`scoring`,
    its postprocess.json: crops combined, ensembles, as scored), else its models file's."""
    if value is not None:
        return Threshold(value=float(value), origin="given with --threshold")
    if scoring and QUANTILES_KEY in scoring:
        return quantile_threshold(scoring[QUANTILES_KEY], quantile, f"recorded in {Path(models_path).parent}")
    if QUANTILES_KEY in metadata:
        return quantile_threshold(metadata[QUANTILES_KEY], quantile, f"recorded in {models_path}")
    calibration = read_calibration(models_path)
    if calibration is not None:
        return quantile_threshold(calibration, quantile, f"recorded in {Path(models_path).parent / CALIBRATION_FILE}")
    raise GclvadError(
        f"{models_path}: the run records no distribution of its training scores (it was trained before gclvad "
        f"recorded one), so there is no default alert threshold: run `gclvad calibrate {Path(models_path).parent}` "
        "(it scores the run's training features and writes "
        f"{CALIBRATION_FILE} beside the models file), or pass --threshold VALUE"
    )
