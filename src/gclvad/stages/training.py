"""The workflow's training stages: temporal-difference cleaning, each training stage of a run,
and what cleaning removed (a report on labels, never a selector). See gclvad.stages.preparation.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from gclvad.atomic import write_atomic, write_json_atomic
from gclvad.cleaning import CleaningConfig, enrichment, temporal_difference_mask
from gclvad.errors import GclvadError
from gclvad.features.feature_set import load_feature_set
from gclvad.features.files import read_provenance
from gclvad.gcl.config import STAGE_SECTIONS, Stage
from gclvad.scoring.postprocess import REFERENCE_KEY, score_reference
from gclvad.scoring.quantiles import QUANTILES_KEY, score_quantiles
from gclvad.stages.data import (
    anomalous_rows,
    frame_truths,
    read_json,
    record_precision_used,
    run_videos,
    training_feature_set,
    video_labels,
)
from gclvad.stages.epoch_scores import EpochScoreRecorder, progress_path
from gclvad.stages.settings import stage_config

# The networks (gcl.*, torch) are imported inside the stages that train, so that the jobs that
# only clean or report what cleaning removed start without loading them.

# Training checkpoints: after every epoch, but at most one per this many seconds.
CHECKPOINT_INTERVAL_S = 10.0

log = logging.getLogger(__name__)


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

    params: the stage's settings and seed (gclvad.stages.settings.stage_params); the sections a stage does not
    read keep their defaults, which it never looks at. labels_spec: the dataset's reader
    spec, read only by stages of label-reading variants. A checkpoint is written every epoch
    and removed once the stage's networks are stored. The final stage also records the
    per-epoch diagnostic scores (epoch_scores_path), the distribution of its scores on its
    training segments (metadata "training_score_quantiles", gclvad.live.alerts) and writes the
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
    record_precision_used(stored, features_path)
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
