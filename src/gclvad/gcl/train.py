"""Training GCL (paper §3, Fig. 2), top to bottom: stages, epochs, the cooperative step.

A run is a sequence of stages (`GCLConfig.stages`), each a number of epochs over a set of
training rows:

    gcl:          [pretrain_g (G on pretrain_g.data rows, plain reconstruction)]
                  [pretrain_d (D on the frozen pre-trained G's pseudo-labels, all rows)]
                  gcl_loop (the cooperative loop, all rows)
    autoencoder:  autoencoder (G on pretrain_g.data rows, plain reconstruction)

The pre-training stages are skipped when pretrain_g.data is "none" (GCL_B); pretrain_d
also when its epochs are 0.

One cooperative iteration, on one batch drawn from ALL training segments of all videos,
reshuffled every epoch (no temporal order within or across batches, §3.1):
    1. G labels the batch: 1 where its reconstruction error >= mu + k_G sigma (Eq. 2);
    2. D takes one BCE step on those labels (Eq. 3);
    3. D labels the batch: 1 where its probability >= mu + k_D sigma (Eq. 4) -- with D
       AFTER its update: the paper trains D on G's labels "first", and "in the next step"
       labels from D improve G (§3.2), i.e. sequentially, so D's freshest state labels;
       `loop.d_labels_after_d_step=False` uses D before its step instead;
    4. G takes one negative-learning step: its target is the input for D-normal rows and
       a pseudo reconstruction target for D-anomalous rows (Eq. 5-6).
Labels are computed without gradients and without dropout (networks in eval mode). With
dropout 0 (the default) G's one training forward pass also yields its labels: eval and
train mode then compute the same function, and D's step does not touch G.

Reproducibility: one seed fixes model initialisation (torch's global RNG), the shuffling
and every random target (a torch.Generator on the training device) and the weak-supervision
draw (numpy Generator). On CPU the same seed gives bit-identical results. Epochs end with an
atomic checkpoint (`gcl.checkpoint`); `train` given an existing checkpoint resumes and ends
exactly as an uninterrupted run would. A loss that is not finite stops training at once,
naming the stage and epoch: it would otherwise turn every weight into NaN.

Small data: the paper's batch 8192 x 15 epochs is ~1,400 steps on UCF-Crime but ~15 on a
few hundred segments. `optimiser.max_batch_fraction`, `min_batch` and `min_steps_per_stage`
size the batch to the data and stretch a stage's epochs to a minimum number of optimiser
steps; the steps actually taken are in every log row and in TrainResult.steps.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from gclvad.cleaning import CleaningConfig
from gclvad.errors import GclvadError
from gclvad.gcl import checkpoint as checkpoints
from gclvad.gcl.config import GCLConfig, Stage
from gclvad.gcl.data import (
    G_ALONE,
    BadTrainingDataError,
    PlannedStage,
    Rows,
    TrainingData,
    check_arrays,
    plan_stage,
    select_rows,
    selected_stages,
)
from gclvad.gcl.labels import negative_learning_loss, soft_targets, threshold_labels
from gclvad.gcl.models import Models, autocast, build_models, reconstruction_error, squared_error
from gclvad.gcl.progress import StageProgress

# Stage numbers for seeding: fixed, so a stage's random streams do not depend on which
# other stages ran in the same call.
STAGE_NUMBERS = {Stage.PRETRAIN_G: 1, Stage.AUTOENCODER: 1, Stage.PRETRAIN_D: 2, Stage.GCL_LOOP: 3}


class NonFiniteLossError(GclvadError):
    """Training produced a NaN or infinite loss."""


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


def train(
    config: GCLConfig,
    data: TrainingData,
    seed: int,
    *,
    cleaning: CleaningConfig | None = None,
    checkpoint_path: Path | None = None,
    on_epoch_end: Callable[[str, int, Models], None] | None = None,
    stages: Sequence[Stage | str] | None = None,
    initial: Models | None = None,
    checkpoint_interval_s: float = 0.0,
) -> TrainResult:
    """Train the networks `config` describes on `data`; resume from `checkpoint_path` if it exists.

    cleaning: the TD settings used when G trains on cleaned rows and `data.td_mask` is not
    given (default: the paper's).
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
    check_arrays(data)
    device = torch.device(config.device)
    features = torch.from_numpy(np.ascontiguousarray(data.features, dtype=np.float32)).to(device)
    n_rows, dim = features.shape

    # 1. seed everything (model initialisation uses torch's global RNG)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    rng = torch.Generator(device=device).manual_seed(seed)

    # 2. which stages run, on which rows; labels are read only by OCC / WS configs
    selected_names = selected_stages(config, stages)
    rows = select_rows(config, data, seed, cleaning, trains_g_alone=bool(set(selected_names) & set(G_ALONE)))
    forced_normal = torch.from_numpy(rows.forced_normal).to(device) if rows.forced_normal is not None else None
    selected = [plan_stage(name, config, rows, n_rows, device) for name in selected_names]

    # 3. networks and optimisers (RMSprop with momentum, paper §4)
    models = _starting_models(config, dim, initial)
    state = _State(
        models=models,
        opt_g=_rmsprop(models.generator, config),
        opt_d=_rmsprop(models.discriminator, config) if models.discriminator is not None else None,
        rng=rng,
        steps={str(s.name): 0 for s in selected},
    )

    # 4. resume
    fingerprint = checkpoints.fingerprint(
        data.features, data.video, data.position, config.to_dict(), seed, [str(s.name) for s in selected], initial
    )
    if checkpoint_path is not None and Path(checkpoint_path).exists():
        _resume(state, checkpoints.load_checkpoint(Path(checkpoint_path), fingerprint))

    # 5. the stages
    forward = autocast(config.execution.precision, device)
    last_checkpoint = time.monotonic()
    while state.stage_index < len(selected):
        stage = selected[state.stage_index]
        if state.epochs_done == 0:
            _start_stage(state, stage, seed, config)
        frozen_g_errors = None
        if stage.name == Stage.PRETRAIN_D and state.epochs_done < stage.epochs:
            # G is frozen in this stage: its errors are computed once, not once per batch.
            frozen_g_errors = _errors_of_all_rows(models, features, config, forward)
        with StageProgress(stage, state.epochs_done) as progress:
            while state.epochs_done < stage.epochs:
                started = time.perf_counter()
                totals = _run_epoch(stage, state, features, forced_normal, frozen_g_errors, config, forward)
                state.epochs_done += 1
                state.steps[str(stage.name)] += stage.steps_per_epoch
                state.log.append(
                    {
                        "stage": str(stage.name),
                        "epoch": state.epochs_done,
                        "steps": stage.steps_per_epoch,
                        "stage_steps": state.steps[str(stage.name)],
                        "batch_size": stage.batch_size,
                        "rows": int(stage.rows.numel()),
                        **totals,
                        "lr": config.optimiser.lr,
                        "seconds": time.perf_counter() - started,
                    }
                )
                progress.epoch_done(state.epochs_done, totals)
                # The callback runs before the checkpoint is written (so a kill between the two
                # replays this epoch rather than losing what the callback records), and the
                # checkpoint is written even when the callback raises.
                try:
                    if on_epoch_end is not None:
                        models.eval()
                        on_epoch_end(str(stage.name), state.epochs_done, models)
                finally:
                    if checkpoint_path is not None and _checkpoint_due(
                        state, stage, last_checkpoint, checkpoint_interval_s
                    ):
                        checkpoints.save_checkpoint(Path(checkpoint_path), fingerprint, _saved_state(state, rows))
                        last_checkpoint = time.monotonic()
        state.stage_index, state.epochs_done = state.stage_index + 1, 0

    models.eval()
    return TrainResult(
        models=models,
        log=state.log,
        cleaning=rows.cleaning,
        steps=dict(state.steps),
        supervision=rows.supervision,
        config=config,
        seed=seed,
    )


# ----------------------------------------------------------------------------------
# One epoch, one step
# ----------------------------------------------------------------------------------


def _run_epoch(stage, state, features, forced_normal, frozen_g_errors, config, forward) -> dict:
    """Shuffle the stage's rows, split them into near-equal batches, take one step per batch."""
    order = stage.rows[torch.randperm(stage.rows.numel(), generator=state.rng, device=stage.rows.device)]
    sums: dict[str, float] = {}
    for step, batch_rows in enumerate(torch.tensor_split(order, stage.steps_per_epoch), start=1):
        batch = features[batch_rows]
        forced = forced_normal[batch_rows] if forced_normal is not None else None
        if stage.name in G_ALONE:
            values = {"loss_g": _reconstruction_step(state, batch, forward)}
        elif stage.name == Stage.PRETRAIN_D:
            values = _discriminator_step(state, batch, frozen_g_errors[batch_rows], forced, config, forward)
        else:
            values = _cooperative_step(state, batch, forced, config, forward)
        _check_finite(values, stage, state.epochs_done + 1, step)
        for key, value in values.items():
            sums[key] = sums.get(key, 0.0) + value
    return {key: value / stage.steps_per_epoch for key, value in sums.items()}


def _reconstruction_step(state: _State, batch, forward) -> float:
    """Plain autoencoder training, Eq. 1: mean over the batch of ||f - G(f)||^2."""
    generator = state.models.generator
    generator.train()
    with forward():
        reconstruction = generator(batch)
    loss = squared_error(reconstruction, batch).mean()
    state.opt_g.zero_grad(set_to_none=True)
    loss.backward()
    state.opt_g.step()
    return loss.item()


def _cooperative_step(state: _State, batch, forced, config: GCLConfig, forward) -> dict:
    """One GCL iteration: G labels -> D step -> D labels -> G negative-learning step."""
    generator, discriminator = state.models.generator, state.models.discriminator
    loop = config.loop
    # G's labels come from its errors without dropout. With dropout 0, G's training-mode
    # forward gives the same output, and D's step does not change G, so that single forward
    # serves both G's labels and G's step (one G forward per iteration saved, same result).
    share_forward = config.architecture.dropout == 0.0
    if share_forward:
        generator.train()
        with forward():
            reconstruction = generator(batch)
        errors = squared_error(reconstruction.detach(), batch)
    else:
        with torch.no_grad(), forward():
            generator.eval()
            errors = reconstruction_error(generator, batch)
    with torch.no_grad(), forward():
        if loop.g_label_source == "d" and not loop.d_labels_after_d_step:
            discriminator.eval()
            anomalous = threshold_labels(discriminator.probability(batch), loop.d_threshold_k)
    out = _discriminator_step(state, batch, errors, forced, config, forward)

    with torch.no_grad(), forward():
        if loop.g_label_source == "g":  # ablation: G trained on its own pseudo-labels
            anomalous = threshold_labels(errors, config.d_step.g_threshold_k)
        elif loop.d_labels_after_d_step:
            discriminator.eval()
            anomalous = threshold_labels(discriminator.probability(batch), loop.d_threshold_k)
    if forced is not None:
        anomalous = anomalous & ~forced

    if not share_forward:
        generator.train()
        with forward():
            reconstruction = generator(batch)
    loss_g = negative_learning_loss(reconstruction, batch, anomalous, loop.nl_target, loop.gaussian_sigma, state.rng)
    state.opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    state.opt_g.step()
    out["loss_g"] = loss_g.item()
    out["d_label_fraction"] = anomalous.float().mean().item()
    return out


def _discriminator_step(state: _State, batch, errors, forced, config: GCLConfig, forward) -> dict:
    """D's BCE step (Eq. 3) on G's pseudo-labels (thresholded, or soft), forced-normal rows at 0."""
    discriminator = state.models.discriminator
    g_labels = threshold_labels(errors, config.d_step.g_threshold_k)  # with soft targets: only logged
    targets = soft_targets(errors) if config.d_step.d_targets == "soft" else g_labels.float()
    if forced is not None:
        targets = torch.where(forced, torch.zeros_like(targets), targets)
        g_labels = g_labels & ~forced
    discriminator.train()
    with forward():
        logits = discriminator(batch)
    loss_d = F.binary_cross_entropy_with_logits(logits.float(), targets)
    state.opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    state.opt_d.step()
    return {"loss_d": loss_d.item(), "g_label_fraction": g_labels.float().mean().item()}


def _check_finite(values: dict, stage: PlannedStage, epoch: int, step: int) -> None:
    """Stop at the first loss that is not finite: one more step would make every weight NaN."""
    bad = [name for name, value in values.items() if name.startswith("loss") and not math.isfinite(value)]
    if bad:
        shown = ", ".join(f"{name} = {values[name]}" for name in bad)
        raise NonFiniteLossError(
            f"training stage {stage.name}, epoch {epoch}, step {step} of {stage.steps_per_epoch}: {shown}. "
            "Training stopped before the networks turn to NaN; check the features for extreme values "
            "(the feature store refuses NaN and infinity) or lower optimiser.lr"
        )


# ----------------------------------------------------------------------------------
# Networks, optimisers, seeds
# ----------------------------------------------------------------------------------


def _starting_models(config: GCLConfig, dim: int, initial: Models | None) -> Models:
    """Fresh networks, or a copy of `initial` (which the caller keeps unchanged)."""
    models = build_models(config, dim)
    if initial is None:
        return models
    if initial.dim != dim or initial.config.architecture != config.architecture:
        raise BadTrainingDataError(
            f"starting networks ({initial.dim}-d, {initial.config.architecture}) do not fit this stage "
            f"({dim}-d features, {config.architecture})"
        )
    models.generator.load_state_dict(initial.generator.state_dict())
    if models.discriminator is not None and initial.discriminator is not None:
        models.discriminator.load_state_dict(initial.discriminator.state_dict())
    return models


def _start_stage(state: _State, stage: PlannedStage, seed: int, config: GCLConfig) -> None:
    """Seed the stage's random streams and give it fresh optimisers."""
    stage_seed = seed * 10 + STAGE_NUMBERS[stage.name]
    torch.manual_seed(stage_seed)
    state.rng.manual_seed(stage_seed)
    state.opt_g = _rmsprop(state.models.generator, config)
    if state.models.discriminator is not None:
        state.opt_d = _rmsprop(state.models.discriminator, config)


def _rmsprop(module: torch.nn.Module, config: GCLConfig) -> torch.optim.Optimizer:
    return torch.optim.RMSprop(module.parameters(), lr=config.optimiser.lr, momentum=config.optimiser.momentum)


def _checkpoint_due(state: _State, stage: PlannedStage, last_checkpoint: float, interval_s: float) -> bool:
    first_or_last = state.epochs_done in (1, stage.epochs)
    return first_or_last or time.monotonic() - last_checkpoint >= interval_s


@torch.no_grad()
def _errors_of_all_rows(models: Models, features: torch.Tensor, config: GCLConfig, forward) -> torch.Tensor:
    models.generator.eval()
    chunk, parts = config.scoring.chunk, []
    for start in range(0, features.shape[0], chunk):
        with forward():
            parts.append(reconstruction_error(models.generator, features[start : start + chunk]))
    return torch.cat(parts)


# ----------------------------------------------------------------------------------
# Checkpoint contents
# ----------------------------------------------------------------------------------


def _saved_state(state: _State, rows: Rows) -> dict:
    return {
        "stage_index": state.stage_index,
        "epochs_done": state.epochs_done,
        "generator": state.models.generator.state_dict(),
        "discriminator": state.models.discriminator.state_dict() if state.models.discriminator is not None else None,
        "opt_g": state.opt_g.state_dict(),
        "opt_d": state.opt_d.state_dict() if state.opt_d is not None else None,
        "rng": checkpoints.capture_rng(state.rng),
        "log": state.log,
        "steps": state.steps,
    }


def _resume(state: _State, saved: dict) -> None:
    state.models.generator.load_state_dict(saved["generator"])
    if state.models.discriminator is not None:
        state.models.discriminator.load_state_dict(saved["discriminator"])
        state.opt_d.load_state_dict(saved["opt_d"])
    state.opt_g.load_state_dict(saved["opt_g"])
    checkpoints.restore_rng(saved["rng"], state.rng)
    state.stage_index, state.epochs_done = saved["stage_index"], saved["epochs_done"]
    state.log, state.steps = list(saved["log"]), dict(saved["steps"])
