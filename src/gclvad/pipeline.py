"""One function per workflow stage: what a Snakemake rule (or the CLI) calls.

Each reads its inputs, calls one concept module and writes its outputs. Parameters are
keyword-only and named like the rule's inputs, outputs and params; the scripts in
workflow/scripts/ do nothing but pass them on.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from gclvad.alerts import QUANTILES_KEY, delivered_score_quantiles, score_quantiles
from gclvad.atomic import write_atomic, write_json_atomic
from gclvad.cleaning import CleaningConfig, enrichment, temporal_difference_mask
from gclvad.datasets import load_dataset
from gclvad.epoch_scores import EpochScoreRecorder, diagnostic_curve, progress_path, write_epoch_scores
from gclvad.errors import GclvadError
from gclvad.evaluate import FALSE_ALARM_THRESHOLD, concatenated_frames, frame_auc, frame_metrics
from gclvad.features import load_feature_set, merge_video_features, read_provenance, stored_videos
from gclvad.frame_scores import read_scores, score_feature_set, write_scores
from gclvad.gcl.config import STAGE_SECTIONS, Stage
from gclvad.postprocess import REFERENCE_KEY, PostprocessConfig, score_reference
from gclvad.runs import stage_config
from gclvad.segment_index import (
    build_segment_index,
    index_summary,
    read_segment_index,
    split_videos,
    usable_videos,
    write_segment_index,
)
from gclvad.weights import sha256_file

# The networks (gcl.train, gcl.store, extractors: torch), the figures (plots: matplotlib)
# and the demo generator are imported inside the stages that use them, so that the jobs
# that only index, merge, clean or evaluate start without loading them.

log = logging.getLogger(__name__)

# Training checkpoints: after every epoch, but at most one per this many seconds.
CHECKPOINT_INTERVAL_S = 10.0


# ---------------------------------------------------------------- videos to features


def generate_demo_dataset(*, manifest: str | Path, generate: Mapping) -> Path:
    """A synthetic dataset (generate["kind"]: demo or walkway) beside `manifest` (videos.csv, annotations.csv)."""
    from gclvad.datasets import generate_synthetic

    written = generate_synthetic(Path(manifest).parent, **generate)
    log.info("synthetic dataset written: %s", written)
    return written


def index_dataset(
    *, spec: Mapping, segment_length: int, on_bad_video: str, out_path: str | Path, segment_stride: int | None = None
) -> None:
    """Read a dataset, decode every video once and write its segment index (TSV)."""
    table = build_segment_index(load_dataset(dict(spec)), segment_length, on_bad_video, stride=segment_stride)
    write_segment_index(table, out_path)
    log.info("\n".join(index_summary(table)))


def extract_video_features(
    *,
    videos: Sequence[Mapping],
    manifest_path: str | Path,
    extractor: Mapping,
    segment_length: int,
    device: str,
    decoders: int | str = "auto",
    threads: int | None = None,
    on_bad_video: str = "stop",
    stride: int | None = None,
) -> None:
    """Extract a shard of videos ({video, source, out_path, segments} each) in this one process:
    parallel decoders, one network, each per-video feature file written as soon as its video is
    done (videos whose file is already current are kept); then the shard's manifest."""
    from gclvad.shard_extraction import VideoJob, extract_videos

    jobs = [
        VideoJob(video["video"], Path(video["source"]), Path(video["out_path"]), video.get("segments"))
        for video in videos
    ]
    report = extract_videos(
        jobs,
        extractor=extractor["name"],
        weights=extractor["weights"],
        precision=extractor.get("precision", "fp32"),
        device=device,
        segment_length=segment_length,
        batch_size=extractor.get("batch_size", 4),
        dtype=extractor.get("dtype", "float16"),
        decoders=decoders,
        threads=threads,
        on_bad_video=on_bad_video,
        crops=extractor.get("crops", "centre"),
        stride=stride,
    )
    write_json_atomic(manifest_path, report.manifest(jobs))


def merge_features(*, parts: Sequence[str | Path], out_path: str | Path) -> None:
    """Merge per-video feature files (named <video>.h5) into one file per dataset."""
    merge_video_features({Path(p).stem: Path(p) for p in parts}, Path(out_path))


def link_published_features(*, spec: Mapping, index_path: str | Path, extractor: str, out_path: str | Path) -> None:
    """The merged feature file of a `features` dataset: its usable videos' .npy files, read in
    place (gclvad.rtfm.link_features), with where they came from."""
    from gclvad.rtfm import link_features

    usable = set(usable_videos(read_segment_index(index_path)))
    parts = {video.id: video.parts for video in load_dataset(dict(spec)) if video.id in usable}
    provenance = {
        "extractor": extractor,
        "weights_sha256": "published",
        "feature_source": str(Path(spec["feature_dir"]).absolute()),
        **{f"{key}_sha256": sha256_file(spec[key]) for key in ("train_list", "test_list")},
    }
    link_features(parts, out_path, provenance, int(spec["segment_length"]))
    log.info("%d videos of published features linked from %s", len(parts), spec["feature_dir"])


# ---------------------------------------------------------------- cleaning and training


def clean_training_features(
    *,
    features_path: str | Path,
    index_path: str | Path,
    train_on: Sequence[str],
    cleaning: Mapping,
    mask_path: str | Path,
    summary_path: str | Path,
    crops: str = "mean",
) -> dict:
    """Temporal-difference cleaning of the training segments (paper §3.3): mask + summary.

    With crops used "each", every crop of a video is its own track and is cleaned as one."""
    features, track, position = _training_features(features_path, index_path, train_on, crops).tracks()
    mask, summary = temporal_difference_mask(features, track, position, CleaningConfig(**cleaning))

    def write_mask(temporary: Path) -> None:
        with open(temporary, "wb") as out:  # np.savez* would append .npz to a path
            np.savez_compressed(out, keep=mask)

    write_atomic(mask_path, write_mask)
    write_json_atomic(summary_path, summary)
    log.info("temporal-difference cleaning kept %d of %d segments", int(mask.sum()), mask.size)
    return summary


def train_stage(
    *,
    stage: Stage | str,
    params: Mapping,
    features_path: str | Path,
    index_path: str | Path,
    train_on: Sequence[str],
    out_path: str | Path,
    device: str = "cpu",
    labels_spec: Mapping | None = None,
    initial_path: str | Path | None = None,
    td_mask_path: str | Path | None = None,
    td_summary_path: str | Path | None = None,
    checkpoint_path: str | Path | None = None,
    epoch_scores_path: str | Path | None = None,
    log_path: str | Path | None = None,
    metadata: Mapping | None = None,
    crops: str = "mean",
) -> None:
    """Run one training stage of a run and store its networks (with the log so far).

    params: the stage's settings and seed (runs.stage_params); the sections a stage does not
    read keep their defaults, which it never looks at. labels_spec: the dataset's reader
    spec, read only by stages of label-reading variants. A checkpoint is written every epoch
    and removed once the stage's networks are stored. The final stage also records the
    per-epoch diagnostic scores (epoch_scores_path), the distribution of its scores on its
    training segments (metadata "training_score_quantiles", gclvad.alerts) and writes the
    whole log (log_path).
    """
    from gclvad.device import resolve_device
    from gclvad.gcl.data import TrainingData
    from gclvad.gcl.store import load_models, read_models_metadata, save_models
    from gclvad.gcl.train import train

    stage = Stage(stage)
    config, seed = stage_config(params, str(resolve_device(device)))
    feature_set = _training_features(features_path, index_path, train_on, crops)
    features, track, position = feature_set.tracks()
    labels = _video_labels(labels_spec, feature_set.videos) if config.reads_labels else None
    data = TrainingData(
        features=features,
        video=track,
        position=position,
        video_label=np.repeat(labels, feature_set.crops) if labels is not None else None,  # per track
    )
    if td_mask_path is not None:
        with np.load(td_mask_path) as saved:
            data.td_mask = saved["keep"]
        data.td_summary = _read_json(td_summary_path) if td_summary_path else None
    initial = load_models(Path(initial_path), device=config.device) if initial_path else None
    previous = read_models_metadata(Path(initial_path)) if initial_path else {}
    recorder = None
    if epoch_scores_path is not None:
        _, scored = _videos(features_path, index_path, train_on)
        resuming = checkpoint_path is not None and Path(checkpoint_path).exists()
        progress = progress_path(checkpoint_path) if checkpoint_path is not None else Path(epoch_scores_path)
        recorder = EpochScoreRecorder(load_feature_set(features_path, scored, crops), progress, resuming)
    result = train(
        config,
        data,
        seed,
        checkpoint_path=Path(checkpoint_path) if checkpoint_path else None,
        on_epoch_end=recorder,
        stages=[stage],
        initial=initial,
        checkpoint_interval_s=CHECKPOINT_INTERVAL_S,
    )
    if recorder is not None:
        recorder.save(epoch_scores_path)
    stored = {
        **previous,
        **(metadata or {}),
        "log": previous.get("log", []) + result.log,
        "steps": {**previous.get("steps", {}), **result.steps},
        **read_provenance(features_path),
    }
    for key, value in (("cleaning", result.cleaning), ("supervision", result.supervision)):
        if value is not None:
            stored[key] = value
    if epoch_scores_path is not None:  # the final stage: its scores of its own training segments
        stored.update(_training_score_records(result.models, data.features, feature_set.crops))
    save_models(Path(out_path), result.models, metadata=stored, sections=STAGE_SECTIONS[stage])
    if log_path is not None:
        write_atomic(log_path, lambda temporary: pd.DataFrame(stored["log"]).to_csv(temporary, sep="\t", index=False))
    if checkpoint_path is not None:
        Path(checkpoint_path).unlink(missing_ok=True)
        progress_path(checkpoint_path).unlink(missing_ok=True)
    log.info("stage %s: %s optimiser steps", stage, result.steps)


def _training_score_records(models, features, crops: int) -> dict:
    """What a trained run keeps of its scores of its own training segments: the quantiles
    `gclvad watch` takes its alert threshold from, and the per-crop-position reference that
    rank normalisation (crops, ensembles) compares new scores with."""
    from gclvad.gcl.store import score

    scores = score(models, features)["score"].reshape(-1, crops)
    return {
        # of the segments' scores, crops combined as by default (their mean)
        QUANTILES_KEY: score_quantiles(scores.mean(axis=1), models.config.scoring.model),
        REFERENCE_KEY: score_reference(scores),
    }


def _read_json(path: str | Path) -> dict:
    return json.loads(Path(path).read_text())


def _videos(features_path, index_path, train_on) -> tuple[list[str], list[str]]:
    """(training, scored) videos of the index that have features: a video found bad while it
    was extracted has none (its reason is in the extraction's log and manifest)."""
    train_ids, scored = split_videos(read_segment_index(index_path), train_on)
    stored = set(stored_videos(features_path))
    missing = sorted(set(train_ids + scored) - stored)
    if missing:
        log.warning(
            "%d usable videos of the index have no features (bad when extracted): %s",
            len(missing),
            ", ".join(missing[:10]),
        )
    return [v for v in train_ids if v in stored], [v for v in scored if v in stored]


def cleaning_enrichment(
    *,
    features_path: str | Path,
    index_path: str | Path,
    train_on: Sequence[str],
    crops: str,
    spec: Mapping,
    mask_path: str | Path,
    out_path: str | Path,
) -> dict:
    """What a TD mask did to the training rows whose frame labels the dataset knows: the
    anomalous share among all, kept and removed rows (a row is anomalous when at least half
    its frames are). A job of its own, read by evaluation only: labels report on the
    cleaning, they never set its threshold, and editing them re-runs no training."""
    training = _training_features(features_path, index_path, train_on, crops)
    with np.load(mask_path) as stored:
        mask = stored["keep"]
    rows = np.repeat(_anomalous_rows(training, _truths(spec, index_path, training.videos)), training.crops)
    if rows.shape != mask.shape:
        raise GclvadError(f"{mask_path}: a mask of {mask.size} rows for {rows.size} training rows; clean again")
    report = {"kept_fraction": float(mask.mean()), **enrichment(mask, rows)}
    write_json_atomic(out_path, report)
    return report


def _anomalous_rows(feature_set, truths: Mapping) -> np.ndarray:
    """(N,) per segment row: 1 when at least half its frames are anomalous, 0 when fewer, -1
    when its video's frame labels are unknown."""
    length = int(feature_set.attrs["segment_length"])
    stride = int(feature_set.attrs.get("segment_stride", length))
    out = np.full(len(feature_set.features), -1, dtype=np.int8)
    for i, video in enumerate(feature_set.videos):
        truth = truths.get(video)
        if truth is None:
            continue
        for row in range(feature_set.offsets[i], feature_set.offsets[i + 1]):
            start = (row - feature_set.offsets[i]) * stride
            window = truth[start : start + length]  # a padded tail's window holds fewer frames
            out[row] = int(window.size > 0 and window.mean() >= 0.5)
    return out


def _training_features(features_path, index_path, train_on, crops):
    """The FeatureSet of the dataset's training videos, crops used as `crops` says."""
    train_ids, _ = _videos(features_path, index_path, train_on)
    return load_feature_set(features_path, train_ids, crops)


def _video_labels(spec: Mapping, videos: Sequence[str]) -> np.ndarray:
    """Video-level labels (1, 0, -1 unknown) of `videos`: only OCC and weakly supervised stages ask."""
    labels = {video.id: video.label for video in load_dataset(dict(spec))}
    return np.array([-1 if labels.get(v) is None else int(labels[v]) for v in videos])


# ---------------------------------------------------------------- scores, evaluation, tables


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
    from gclvad.scorer import load_scorer

    settings = PostprocessConfig(**(postprocess or {}))
    _, scored = _videos(features_path, index_path, train_on)
    scorer = load_scorer(Path(models_path), settings, device=str(resolve_device(device)))
    feature_set = load_feature_set(features_path, scored, crops)
    scores = score_feature_set(scorer, feature_set, segment_length, settings.smoothing_sigma)
    write_scores(out_path, scores)
    models = os.path.relpath(models_path, Path(postprocess_path).parent)  # found from the run's folder, wherever it is
    # what the run delivers for its own training segments (crops combined, ensembles as they
    # score): the distribution `gclvad watch` takes its default alert threshold from
    training, _ = _videos(features_path, index_path, train_on)
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
) -> None:
    """A seed ensemble's models file (gclvad.scorer): its members' networks with each member's
    reference scores on the training segments; its training log is its members' logs."""
    from gclvad.gcl.store import read_models_metadata
    from gclvad.scorer import write_ensemble

    training = _training_features(features_path, index_path, train_on, crops)
    members = [read_models_metadata(Path(path)) for path in member_models]
    stored = {
        # what all members share (the extractor, the settings); not what each has of its own
        **{key: value for key, value in members[0].items() if key not in _MEMBER_OWN},
        **(metadata or {}),
        "members": [{"seed": m.get("seed"), "config_sha256": m.get("config_sha256")} for m in members],
        "log": [{**row, "member": i} for i, m in enumerate(members) for row in m.get("log", [])],
    }
    write_ensemble(list(member_models), training, PostprocessConfig(**postprocess), out_models, stored)
    write_atomic(out_log, lambda temporary: pd.DataFrame(stored["log"]).to_csv(temporary, sep="\t", index=False))
    _, scored = _videos(features_path, index_path, train_on)  # no epochs: an empty diagnostic
    write_epoch_scores(out_epoch_scores, load_feature_set(features_path, scored, crops), [], [])
    log.info("ensemble of %d runs", len(member_models))


def _truths(spec: Mapping, index_path: str | Path, videos: Sequence[str]) -> dict:
    """Frame ground truth (bool array, or None where unknown) of `videos`."""
    frames = read_segment_index(index_path).set_index("video")["frames"]
    by_id = {video.id: video for video in load_dataset(dict(spec))}
    return {v: by_id[v].truth(int(frames[v])) for v in videos}


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
) -> dict:
    """The field's frame-level metrics of the run's final model (its delivered, post-processed
    scores; `auc_raw` before post-processing, the paper's protocol; D's and G's AUC), plus
    the per-epoch diagnostic curve, and what its TD cleaning removed (`enrichment_path`)."""
    from gclvad.gcl.store import read_models_metadata

    scores = read_scores(scores_path)
    truths = _truths(spec, index_path, list(scores))
    evaluated = [v for v, t in truths.items() if t is not None]
    metadata = read_models_metadata(Path(models_path))
    result = {}
    if evaluated:
        # the field's metrics of the run's score; a false-alarm rate only for D's probabilities
        scored_by = (
            metadata.get("settings", {}).get("scoring", {}).get("model", "d" if "d" in scores[evaluated[0]] else "g")
        )
        threshold = FALSE_ALARM_THRESHOLD if scored_by == "d" else None
        result.update(frame_metrics({v: scores[v]["score"] for v in evaluated}, truths, threshold))
    for name, key in (("score_raw", "auc_raw"), ("d", "auc_d"), ("g", "auc_g")):
        if evaluated and name in scores[evaluated[0]]:
            result[key] = frame_auc({v: scores[v][name] for v in evaluated}, truths)
    result.update(
        videos=len(evaluated),
        frames=int(sum(len(truths[v]) for v in evaluated)),
        anomalous_frames=int(sum(truths[v].sum() for v in evaluated)),
    )
    result.update({key: value for key, value in metadata.items() if key != "log"})
    frames = read_segment_index(index_path).set_index("video")["frames"]
    curve = diagnostic_curve(epoch_scores_path, truths, frames, segment_length, segment_stride)
    write_atomic(out_curve, lambda temporary: curve.to_csv(temporary, sep="\t", index=False))
    result["diagnostic_note"] = (
        "auc is the model at the end of training; the per-epoch test AUC in "
        f"{Path(out_curve).name} is a diagnostic and selects nothing"
    )
    result["epochs_logged"] = len(metadata.get("log", []))
    if enrichment_path is not None:
        result["cleaning_enrichment"] = _read_json(enrichment_path)
    result.update(_read_json(postprocess_path))
    result["postprocess_note"] = (
        "auc and the metrics beside it are of the scores the run delivers (after post-processing); "
        "auc_raw is of the same scores before it (the paper's protocol)"
    )
    write_json_atomic(out_auc, result)
    log.info("frame AUC %.4f over %d videos", result.get("auc", float("nan")), len(evaluated))
    return result


def dataset_summary(*, run_auc_path: str | Path, out_path: str | Path) -> dict:
    """results/{dataset}/auc.json: the default run's result, as is."""
    result = _read_json(run_auc_path)
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
    rows = []
    for path in auc_paths:
        result = _read_json(path)
        rows.append({key: result.get(key) for key in TABLE_COLUMNS})
    table = pd.DataFrame(rows)
    summary = table.groupby("variant", sort=False)["auc"].agg(["mean", "std", "count"]).reset_index()
    others = [key for key in TABLE_COLUMNS[3:] if table[key].notna().any()]
    summary = summary.join(table.groupby("variant", sort=False)[others].mean(), on="variant")
    summary.insert(1, "seed", "all")
    summary = summary.rename(columns={"mean": "auc", "std": "auc_std", "count": "runs"})
    combined = pd.concat([table, summary[summary["runs"] > 1]], ignore_index=True)
    write_atomic(out_path, lambda temporary: combined.to_csv(temporary, sep="\t", index=False, float_format="%.4f"))


# ---------------------------------------------------------------- figures


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
    from gclvad import plots

    scores = read_scores(scores_path)
    truths = _truths(spec, index_path, list(scores))
    evaluated = [v for v, t in truths.items() if t is not None]
    log_rows = pd.read_csv(training_log_path, sep="\t").to_dict("records")
    if not evaluated:  # footage without labels: scores and training only
        plots.plot_message(outputs["roc"], title, "no scored video has frame ground truth")
        plots.plot_video_scores([(v, scores[v]["score"], None) for v in list(scores)[:4]], outputs["videos"])
        plots.plot_training_curves(log_rows, outputs["curves"])
        return
    named = {name.upper(): _frames_of(scores, name, truths) for name in ("d", "g") if name in scores[evaluated[0]]}
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
    from gclvad import plots

    scores, baseline = read_scores(scores_path), read_scores(baseline_scores_path)
    truths = _truths(spec, index_path, list(scores))
    if not any(t is not None for t in truths.values()):
        plots.plot_message(out_path, title, "no scored video has frame ground truth")
        return
    first = next(iter(scores.values()))
    histograms = {"AE_AllData": _frames_of(baseline, "g", truths)}
    histograms.update({name.upper(): _frames_of(scores, name, truths) for name in ("g", "d") if name in first})
    truth = concatenated_frames({v: s["score"] for v, s in scores.items()}, truths)[1]
    plots.plot_score_histograms(truth, histograms, out_path)


def _frames_of(scores: Mapping, name: str, truths: Mapping) -> np.ndarray:
    """Score `name` of every frame with ground truth, in the order concatenated_frames uses."""
    return concatenated_frames({v: s[name] for v, s in scores.items()}, truths)[0]


def pick_videos(videos: Sequence[str], truths: Mapping, count: int = 4) -> list[str]:
    """A few videos to draw: anomalous ones first, then a normal one."""
    anomalous = [v for v in videos if truths[v].any()]
    normal = [v for v in videos if not truths[v].any()]
    chosen = anomalous[: count - 1] + normal[:1]
    return chosen or list(videos[:count])
