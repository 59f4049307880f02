"""The workflow's figure stages: a run's ROC curves, frame scores and training curves, and the
score histograms (paper Fig 4). See gclvad.stages.preparation."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from gclvad.evaluation import plots
from gclvad.evaluation.metrics import concatenated_frames
from gclvad.scoring.frames import read_scores
from gclvad.stages.data import frame_truths

log = logging.getLogger(__name__)


def plot_run(
    *,
    scores_path: str | Path,
    index_path: str | Path,
    spec: Mapping,
    training_log_path: str | Path,
    curve_path: str | Path,
    outputs: Mapping[str, str | Path],
    title: str,
) -> None:
    """The run's figures: ROC, per-video scores, training curves (with the diagnostic AUC)."""
    scores = read_scores(scores_path)
    truths = frame_truths(spec, index_path, list(scores))
    evaluated = [v for v, t in truths.items() if t is not None]
    log_rows = pd.read_csv(training_log_path, sep="\t").to_dict("records")
    if not evaluated:  # footage without labels: scores and training only
        plots.plot_message(outputs["roc"], title, "no scored video has frame ground truth")
        plots.plot_video_scores([(v, scores[v]["score"], None) for v in list(scores)[:4]], outputs["videos"])
        plots.plot_training_curves(log_rows, outputs["curves"])
        return
    # the delivered score (auc.json's headline `auc`) first, then the networks' own outputs
    named = {DELIVERED_LABEL: _frames_of(scores, "score", truths)}
    named.update(
        {name.upper(): _frames_of(scores, name, truths) for name in ("d", "g") if name in scores[evaluated[0]]}
    )
    truth = concatenated_frames({v: scores[v]["score"] for v in evaluated}, truths)[1]
    plots.plot_roc(truth, named, outputs["roc"], title)
    plots.plot_video_scores(
        [(v, scores[v]["score"], truths[v]) for v in pick_videos(evaluated, truths)], outputs["videos"]
    )
    curve = pd.read_csv(curve_path, sep="\t")
    for row in log_rows:
        match = curve[(curve["stage"] == row["stage"]) & (curve["epoch"] == row["epoch"])]
        row["diagnostic_auc_d"] = float(match["diagnostic_test_auc"].iloc[0]) if len(match) else None
    plots.plot_training_curves(log_rows, outputs["curves"])


def plot_histograms(
    *,
    scores_path: str | Path,
    baseline_scores_path: str | Path,
    index_path: str | Path,
    spec: Mapping,
    out_path: str | Path,
    title: str,
) -> None:
    """Paper Fig. 4: test-frame scores split by ground truth, for AE_AllData, G and D of the run."""
    scores, baseline = read_scores(scores_path), read_scores(baseline_scores_path)
    truths = frame_truths(spec, index_path, list(scores))
    if not any(t is not None for t in truths.values()):
        plots.plot_message(out_path, title, "no scored video has frame ground truth")
        return
    first = next(iter(scores.values()))
    histograms = {"AE_AllData": _frames_of(baseline, "g", truths)}
    histograms.update({name.upper(): _frames_of(scores, name, truths) for name in ("g", "d") if name in first})
    truth = concatenated_frames({v: s["score"] for v, s in scores.items()}, truths)[1]
    plots.plot_score_histograms(truth, histograms, out_path)


# The ROC legend's name of the run's delivered score (post-processed; auc.json's `auc`).
DELIVERED_LABEL = "score (delivered)"


def _frames_of(scores: Mapping, name: str, truths: Mapping) -> np.ndarray:
    """Score `name` of every frame with ground truth, in the order concatenated_frames uses."""
    return concatenated_frames({v: s[name] for v, s in scores.items()}, truths)[0]


def pick_videos(videos: Sequence[str], truths: Mapping, count: int = 4) -> list[str]:
    """A few videos to draw: anomalous ones first, then a normal one."""
    anomalous = [v for v in videos if truths[v].any()]
    normal = [v for v in videos if not truths[v].any()]
    chosen = anomalous[: count - 1] + normal[:1]
    return chosen or list(videos[:count])
