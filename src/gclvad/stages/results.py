"""The workflow's stages after training: a run's scores, its seed ensemble, its evaluation, the
dataset's summary and tables (the figures: gclvad.stages.figures). See gclvad.stages.preparation."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from gclvad.atomic import write_atomic, write_json_atomic
from gclvad.datasets.segment_index import read_segment_index
from gclvad.decode.windows import window_frames
from gclvad.errors import GclvadError
from gclvad.evaluation.events import event_metrics
from gclvad.evaluation.metrics import FALSE_ALARM_THRESHOLD, frame_auc, frame_metrics
from gclvad.features.feature_set import load_feature_set
from gclvad.live.alerts import alert_of, replay_alerts
from gclvad.live.cameras import WatchSettings
from gclvad.live.threshold import DEFAULT_RULE, default_rule, rule_threshold
from gclvad.scoring.frames import read_scores, write_scores
from gclvad.scoring.postprocess import REFERENCE_KEY, PostprocessConfig, normalised_scores
from gclvad.scoring.quantiles import QUANTILES_KEY, delivered_score_quantiles
from gclvad.scoring.scorer import score_feature_set
from gclvad.stages.data import frame_truths, read_json, record_precision_used, run_videos, training_feature_set
from gclvad.stages.epoch_scores import diagnostic_curve, write_epoch_scores

# The networks (torch) are imported inside the stages that score, so that the jobs that only
# summarise or tabulate start without loading them.

log = logging.getLogger(__name__)


def score_run(
    *,
    models_path: str | Path,
    features_path: str | Path,
    index_path: str | Path,
    train_on: Sequence[str],
    segment_length: int,
    out_path: str | Path,
    postprocess_path: str | Path,
    postprocess: Mapping | None = None,
    device: str = "cpu",
    crops: str = "mean",
) -> None:
    """Frame scores of every scored video (test split and unsplit footage) of a run, raw and
    post-processed; the post-processing used is written to `postprocess_path`, where
    `gclvad score` takes it from to score new footage the same way."""
    from gclvad.device import resolve_device
    from gclvad.scoring.scorer import load_scorer

    settings = PostprocessConfig(**(postprocess or {}))
    _, scored = run_videos(features_path, index_path, train_on)
    scorer = load_scorer(Path(models_path), settings, device=str(resolve_device(device)))
    feature_set = load_feature_set(features_path, scored, crops)
    scores = score_feature_set(scorer, feature_set, segment_length, settings.smoothing_sigma)
    write_scores(out_path, scores)
    models = os.path.relpath(models_path, Path(postprocess_path).parent)  # found from the run's folder, wherever it is
    # what the run delivers for its own training segments (crops combined, ensembles as they
    # score): the distribution `gclvad watch` takes its default alert threshold from
    training, _ = run_videos(features_path, index_path, train_on)
    quantiles = delivered_score_quantiles(scorer, load_feature_set(features_path, training, crops))
    record = {"postprocess": settings.to_dict(), "crops": crops, "models": models, QUANTILES_KEY: quantiles}
    write_json_atomic(postprocess_path, record)
    log.info("scored %d videos", len(scores))


# A member run's records that are its own, not its ensemble's.
_MEMBER_OWN = ("log", "seed", "config_sha256", QUANTILES_KEY, REFERENCE_KEY)


def ensemble_run(
    *,
    member_models: Sequence[str | Path],
    features_path: str | Path,
    index_path: str | Path,
    train_on: Sequence[str],
    postprocess: Mapping,
    out_models: str | Path,
    out_log: str | Path,
    out_epoch_scores: str | Path,
    crops: str = "mean",
    metadata: Mapping | None = None,
    density_k: int = 0,
) -> None:
    """A seed ensemble's models file (gclvad.scoring.scorer): its members' networks with each member's
    reference scores on the training segments, and with `density_k` > 0 the bank of its second
    opinion (gclvad.scoring.density); its training log is its members' logs."""
    from gclvad.gcl.store import read_models_metadata
    from gclvad.scoring.scorer import write_ensemble

    training = training_feature_set(features_path, index_path, train_on, crops)
    members = [read_models_metadata(Path(path)) for path in member_models]
    stored = {
        # what all members share (the extractor, the settings); not what each has of its own
        **{key: value for key, value in members[0].items() if key not in _MEMBER_OWN},
        **(metadata or {}),
        "members": [{"seed": m.get("seed"), "config_sha256": m.get("config_sha256")} for m in members],
        "log": [{**row, "member": i} for i, m in enumerate(members) for row in m.get("log", [])],
    }
    record_precision_used(stored, features_path)
    write_ensemble(list(member_models), training, PostprocessConfig(**postprocess), out_models, stored, density_k)
    write_atomic(out_log, lambda temporary: pd.DataFrame(stored["log"]).to_csv(temporary, sep="\t", index=False))
    _, scored = run_videos(features_path, index_path, train_on)  # no epochs: an empty diagnostic
    write_epoch_scores(out_epoch_scores, load_feature_set(features_path, scored, crops), [], [])
    log.info("ensemble of %d runs", len(member_models))


def evaluate_run(
    *,
    scores_path: str | Path,
    index_path: str | Path,
    spec: Mapping,
    epoch_scores_path: str | Path,
    models_path: str | Path,
    postprocess_path: str | Path,
    segment_length: int,
    out_auc: str | Path,
    out_curve: str | Path,
    segment_stride: int | None = None,
    enrichment_path: str | Path | None = None,
    frame_step: int = 1,
) -> dict:
    """The field's frame-level metrics of the run's final model (its delivered, post-processed
    scores; `auc_raw` before post-processing, the paper's protocol; D's and G's AUC), plus
    the per-epoch diagnostic curve, and what its TD cleaning removed (`enrichment_path`).
    With frame_step k a segment spans segment_length * k frames of its video."""
    from gclvad.gcl.store import read_models_metadata

    scores = read_scores(scores_path)
    truths = frame_truths(spec, index_path, list(scores))
    evaluated = [v for v, t in truths.items() if t is not None]
    metadata = read_models_metadata(Path(models_path))
    postprocessing = read_json(postprocess_path)
    result = {}
    if evaluated:
        # the field's metrics of the run's score; a false-alarm rate only for D's probabilities
        scored_by = (
            metadata.get("settings", {}).get("scoring", {}).get("model", "d" if "d" in scores[evaluated[0]] else "g")
        )
        probabilities = scored_by == "d" and not normalised_scores(metadata, postprocessing["postprocess"])
        threshold = FALSE_ALARM_THRESHOLD if probabilities else None
        result.update(frame_metrics({v: scores[v]["score"] for v in evaluated}, truths, threshold))
    for name, key in (("score_raw", "auc_raw"), ("d", "auc_d"), ("g", "auc_g"), ("density", "auc_density")):
        if evaluated and name in scores[evaluated[0]]:
            result[key] = frame_auc({v: scores[v][name] for v in evaluated}, truths)
    result.update(
        videos=len(evaluated),
        frames=int(sum(len(truths[v]) for v in evaluated)),
        anomalous_frames=int(sum(truths[v].sum() for v in evaluated)),
    )
    result.update({key: value for key, value in metadata.items() if key != "log"})
    frames = read_segment_index(index_path).set_index("video")["frames"]
    span, stride = window_frames(segment_length, segment_stride, frame_step)
    curve = diagnostic_curve(epoch_scores_path, truths, frames, span, stride)
    write_atomic(out_curve, lambda temporary: curve.to_csv(temporary, sep="\t", index=False))
    result["diagnostic_note"] = (
        "auc is the model at the end of training; the per-epoch test AUC in "
        f"{Path(out_curve).name} is a diagnostic and selects nothing"
    )
    result["epochs_logged"] = len(metadata.get("log", []))
    if evaluated:
        fps = read_segment_index(index_path).set_index("video")["fps"].astype(float).to_dict()
        events = alert_events(scores, truths, fps, metadata, postprocessing, span, stride)
        if events is not None:
            result["events"] = events
    if enrichment_path is not None:
        result["cleaning_enrichment"] = read_json(enrichment_path)
    result.update(postprocessing)
    result["postprocess_note"] = (
        "auc and the metrics beside it are of the scores the run delivers (after post-processing); "
        "auc_raw is of the same scores before it (the paper's protocol)"
    )
    write_json_atomic(out_auc, result)
    log.info("frame AUC %.4f over %d videos", result.get("auc", float("nan")), len(evaluated))
    return result


# The alert rules whose events a run's evaluation reports: the default of `gclvad watch` and
# the 0.99 quantile it used before (gclvad.live.threshold).
EVENT_RULES = (DEFAULT_RULE, "quantile:0.99")


def alert_events(
    scores, truths, fps, metadata, postprocessing, segment_length: int, segment_stride: int | None
) -> dict | None:
    """What `gclvad watch` with the run's default settings would have alerted on the scored
    videos with ground truth, judged by events (gclvad.evaluation.events), for EVENT_RULES;
    None for runs without a training-score record, with overlapping windows (watch scores
    consecutive segments) or without frame rates (published features)."""
    record = postprocessing.get(QUANTILES_KEY)
    evaluated = [v for v in scores if truths.get(v) is not None]
    if record is None or "distribution" not in record or (segment_stride or segment_length) != segment_length:
        return None
    if not all(fps.get(video, 0) > 0 for video in evaluated):  # published features: no frame rate, no stream time
        return None
    hold_s = WatchSettings().hold_s
    report = {
        "hold_s": hold_s,
        "default_rule": default_rule(metadata, postprocessing.get("postprocess", {})),
        "note": "alerts replayed on each video's delivered segment scores (score_raw)",
    }
    for rule in EVENT_RULES:
        threshold = rule_threshold(record, rule, "the run's postprocess.json").value
        alerts = {
            video: [
                alert_of(event)
                for event in replay_alerts(
                    scores[video]["score_raw"][::segment_length], segment_length, len(truths[video]), fps[video],
                    threshold, hold_s,
                )
            ]
            for video in evaluated
        }  # fmt: skip
        report[rule] = {"threshold": threshold, **event_metrics(alerts, truths, fps)}
    return report


def dataset_summary(*, run_auc_path: str | Path, out_path: str | Path) -> dict:
    """results/{dataset}/auc.json: the default run's result, as is."""
    result = read_json(run_auc_path)
    result["run"] = str(Path(run_auc_path).parent)
    write_json_atomic(out_path, result)
    return result


# Columns of the aggregate tables: the run, the headline AUC and the field's other metrics.
TABLE_COLUMNS = (
    "variant", "seed", "auc", "auc_d", "auc_g",
    "average_precision", "auc_anomalous_videos", "macro_auc", "false_alarm_rate",
)  # fmt: skip


def aggregate_table(*, auc_paths: Sequence[str | Path], out_path: str | Path) -> None:
    """One row per run (variant, seed, AUCs), then mean ± std per variant over seeds."""
    table = pd.DataFrame([run_row(read_json(path), TABLE_COLUMNS) for path in auc_paths])
    summary = table.groupby("variant", sort=False)["auc"].agg(["mean", "std", "count"]).reset_index()
    others = [key for key in TABLE_COLUMNS[3:] if table[key].notna().any()]
    summary = summary.join(table.groupby("variant", sort=False)[others].mean(), on="variant")
    summary.insert(1, "seed", "all")
    summary = summary.rename(columns={"mean": "auc", "std": "auc_std", "count": "runs"})
    combined = pd.concat([table, summary[summary["runs"] > 1]], ignore_index=True)
    _write_table(combined, out_path)


def run_row(result: Mapping, columns: Sequence[str]) -> dict:
    """A table's row of one run's auc.json: its value of each column, None where it has none
    (a run without ground truth has no AUC; only D's probabilities get a false-alarm rate)."""
    return {key: result.get(key) for key in columns}


def _write_table(table: pd.DataFrame, path: str | Path) -> None:
    write_atomic(path, lambda temporary: table.to_csv(temporary, sep="\t", index=False, float_format="%.4f"))


# results/summary.tsv: the run, from its folder, then the metrics of its auc.json.
RUN_FOLDER_COLUMNS = ("dataset", "extractor", "variant", "seed")
SUMMARY_METRICS = (
    "auc", "auc_raw", "average_precision", "auc_anomalous_videos",
    "macro_auc", "false_alarm_rate", "videos", "frames",
)  # fmt: skip
# A run's auc.json below the results folder; results/{dataset}/auc.json (a copy of the
# dataset's default run) is one level higher and not matched.
RUN_AUC_GLOB = "*/*/*/seed*/auc.json"


def results_summary(*, results_dir: str | Path, out_path: str | Path) -> pd.DataFrame:
    """results/summary.tsv: one row per finished run under `results_dir` (every
    {dataset}/{extractor}/{variant}/seed{seed}/auc.json present), ordered by those four.

    What is present, not what a config asks for: runs of every dataset and config that
    were ever evaluated there, so it is a command rather than a workflow rule."""
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise GclvadError(f"{results_dir}: not a folder (the workflow's results/)")
    paths = list(results_dir.glob(RUN_AUC_GLOB))
    if not paths:
        raise GclvadError(f"{results_dir}: no finished run (no {RUN_AUC_GLOB.replace('*', '?')}) below it")
    rows = sorted(
        (_run_folder(path, results_dir) | run_row(_auc_json(path), SUMMARY_METRICS) for path in paths), key=_run_order
    )
    table = pd.DataFrame(rows, columns=[*RUN_FOLDER_COLUMNS, *SUMMARY_METRICS])
    _write_table(table, out_path)
    log.info("%d runs summarised in %s", len(table), out_path)
    return table


def _run_folder(auc_path: Path, results_dir: Path) -> dict:
    """dataset, extractor, variant and seed of results/{dataset}/{extractor}/{variant}/seed{seed}/auc.json."""
    dataset, extractor, variant, seed_folder, _ = auc_path.relative_to(results_dir).parts
    seed = seed_folder.removeprefix("seed")
    return {
        "dataset": dataset,
        "extractor": extractor,
        "variant": variant,
        "seed": int(seed) if seed.isdigit() else seed,
    }


def _run_order(row: dict) -> tuple:
    # seeds numerically (seed2 before seed10); a seed that is not a number after those
    return (row["dataset"], row["extractor"], row["variant"], isinstance(row["seed"], str), str(row["seed"]).zfill(12))


def _auc_json(path: Path) -> dict:
    try:
        result = read_json(path)
    except (OSError, ValueError) as error:
        raise GclvadError(f"{path}: cannot read the run's metrics ({error})") from error
    if not isinstance(result, dict):
        raise GclvadError(f"{path}: holds {type(result).__name__}, not the metrics object evaluate_run writes")
    return result
