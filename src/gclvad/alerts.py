"""Alerts on a stream of segment scores, without labels: the run's threshold, causal smoothing,
and events opened and closed with hysteresis.

Threshold. At training time the run's final stage records the distribution of its final
model's scores on its own training segments (`training_score_quantiles`, stored in the models
file under `QUANTILES_KEY`). The default alert threshold is the `DEFAULT_QUANTILE` (0.99)
quantile of it: with training footage like the live footage, about 1 % of normal segments
would cross it. The level is a stated choice, not tuned on any labels; `--quantile` picks
another recorded level and `--threshold` gives a value. Runs trained before this was recorded
get it from `gclvad calibrate RUN`, which scores the run's recorded training features and
writes `CALIBRATION_FILE` beside the models file (the models file itself is never rewritten:
the workflow would take it for a new model and redo everything after it).

Smoothing. Live scoring may only look back: `CausalSmoother` is an exponentially weighted
mean over past segments. The raw segment scores are always kept beside it.

Events. An event opens on the first segment whose score is above the threshold and closes
once the score has stayed at or below it for `hold_s` seconds of stream time; its end is the
last segment above the threshold.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gclvad.atomic import write_json_atomic
from gclvad.errors import GclvadError
from gclvad.weights import sha256_file

log = logging.getLogger(__name__)

QUANTILES_KEY = "training_score_quantiles"
CALIBRATION_FILE = "training_score_quantiles.json"
# Levels recorded for every run: a threshold can be any of them without rescoring anything.
QUANTILE_LEVELS = (0.5, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999)
# The default alert level: the 1 % most unusual training segments would alert. A stated
# choice (no labels looked at); see the module docstring.
DEFAULT_QUANTILE = 0.99


# ---------------------------------------------------------------- the threshold


def score_quantiles(scores: np.ndarray, score_name: str) -> dict:
    """The record stored with a run: which score, how many segments, its quantiles at
    QUANTILE_LEVELS (numpy's linear interpolation) and its extremes, as plain values."""
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if scores.size == 0 or not np.isfinite(scores).all():
        raise GclvadError(f"training score quantiles need finite scores; got {scores.size} values, some not finite")
    return {
        "score": score_name,
        "count": int(scores.size),
        "quantiles": {f"{level:g}": float(np.quantile(scores, level)) for level in QUANTILE_LEVELS},
        "min": float(scores.min()),
        "max": float(scores.max()),
    }


def delivered_score_quantiles(scorer, feature_set) -> dict:
    """`score_quantiles` of what a scorer (gclvad.scorer: a run, crops combined, or an
    ensemble) delivers for the segments of `feature_set` (a run's training segments)."""
    return score_quantiles(scorer.segment_scores(feature_set)["score"], scorer.score_name)


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


def calibrate_run(
    run: str | Path,
    features_path: str | Path | None = None,
    index_path: str | Path | None = None,
    train_on: tuple[str, ...] = ("train",),
    device: str = "cpu",
) -> Path:
    """Score a run's training features with its final model and write CALIBRATION_FILE beside
    its models file; returns that path.

    features_path, index_path: the dataset's merged feature file and segment index; by
    default where the workflow puts them for a run folder
    results/{dataset}/{extractor}/{variant}/seed{seed}: results/{dataset}/features/{extractor}.h5
    and results/{dataset}/segments.tsv. train_on: the dataset's `train_on` splits.
    """
    from gclvad.device import resolve_device
    from gclvad.features import load_feature_set
    from gclvad.scorer import load_scorer
    from gclvad.scoring import read_run
    from gclvad.segment_index import read_segment_index, split_videos

    record = read_run(run)
    dataset_folder = record.folder.parents[2]
    features_path = Path(features_path or dataset_folder / "features" / f"{record.extractor['name']}.h5")
    index_path = Path(index_path or dataset_folder / "segments.tsv")
    for path, what, flag in (
        (features_path, "merged feature file", "--features"),
        (index_path, "segment index", "--index"),
    ):
        if not path.is_file():
            raise GclvadError(f"{path}: the run's {what} is not there; pass {flag} with its path")
    train_ids, _ = split_videos(read_segment_index(index_path), list(train_on))
    if not train_ids:
        raise GclvadError(f"{index_path}: no usable video of split(s) {', '.join(train_on)}; pass --train-on")
    scorer = load_scorer(record.models_path, record.postprocess, device=str(resolve_device(device)))
    quantiles = delivered_score_quantiles(scorer, load_feature_set(features_path, train_ids, record.crops))
    quantiles.update(models_sha256=sha256_file(record.models_path), features=str(features_path))
    out = record.folder / CALIBRATION_FILE
    write_json_atomic(out, quantiles)
    return out


# ---------------------------------------------------------------- causal smoothing


class CausalSmoother:
    """Exponentially weighted mean of the scores so far, spanning about `span` segments
    (weight (1 - a)^k for the score k segments back, a = 2 / (span + 1)), normalised by the
    weights so far, so the first values are not pulled towards 0 (pandas'
    `ewm(span=span, adjust=True).mean()`). span 1 returns the scores unchanged."""

    def __init__(self, span: int):
        if span < 1:
            raise GclvadError(f"smoothing span must be at least 1 segment; got {span}")
        self.decay = 1.0 - 2.0 / (span + 1.0)
        self._weighted_sum = 0.0
        self._weights = 0.0

    def __call__(self, value: float) -> float:
        self._weighted_sum = value + self.decay * self._weighted_sum
        self._weights = 1.0 + self.decay * self._weights
        return self._weighted_sum / self._weights


# ---------------------------------------------------------------- events


@dataclass(frozen=True)
class ScoredSegment:
    """One scored segment as the event detector sees it (times: stream seconds and Unix seconds)."""

    index: int
    first_frame: int
    last_frame: int
    start_s: float
    end_s: float
    first_arrival: float  # when its first frame was decoded
    scored: float  # when its score was known
    value: float  # the score alerts look at (smoothed when smoothing is on)


@dataclass
class Event:
    """An alert: opened on `start`, last above the threshold on `last_above`."""

    number: int
    threshold: float
    start: ScoredSegment
    last_above: ScoredSegment
    peak: ScoredSegment
    closed: ScoredSegment | None = None  # the segment that closed it (None: open, or closed by `closed_by`)
    closed_at: float | None = None  # Unix time of the closing
    closed_by: str | None = None  # "hold", or why it was closed early ("stop", "stream lost", ...)
    extra: dict = field(default_factory=dict)  # what the watcher adds (clip, plot paths)

    @property
    def is_open(self) -> bool:
        return self.closed_by is None

    def record(self) -> dict:
        """One line of the events log."""
        out = {
            "event": self.number,
            "state": "open" if self.is_open else "closed",
            "threshold": self.threshold,
            "start_frame": self.start.first_frame,
            "start_s": round(self.start.start_s, 3),
            "start_arrival": round(self.start.first_arrival, 3),
            "opened_at": round(self.start.scored, 3),
            "peak_score": self.peak.value,
            "peak_frame": self.peak.first_frame,
        }
        if not self.is_open:
            out.update(
                end_frame=self.last_above.last_frame,
                end_s=round(self.last_above.end_s, 3),
                closed_at=round(self.closed_at, 3),
                closed_by=self.closed_by,
            )
        return {**out, **self.extra}


class EventDetector:
    """Hysteresis on segment scores: open above `threshold`, close after `hold_s` seconds of
    stream time at or below it."""

    def __init__(self, threshold: float, hold_s: float, first_number: int = 1):
        if hold_s < 0:
            raise GclvadError(f"the alert hold time must be >= 0 seconds; got {hold_s}")
        self.threshold = float(threshold)
        self.hold_s = float(hold_s)
        self.current: Event | None = None
        self.count = 0  # events opened so far
        self._next_number = first_number

    def update(self, segment: ScoredSegment) -> tuple[Event | None, Event | None]:
        """(event opened by this segment, event closed by it); either may be None."""
        event = self.current
        above = segment.value > self.threshold
        if event is None:
            if not above:
                return None, None
            self.current = Event(self._next_number, self.threshold, segment, segment, segment)
            self._next_number += 1
            self.count += 1
            return self.current, None
        if above:
            event.last_above = segment
            if segment.value > event.peak.value:
                event.peak = segment
            return None, None
        if segment.end_s - event.last_above.end_s >= self.hold_s:
            return None, self._close(segment, segment.scored, "hold")
        return None, None

    def close(self, reason: str, when: float) -> Event | None:
        """Close the open event early (stop, stream lost, end of stream); None if none is open."""
        if self.current is None:
            return None
        return self._close(None, when, reason)

    def _close(self, segment: ScoredSegment | None, when: float, reason: str) -> Event:
        event = self.current
        event.closed, event.closed_at, event.closed_by = segment, when, reason
        self.current = None
        return event
