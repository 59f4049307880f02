"""Training GCL (paper §3, Fig. 2), top to bottom: data, stages, the cooperative step, checkpoints.

A run is a sequence of stages, each a number of epochs over a set of training rows:

    gcl:          [pretrain_g (G on pretrain_data rows, plain reconstruction)]
                  [pretrain_d (D on the frozen pre-trained G's pseudo-labels, all rows)]
                  cooperative (the GCL loop, all rows)
    autoencoder:  autoencoder (G on pretrain_data rows, plain reconstruction)

The pre-training stages are skipped when pretrain_data is "none" (GCL_B); pretrain_d
also when pretrain_d is False or its epochs are 0.

One cooperative iteration, on one batch drawn from ALL training segments of all videos,
reshuffled every epoch (no temporal order within or across batches, §3.1):
    1. G labels the batch: 1 where its reconstruction error >= mu + k_G sigma (Eq. 2);
    2. D takes one BCE step on those labels (Eq. 3);
    3. D labels the batch: 1 where its probability >= mu + k_D sigma (Eq. 4) -- with D
       AFTER its update: the paper trains D on G's labels "first", and "in the next step"
       labels from D improve G (§3.2), i.e. sequentially, so D's freshest state labels;
       `d_labels_after_d_step=False` uses D before its step instead;
    4. G takes one negative-learning step: its target is the input for D-normal rows and
       a pseudo reconstruction target for D-anomalous rows (Eq. 5-6).
Labels are computed without gradients and without dropout (networks in eval mode). With
dropout 0 (the default) G's one training forward pass also yields its labels: eval and
train mode then compute the same function, and D's step does not touch G.

Reproducibility: one seed fixes model initialisation (torch's global RNG), the shuffling
and every random target (a torch.Generator on the training device) and the weak-supervision
draw (numpy Generator). On CPU the same seed gives bit-identical results. Every epoch ends
with an atomic checkpoint (temp file + rename) holding models, optimisers, all RNG states,
stage, epoch and log; `train` given an existing checkpoint resumes and ends exactly as an
uninterrupted run would.

Small data: the paper's batch 8192 x 15 epochs is ~1,400 steps on UCF-Crime but ~15 on a
few hundred segments. `max_batch_fraction`, `min_batch` and `min_steps_per_stage` (see
config) size the batch to the data and stretch a stage's epochs to a minimum number of
optimiser steps; the steps actually taken are in every log row and in TrainResult.steps.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from gclvad.cleaning import temporal_difference_mask
from gclvad.errors import GclvadError
from gclvad.gcl.config import GCLConfig, from_dict
from gclvad.gcl.labels import negative_learning_loss, soft_targets, threshold_labels
from gclvad.gcl.models import Discriminator, Generator, Models, build_models, reconstruction_error

CHECKPOINT_FORMAT = "gclvad-gcl-checkpoint/1"
MODELS_FORMAT = "gclvad-gcl-models/1"


class BadTrainingDataError(GclvadError):
    """Training arrays that do not fit together (shapes, labels) or a checkpoint that does not fit them."""


class StaleCheckpointError(BadTrainingDataError):
    """A checkpoint written for another config, seed, data or starting networks."""


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
class TrainResult:
    models: Models
    log: list[dict]  # one row per (stage, epoch): steps, losses, label fractions, lr, seconds
    cleaning: dict | None  # temporal-difference cleaning summary when TD data was used
    steps: dict[str, int]  # optimiser steps actually taken per stage
    supervision: dict | None  # what weak/one-class supervision revealed, when labels were read
    config: GCLConfig
    seed: int


@dataclass
class _Stage:
    name: str
    rows: torch.Tensor  # indices into the feature matrix
    epochs: int
    batch_size: int
    steps_per_epoch: int


@dataclass
class _State:
    """Everything that changes during training and must survive a checkpoint."""

    models: Models
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer | None
    rng: torch.Generator
    stage_index: int = 0
    epochs_done: int = 0  # completed epochs of stages[stage_index]
    log: list[dict] = field(default_factory=list)
    steps: dict[str, int] = field(default_factory=dict)


# ----------------------------------------------------------------------------------
# The public entry point
# ----------------------------------------------------------------------------------


def train(
    config: GCLConfig,
    data: TrainingData,
    seed: int,
    checkpoint_path: Path | None = None,
    on_epoch_end: Callable[[str, int, Models], None] | None = None,
    stages: Sequence[str] | None = None,
    initial: Models | None = None,
    checkpoint_interval_s: float = 0.0,
) -> TrainResult:
    """Train the networks `config` describes on `data`; resume from `checkpoint_path` if it exists.

    on_epoch_end(stage, epoch, models) is called after each epoch (epoch counts from 1
    within a stage), just before its checkpoint is written; an exception raised there
    interrupts training, and a later call with the same checkpoint_path continues from that
    epoch. After a kill, epochs since the last checkpoint are run (and reported) again.

    stages: run only these of the planned stages (the workflow runs one stage per job),
    starting from the `initial` networks (the previous stage's result) instead of fresh
    ones. Each stage seeds its own random streams from (seed, stage) and starts with fresh
    optimisers, so running the stages one call at a time gives exactly what one call gives.

    checkpoint_interval_s: write the checkpoint after an epoch only when this many seconds
    have passed since the last one (always after a stage's first and last epoch). Epochs of
    a few small steps (the `small` preset) would otherwise spend their time writing files;
    a resumed run replays the epochs since the last checkpoint, with the same result.
    """
    _check_arrays(data)
    device = torch.device(config.device)
    features = torch.from_numpy(np.ascontiguousarray(data.features, dtype=np.float32)).to(device)
    n_rows, dim = features.shape

    # 1. seed everything (model initialisation uses torch's global RNG)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    rng = torch.Generator(device=device).manual_seed(seed)

    # 2. which rows each stage trains on; labels are read only by OCC / WS configs
    labels = _video_labels(data) if config.reads_labels else None
    if stages is None or {"pretrain_g", "autoencoder"} & set(stages):
        cleaning, pretrain_rows = _pretrain_rows(config, data, labels, device)
    else:  # G's training rows are only needed by its own stage
        cleaning, pretrain_rows = None, torch.arange(n_rows, device=device)
    forced_normal, supervision = _forced_normal_rows(config, data, labels, seed, device)
    if config.pretrain_data == "normal" and cleaning is None and (stages is None or "pretrain_g" in stages or "autoencoder" in stages):
        supervision = {**(supervision or {}), "normal_rows_for_pretraining": int(pretrain_rows.numel())}

    planned = _plan_stages(config, pretrain_rows, torch.arange(n_rows, device=device))
    selected = _selected_stages(planned, stages)

    # 3. networks and optimisers (RMSprop with momentum, paper §4)
    models = _starting_models(config, dim, initial)
    opt_g = _rmsprop(models.generator, config)
    opt_d = _rmsprop(models.discriminator, config) if models.discriminator is not None else None
    state = _State(models=models, opt_g=opt_g, opt_d=opt_d, rng=rng, steps={s.name: 0 for s in selected})

    # 4. resume
    fingerprint = _fingerprint(data, config, seed, [s.name for s in selected], initial)
    if checkpoint_path is not None and Path(checkpoint_path).exists():
        _load_checkpoint(Path(checkpoint_path), state, fingerprint)

    # 5. the stages
    autocast = _autocast(config, device)
    last_checkpoint = time.monotonic()
    while state.stage_index < len(selected):
        stage = selected[state.stage_index]
        if state.epochs_done == 0:
            _start_stage(state, stage, seed, config)
        pretrained_errors = None
        if stage.name == "pretrain_d" and state.epochs_done < stage.epochs:
            # G is frozen in this stage: its errors are computed once, not once per batch.
            pretrained_errors = _errors_of_all_rows(models.generator, features, config, autocast)
        while state.epochs_done < stage.epochs:
            started = time.perf_counter()
            totals = _run_epoch(stage, state, features, forced_normal, pretrained_errors, config, autocast)
            state.epochs_done += 1
            state.steps[stage.name] += stage.steps_per_epoch
            state.log.append(
                {
                    "stage": stage.name,
                    "epoch": state.epochs_done,
                    "steps": stage.steps_per_epoch,
                    "stage_steps": state.steps[stage.name],
                    "batch_size": stage.batch_size,
                    "rows": int(stage.rows.numel()),
                    **totals,
                    "lr": config.lr,
                    "seconds": time.perf_counter() - started,
                }
            )
            # The callback runs before the checkpoint is written (so a kill between the two
            # replays this epoch rather than losing what the callback records), and the
            # checkpoint is written even when the callback raises.
            try:
                if on_epoch_end is not None:
                    _set_eval(models)
                    on_epoch_end(stage.name, state.epochs_done, models)
            finally:
                if checkpoint_path is not None and _checkpoint_due(state, stage, last_checkpoint, checkpoint_interval_s):
                    _save_checkpoint(Path(checkpoint_path), state, fingerprint, cleaning, supervision)
                    last_checkpoint = time.monotonic()
        state.stage_index, state.epochs_done = state.stage_index + 1, 0

    _set_eval(models)
    return TrainResult(
        models=models,
        log=state.log,
        cleaning=cleaning,
        steps=dict(state.steps),
        supervision=supervision,
        config=config,
        seed=seed,
    )


# ----------------------------------------------------------------------------------
# One epoch, one step
# ----------------------------------------------------------------------------------


def _run_epoch(stage, state, features, forced_normal, pretrained_errors, config, autocast) -> dict:
    """Shuffle the stage's rows, split them into near-equal batches, take one step per batch."""
    order = stage.rows[torch.randperm(stage.rows.numel(), generator=state.rng, device=stage.rows.device)]
    sums: dict[str, float] = {}
    for batch_rows in torch.tensor_split(order, stage.steps_per_epoch):
        batch = features[batch_rows]
        forced = forced_normal[batch_rows] if forced_normal is not None else None
        if stage.name in ("pretrain_g", "autoencoder"):
            values = {"loss_g": _reconstruction_step(state.models.generator, state.opt_g, batch, autocast)}
        elif stage.name == "pretrain_d":
            values = _discriminator_step(state, batch, pretrained_errors[batch_rows], forced, config, autocast)
        else:
            values = _cooperative_step(state, batch, forced, config, autocast)
        for key, value in values.items():
            sums[key] = sums.get(key, 0.0) + value
    return {key: value / stage.steps_per_epoch for key, value in sums.items()}


def _reconstruction_step(generator: Generator, optimizer, batch, autocast) -> float:
    """Plain autoencoder training, Eq. 1: mean over the batch of ||f - G(f)||^2."""
    generator.train()
    with autocast():
        reconstruction = generator(batch)
    loss = (reconstruction.float() - batch).pow(2).sum(dim=1).mean()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.item()


def _cooperative_step(state: _State, batch, forced, config: GCLConfig, autocast) -> dict:
    """One GCL iteration: G labels -> D step -> D labels -> G negative-learning step."""
    generator, discriminator = state.models.generator, state.models.discriminator
    # G's labels come from its errors without dropout. With dropout 0, G's training-mode
    # forward gives the same output, and D's step does not change G, so that single forward
    # serves both G's labels and G's step (one G forward per iteration saved, same result).
    share_forward = config.dropout == 0.0
    if share_forward:
        generator.train()
        with autocast():
            reconstruction = generator(batch)
        errors = (reconstruction.detach().float() - batch).pow(2).sum(dim=1)
    else:
        with torch.no_grad(), autocast():
            generator.eval()
            errors = reconstruction_error(generator, batch)
    with torch.no_grad(), autocast():
        if config.g_label_source == "d" and not config.d_labels_after_d_step:
            discriminator.eval()
            anomalous = threshold_labels(discriminator.probability(batch), config.d_threshold_k)
    out = _discriminator_step(state, batch, errors, forced, config, autocast)

    with torch.no_grad(), autocast():
        if config.g_label_source == "g":  # ablation: G trained on its own pseudo-labels
            anomalous = threshold_labels(errors, config.g_threshold_k)
        elif config.d_labels_after_d_step:
            discriminator.eval()
            anomalous = threshold_labels(discriminator.probability(batch), config.d_threshold_k)
    if forced is not None:
        anomalous = anomalous & ~forced

    if not share_forward:
        generator.train()
        with autocast():
            reconstruction = generator(batch)
    loss_g = negative_learning_loss(
        reconstruction, batch, anomalous, config.nl_target, config.gaussian_sigma, state.rng
    )
    state.opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    state.opt_g.step()
    out["loss_g"] = loss_g.item()
    out["d_label_fraction"] = anomalous.float().mean().item()
    return out


def _discriminator_step(state: _State, batch, errors, forced, config: GCLConfig, autocast) -> dict:
    """D's BCE step (Eq. 3) on G's pseudo-labels (thresholded, or soft), forced-normal rows at 0."""
    discriminator = state.models.discriminator
    if config.d_targets == "soft":
        targets = soft_targets(errors)
        g_labels = threshold_labels(errors, config.g_threshold_k)  # only logged
    else:
        g_labels = threshold_labels(errors, config.g_threshold_k)
        targets = g_labels.float()
    if forced is not None:
        targets = torch.where(forced, torch.zeros_like(targets), targets)
        g_labels = g_labels & ~forced
    discriminator.train()
    with autocast():
        logits = discriminator(batch)
    loss_d = F.binary_cross_entropy_with_logits(logits.float(), targets)
    state.opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    state.opt_d.step()
    return {"loss_d": loss_d.item(), "g_label_fraction": g_labels.float().mean().item()}


# ----------------------------------------------------------------------------------
# Data selection and stage plan
# ----------------------------------------------------------------------------------


def _check_arrays(data: TrainingData) -> None:
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


def _pretrain_rows(config: GCLConfig, data: TrainingData, labels, device) -> tuple[dict | None, torch.Tensor]:
    """Rows of G's (pre-)training set: TD-cleaned, all, or labelled-normal videos."""
    n_rows = data.features.shape[0]
    if config.pretrain_data == "td" and data.td_mask is not None:
        mask = np.asarray(data.td_mask, dtype=bool)
        if mask.shape != (n_rows,):
            raise BadTrainingDataError(f"training data: td_mask must have one entry per row ({n_rows}), found {mask.shape}")
        return data.td_summary, torch.from_numpy(np.flatnonzero(mask)).to(device)
    if config.pretrain_data == "td":
        mask, summary = temporal_difference_mask(
            data.features,
            data.video,
            data.position,
            threshold=config.td_threshold,
            normalize=config.td_normalize,
            mode=config.td_mode,
            percentile=config.td_percentile,
        )
        return summary, torch.from_numpy(np.flatnonzero(mask)).to(device)
    if config.pretrain_data == "normal":
        rows = np.flatnonzero(labels[np.asarray(data.video)] == 0)
        if rows.size == 0:
            raise BadTrainingDataError("training data: one-class pre-training needs videos labelled normal (0); none found")
        return None, torch.from_numpy(rows).to(device)
    if config.pretrain_data == "all":
        return None, torch.arange(n_rows, device=device)
    return None, torch.zeros(0, dtype=torch.long, device=device)


def _forced_normal_rows(config: GCLConfig, data: TrainingData, labels, seed: int, device):
    """Weak supervision: rows of videos whose revealed label is normal (forced to label 0)."""
    if config.supervision_fraction <= 0.0:
        return None, None
    videos = np.unique(np.asarray(data.video))
    n_revealed = int(round(config.supervision_fraction * len(videos)))
    draw = np.random.default_rng([seed, 0x57])  # its own stream: independent of everything else
    revealed = np.sort(draw.choice(videos, size=n_revealed, replace=False))
    revealed_normal = revealed[labels[revealed] == 0]
    forced = np.isin(np.asarray(data.video), revealed_normal)
    summary = {
        "supervision_fraction": config.supervision_fraction,
        "videos": int(len(videos)),
        "videos_revealed": int(n_revealed),
        "revealed_normal": int(len(revealed_normal)),
        "revealed_anomalous": int((labels[revealed] == 1).sum()),
        "rows_forced_normal": int(forced.sum()),
    }
    return torch.from_numpy(forced).to(device), summary


def stage_batch_size(config: GCLConfig, n_rows: int) -> int:
    """The batch a stage of n_rows uses: the configured one, capped by max_batch_fraction of the data."""
    batch = config.batch_size
    if config.max_batch_fraction is not None:
        batch = min(batch, max(config.min_batch, int(n_rows * config.max_batch_fraction)))
    return max(1, min(batch, n_rows))


def _plan_stages(config: GCLConfig, pretrain_rows: torch.Tensor, all_rows: torch.Tensor) -> list[_Stage]:
    if config.method == "autoencoder":
        plan = [("autoencoder", pretrain_rows, config.epochs)]
    else:
        plan = []
        if config.pretrain_data != "none":
            plan.append(("pretrain_g", pretrain_rows, config.pretrain_g_epochs))
            if config.pretrain_d:
                plan.append(("pretrain_d", all_rows, config.pretrain_d_epochs))
        plan.append(("cooperative", all_rows, config.epochs))
    stages = []
    for name, rows, epochs in plan:
        if rows.numel() == 0:
            raise BadTrainingDataError(f"training data: stage {name} has no rows to train on")
        batch = stage_batch_size(config, rows.numel())
        steps_per_epoch = math.ceil(rows.numel() / batch)
        if epochs > 0 and config.min_steps_per_stage > 0:
            epochs = max(epochs, math.ceil(config.min_steps_per_stage / steps_per_epoch))
        stages.append(_Stage(name, rows, epochs, batch, steps_per_epoch))
    return stages


def _checkpoint_due(state: _State, stage: _Stage, last_checkpoint: float, interval_s: float) -> bool:
    first_or_last = state.epochs_done in (1, stage.epochs)
    return first_or_last or time.monotonic() - last_checkpoint >= interval_s


# Stage numbers for seeding: fixed, so a stage's random streams do not depend on which
# other stages ran in the same call.
STAGE_NUMBERS = {"pretrain_g": 1, "autoencoder": 1, "pretrain_d": 2, "cooperative": 3}


def _selected_stages(planned: list[_Stage], names: Sequence[str] | None) -> list[_Stage]:
    """The planned stages named in `names` (all when None); names of unplanned stages are skipped
    (e.g. "pretrain_d" for GCL_B), unknown names rejected."""
    if names is None:
        return planned
    unknown = set(names) - set(STAGE_NUMBERS)
    if unknown:
        raise BadTrainingDataError(f"unknown training stage(s) {sorted(unknown)}; stages are {sorted(STAGE_NUMBERS)}")
    return [stage for stage in planned if stage.name in names]


def _starting_models(config: GCLConfig, dim: int, initial: Models | None) -> Models:
    """Fresh networks, or a copy of `initial` (which the caller keeps unchanged)."""
    if initial is None:
        return build_models(config, dim)
    if initial.dim != dim:
        raise BadTrainingDataError(f"starting networks take {initial.dim}-d features, the data has {dim}")
    models = build_models(config, dim)
    models.generator.load_state_dict(initial.generator.state_dict())
    if models.discriminator is not None and initial.discriminator is not None:
        models.discriminator.load_state_dict(initial.discriminator.state_dict())
    return models


def _start_stage(state: _State, stage: _Stage, seed: int, config: GCLConfig) -> None:
    """Seed the stage's random streams and give it fresh optimisers."""
    stage_seed = seed * 10 + STAGE_NUMBERS[stage.name]
    torch.manual_seed(stage_seed)
    state.rng.manual_seed(stage_seed)
    state.opt_g = _rmsprop(state.models.generator, config)
    if state.models.discriminator is not None:
        state.opt_d = _rmsprop(state.models.discriminator, config)


def _rmsprop(module: torch.nn.Module, config: GCLConfig) -> torch.optim.Optimizer:
    return torch.optim.RMSprop(module.parameters(), lr=config.lr, momentum=config.momentum)


def _autocast(config: GCLConfig, device: torch.device):
    if config.precision == "bf16":
        return lambda: torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext


def _set_eval(models: Models) -> None:
    models.generator.eval()
    if models.discriminator is not None:
        models.discriminator.eval()


@torch.no_grad()
def _errors_of_all_rows(generator: Generator, features: torch.Tensor, config: GCLConfig, autocast) -> torch.Tensor:
    generator.eval()
    parts = []
    for start in range(0, features.shape[0], config.score_chunk):
        with autocast():
            parts.append(reconstruction_error(generator, features[start : start + config.score_chunk]))
    return torch.cat(parts)


# ----------------------------------------------------------------------------------
# Checkpoints
# ----------------------------------------------------------------------------------


def _fingerprint(data: TrainingData, config: GCLConfig, seed: int, stages: list[str], initial: Models | None) -> dict:
    """What a checkpoint must match to be resumed: config, seed, stages, (a sample of) the data
    and the starting networks."""
    n_rows = data.features.shape[0]
    sample = np.ascontiguousarray(data.features[:: max(1, n_rows // 1024)], dtype=np.float32)
    digest = hashlib.sha256(sample.tobytes())
    digest.update(np.ascontiguousarray(data.video, dtype=np.int64).tobytes())
    digest.update(np.ascontiguousarray(data.position, dtype=np.int64).tobytes())
    if initial is not None:
        for module in (initial.generator, initial.discriminator):
            for tensor in (module.state_dict().values() if module is not None else ()):
                digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return {
        "config": config.to_dict(),
        "seed": seed,
        "shape": list(data.features.shape),
        "data_sha256": digest.hexdigest(),
        "stages": stages,
    }


def _atomic_save(obj: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    torch.save(obj, temporary)
    os.replace(temporary, path)


def _save_checkpoint(path: Path, state: _State, fingerprint, cleaning, supervision) -> None:
    numpy_state = np.random.get_state()
    checkpoint = {
        "format": CHECKPOINT_FORMAT,
        "fingerprint": fingerprint,
        "stage_index": state.stage_index,
        "epochs_done": state.epochs_done,
        "generator": state.models.generator.state_dict(),
        "discriminator": state.models.discriminator.state_dict() if state.models.discriminator is not None else None,
        "opt_g": state.opt_g.state_dict(),
        "opt_d": state.opt_d.state_dict() if state.opt_d is not None else None,
        "rng": {
            "generator": state.rng.get_state(),
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "numpy": [numpy_state[0], torch.from_numpy(numpy_state[1].astype(np.int64)), *numpy_state[2:]],
            "python": _python_state_to_lists(random.getstate()),
        },
        "log": state.log,
        "steps": state.steps,
        "cleaning": cleaning,
        "supervision": supervision,
    }
    _atomic_save(checkpoint, path)


def _load_checkpoint(path: Path, state: _State, fingerprint: dict) -> None:
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a truncated or foreign file
        raise BadTrainingDataError(f"{path}: cannot read GCL checkpoint ({error})") from error
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != CHECKPOINT_FORMAT:
        raise BadTrainingDataError(f"{path}: not a GCL checkpoint of format {CHECKPOINT_FORMAT}")
    saved = checkpoint["fingerprint"]
    for key in ("config", "seed", "shape", "data_sha256", "stages"):
        if saved.get(key) != fingerprint[key]:
            raise StaleCheckpointError(
                f"{path}: checkpoint was written for a different {key} "
                f"(checkpoint {saved.get(key)!r}, this run {fingerprint[key]!r}); delete it to start afresh"
            )
    state.models.generator.load_state_dict(checkpoint["generator"])
    if state.models.discriminator is not None:
        state.models.discriminator.load_state_dict(checkpoint["discriminator"])
        state.opt_d.load_state_dict(checkpoint["opt_d"])
    state.opt_g.load_state_dict(checkpoint["opt_g"])
    rng = checkpoint["rng"]
    state.rng.set_state(rng["generator"])
    torch.set_rng_state(rng["torch"])
    if rng["cuda"]:
        torch.cuda.set_rng_state_all(rng["cuda"])
    kind, keys, *rest = rng["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), *rest))
    random.setstate(_python_state_from_lists(rng["python"]))
    state.stage_index = checkpoint["stage_index"]
    state.epochs_done = checkpoint["epochs_done"]
    state.log = list(checkpoint["log"])
    state.steps = dict(checkpoint["steps"])


def _python_state_to_lists(value):
    return [_python_state_to_lists(v) for v in value] if isinstance(value, tuple) else value


def _python_state_from_lists(value):
    return tuple(_python_state_from_lists(v) for v in value) if isinstance(value, list) else value


# ----------------------------------------------------------------------------------
# Trained models: save, load, score
# ----------------------------------------------------------------------------------


def save_models(path: Path, result: TrainResult | Models, metadata: dict | None = None) -> None:
    """Store the trained networks with their config, so `load_models` rebuilds them exactly.

    metadata: plain values kept beside them (training log, cleaning summary, where the
    features came from); `read_models_metadata` returns it.
    """
    models = result.models if isinstance(result, TrainResult) else result
    _atomic_save(
        {
            "format": MODELS_FORMAT,
            "config": models.config.to_dict(),
            "dim": models.dim,
            "generator": models.generator.state_dict(),
            "discriminator": models.discriminator.state_dict() if models.discriminator is not None else None,
            "metadata": metadata or {},
        },
        Path(path),
    )


def read_models_metadata(path: Path) -> dict:
    """The metadata stored by `save_models` (empty when none was given)."""
    return _read_models_file(Path(path)).get("metadata", {})


def _read_models_file(path: Path) -> dict:
    try:
        stored = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise BadTrainingDataError(f"{path}: cannot read GCL models ({error})") from error
    if not isinstance(stored, dict) or stored.get("format") != MODELS_FORMAT:
        raise BadTrainingDataError(f"{path}: not a GCL models file of format {MODELS_FORMAT}")
    return stored


def load_models(path: Path, device: str | None = None) -> Models:
    """Rebuild saved models; `device` overrides the device they were trained on."""
    stored = _read_models_file(Path(path))
    config = from_dict(stored["config"])
    if device is not None:
        config = config.replace(device=device)
    models = Models(
        config=config,
        dim=stored["dim"],
        generator=Generator(stored["dim"], config),
        discriminator=Discriminator(stored["dim"], config) if stored["discriminator"] is not None else None,
    )
    models.generator.load_state_dict(stored["generator"])
    models.generator.to(config.device)
    if models.discriminator is not None:
        models.discriminator.load_state_dict(stored["discriminator"])
        models.discriminator.to(config.device)
    _set_eval(models)
    return models


@torch.no_grad()
def score(models: Models, features: np.ndarray) -> dict[str, np.ndarray]:
    """Per-segment scores of (M, d) features: 'g' reconstruction error, 'd' D's probability
    (absent for autoencoder variants), and 'score' = the one config.score_model selects."""
    features = np.asarray(features)
    if features.ndim != 2 or features.shape[1] != models.dim:
        raise BadTrainingDataError(
            f"scoring: features must be (M, {models.dim}) like the training features, found {features.shape}"
        )
    config = models.config
    device = torch.device(config.device)
    autocast = _autocast(config, device)
    _set_eval(models)
    errors, probabilities = [], []
    for start in range(0, features.shape[0], config.score_chunk):
        chunk = torch.from_numpy(np.ascontiguousarray(features[start : start + config.score_chunk], dtype=np.float32))
        chunk = chunk.to(device)
        with autocast():
            errors.append(reconstruction_error(models.generator, chunk).float().cpu())
            if models.discriminator is not None:
                probabilities.append(models.discriminator.probability(chunk).float().cpu())
    out = {"g": _concat(errors)}
    if models.discriminator is not None:
        out["d"] = _concat(probabilities)
    out["score"] = out[config.score_model]
    return out


def _concat(parts: list[torch.Tensor]) -> np.ndarray:
    return torch.cat(parts).numpy() if parts else np.zeros(0, dtype=np.float32)
