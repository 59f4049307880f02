"""One function per workflow stage up to training: what a Snakemake rule (or the CLI) calls.

Each reads its inputs, calls one concept module and writes its outputs. Parameters are
keyword-only and named like the rule's inputs, outputs and params; the scripts in
workflow/scripts/ do nothing but pass them on. The stages after training (scores,
ensembles, evaluation, tables, figures) are in gclvad.run_results; what both read of a
dataset's index and features is gclvad.stage_data.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from gclvad.alerts import QUANTILES_KEY, score_quantiles
from gclvad.atomic import write_atomic, write_json_atomic
from gclvad.cleaning import CleaningConfig, enrichment, temporal_difference_mask
from gclvad.datasets import load_dataset
from gclvad.epoch_scores import EpochScoreRecorder, progress_path
from gclvad.errors import GclvadError
from gclvad.features import load_feature_set, merge_video_features, read_provenance
from gclvad.gcl.config import STAGE_SECTIONS, Stage
from gclvad.postprocess import REFERENCE_KEY, score_reference
from gclvad.runs import stage_config
from gclvad.segment_index import (
    build_segment_index,
    index_summary,
    read_segment_index,
    usable_videos,
    write_segment_index,
)
from gclvad.stage_data import anomalous_rows, frame_truths, read_json, run_videos, training_feature_set, video_labels
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
    features, track, position = training_feature_set(features_path, index_path, train_on, crops).tracks()
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
    feature_set = training_feature_set(features_path, index_path, train_on, crops)
    features, track, position = feature_set.tracks()
    labels = video_labels(labels_spec, feature_set.videos) if config.reads_labels else None
    data = TrainingData(
        features=features,
        video=track,
        position=position,
        video_label=np.repeat(labels, feature_set.crops) if labels is not None else None,  # per track
    )
    if td_mask_path is not None:
        with np.load(td_mask_path) as saved:
            data.td_mask = saved["keep"]
        data.td_summary = read_json(td_summary_path) if td_summary_path else None
    initial = load_models(Path(initial_path), device=config.device) if initial_path else None
    previous = read_models_metadata(Path(initial_path)) if initial_path else {}
    recorder = None
    if epoch_scores_path is not None:
        _, scored = run_videos(features_path, index_path, train_on)
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
    training = training_feature_set(features_path, index_path, train_on, crops)
    with np.load(mask_path) as stored:
        mask = stored["keep"]
    rows = np.repeat(anomalous_rows(training, frame_truths(spec, index_path, training.videos)), training.crops)
    if rows.shape != mask.shape:
        raise GclvadError(f"{mask_path}: a mask of {mask.size} rows for {rows.size} training rows; clean again")
    report = {"kept_fraction": float(mask.mean()), **enrichment(mask, rows)}
    write_json_atomic(out_path, report)
    return report
