"""The training data contract, which rows each stage trains on, and the stage plan.

`TrainingData` is what the workflow hands to training: every training segment of every
training video. From it and the config come G's training rows (TD-cleaned, all, or the
labelled-normal videos' for one-class variants) and, for weak supervision, the rows whose
revealed video label forces them to normal. Only configs that read labels (OCC, WS) ever
touch `video_label`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from gclvad.cleaning import CleaningConfig, temporal_difference_mask
from gclvad.errors import GclvadError
from gclvad.gcl.config import GCLConfig, Stage

G_ALONE = (Stage.PRETRAIN_G, Stage.AUTOENCODER)  # stages that train G alone, on plain reconstruction


class BadTrainingDataError(GclvadError):
    """Training arrays that do not fit together (shapes, labels, non-finite values)."""


@dataclass
class TrainingData:
    """All training segments of all training videos, as handed over by the workflow.

    features (N, d) float32; video (N,) int video index per row; position (N,) int segment
    index within its video. video_label (V,) int (1 anomalous, 0 normal, -1 unknown),
    indexed by video index, or None. Only the OCC and WS variants read video_label; it is
    never touched otherwise (not even validated), which tests check.
    """

    features: np.ndarray
    video: np.ndarray
    position: np.ndarray
    video_label: Any = None
    td_mask: np.ndarray | None = None  # (N,) bool rows kept by TD cleaning, if already computed
    td_summary: dict | None = None  # the summary that came with td_mask


@dataclass
class Rows:
    """What training reads of the data beyond the features: G's rows and forced-normal rows."""

    g_rows: np.ndarray  # (R,) indices of the rows G trains on (pretrain_g / autoencoder)
    forced_normal: np.ndarray | None  # (N,) bool, rows of revealed-normal videos; None without WS
    cleaning: dict | None  # TD summary when G trains on cleaned rows
    supervision: dict | None  # what one-class or weak supervision revealed


@dataclass
class PlannedStage:
    name: Stage
    rows: torch.Tensor  # indices into the feature matrix
    epochs: int
    batch_size: int
    steps_per_epoch: int


def check_arrays(data: TrainingData) -> None:
    features = data.features
    if not isinstance(features, np.ndarray) or features.ndim != 2 or features.shape[0] == 0:
        raise BadTrainingDataError(
            f"training data: features must be a non-empty (N, d) numpy array, found "
            f"{getattr(features, 'shape', type(features).__name__)}"
        )
    if not np.issubdtype(features.dtype, np.floating):
        raise BadTrainingDataError(f"training data: features must be floating point, found {features.dtype}")
    for name in ("video", "position"):
        values = np.asarray(getattr(data, name))
        if values.shape != (features.shape[0],) or not np.issubdtype(values.dtype, np.integer):
            raise BadTrainingDataError(
                f"training data: {name} must be an integer array with one entry per feature row "
                f"({features.shape[0]}), found shape {values.shape}, dtype {values.dtype}"
            )
    if np.asarray(data.video).min() < 0:
        raise BadTrainingDataError("training data: video indices must be >= 0")


def select_rows(
    config: GCLConfig, data: TrainingData, seed: int, cleaning: CleaningConfig | None, trains_g_alone: bool
) -> Rows:
    """G's rows and the forced-normal rows of `config` on `data` (labels read only when it must).

    trains_g_alone: whether a stage that trains G on plain reconstruction runs (pretrain_g,
    autoencoder); only then are G's rows selected (and TD cleaning computed if needed)."""
    labels = _video_labels(data) if config.reads_labels else None
    summary, g_rows = _g_rows(config, data, labels, cleaning) if trains_g_alone else (None, np.zeros(0, np.int64))
    forced, supervision = _forced_normal_rows(config, data, labels, seed)
    if config.pretrain_g.data == "normal" and trains_g_alone:
        supervision = {**(supervision or {}), "normal_rows_for_pretraining": int(g_rows.size)}
    return Rows(g_rows=g_rows, forced_normal=forced, cleaning=summary, supervision=supervision)


def _video_labels(data: TrainingData) -> np.ndarray:
    """The video-level labels, validated. Called only for configs that read labels (OCC, WS)."""
    if data.video_label is None:
        raise BadTrainingDataError(
            "training data: this variant reads video-level labels (one-class or weak supervision) "
            "but video_label is None"
        )
    labels = np.asarray(data.video_label)
    n_videos = int(np.asarray(data.video).max()) + 1
    if labels.ndim != 1 or labels.shape[0] < n_videos:
        raise BadTrainingDataError(
            f"training data: video_label must be 1-D with an entry for each of the {n_videos} videos, "
            f"found shape {labels.shape}"
        )
    if not np.isin(labels, (-1, 0, 1)).all():
        raise BadTrainingDataError(
            f"training data: video_label values must be 1, 0 or -1 (unknown), found {sorted(set(labels.tolist()))}"
        )
    return labels.astype(np.int64)


def _g_rows(config: GCLConfig, data: TrainingData, labels, cleaning: CleaningConfig | None):
    """(TD summary or None, rows of G's training set): TD-cleaned, all, or labelled-normal videos."""
    n_rows = data.features.shape[0]
    chosen = config.pretrain_g.data
    if chosen == "td" and data.td_mask is not None:
        mask = np.asarray(data.td_mask, dtype=bool)
        if mask.shape != (n_rows,):
            raise BadTrainingDataError(
                f"training data: td_mask must have one entry per row ({n_rows}), found {mask.shape}"
            )
        return data.td_summary, np.flatnonzero(mask)
    if chosen == "td":
        mask, summary = temporal_difference_mask(data.features, data.video, data.position, cleaning)
        return summary, np.flatnonzero(mask)
    if chosen == "normal":
        rows = np.flatnonzero(labels[np.asarray(data.video)] == 0)
        if rows.size == 0:
            raise BadTrainingDataError(
                "training data: one-class pre-training needs videos labelled normal (0); none found"
            )
        return None, rows
    if chosen == "all":
        return None, np.arange(n_rows)
    return None, np.zeros(0, dtype=np.int64)


def _forced_normal_rows(config: GCLConfig, data: TrainingData, labels, seed: int):
    """Weak supervision: rows of videos whose revealed label is normal (forced to label 0)."""
    fraction = config.supervision.fraction
    if fraction <= 0.0:
        return None, None
    videos = np.unique(np.asarray(data.video))
    n_revealed = round(fraction * len(videos))
    draw = np.random.default_rng([seed, 0x57])  # its own stream: independent of everything else
    revealed = np.sort(draw.choice(videos, size=n_revealed, replace=False))
    revealed_normal = revealed[labels[revealed] == 0]
    forced = np.isin(np.asarray(data.video), revealed_normal)
    summary = {
        "supervision_fraction": fraction,
        "videos": len(videos),
        "videos_revealed": int(n_revealed),
        "revealed_normal": len(revealed_normal),
        "revealed_anomalous": int((labels[revealed] == 1).sum()),
        "rows_forced_normal": int(forced.sum()),
    }
    return forced, summary


# ---------------------------------------------------------------- the stage plan


def selected_stages(config: GCLConfig, names: Sequence[Stage | str] | None) -> list[Stage]:
    """The planned stages named in `names` (all when None), in plan order; names of unplanned
    stages are skipped (e.g. pretrain_d for GCL_B), unknown names rejected."""
    planned = config.stages
    if names is None:
        return planned
    try:
        wanted = {Stage(name) for name in names}
    except ValueError:
        raise BadTrainingDataError(
            f"unknown training stage(s) in {list(map(str, names))}; stages are {', '.join(map(str, Stage))}"
        ) from None
    return [stage for stage in planned if stage in wanted]


def stage_batch_size(config: GCLConfig, n_rows: int) -> int:
    """The batch a stage of n_rows uses: the configured one, capped by max_batch_fraction of the data."""
    optimiser = config.optimiser
    batch = optimiser.batch_size
    if optimiser.max_batch_fraction is not None:
        batch = min(batch, max(optimiser.min_batch, int(n_rows * optimiser.max_batch_fraction)))
    return max(1, min(batch, n_rows))


def plan_stage(name: Stage, config: GCLConfig, rows: Rows, n_rows: int, device) -> PlannedStage:
    if name in G_ALONE:
        stage_rows, epochs = torch.from_numpy(rows.g_rows).to(device), config.pretrain_g.epochs
    elif name == Stage.PRETRAIN_D:
        stage_rows, epochs = torch.arange(n_rows, device=device), config.pretrain_d.epochs
    else:
        stage_rows, epochs = torch.arange(n_rows, device=device), config.loop.epochs
    if stage_rows.numel() == 0:
        raise BadTrainingDataError(f"training data: stage {name} has no rows to train on")
    batch = stage_batch_size(config, stage_rows.numel())
    steps_per_epoch = math.ceil(stage_rows.numel() / batch)
    if epochs > 0 and config.optimiser.min_steps_per_stage > 0:
        epochs = max(epochs, math.ceil(config.optimiser.min_steps_per_stage / steps_per_epoch))
    return PlannedStage(name, stage_rows, epochs, batch, steps_per_epoch)
