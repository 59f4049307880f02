"""The settings of one GCL training run: a typed, serialisable `GCLConfig` and its presets.

Every choice the paper leaves open (activations, pre-training lengths, how small data is
batched) is a field here, so it is recorded in checkpoints and result files and can be
changed without touching code. Two presets exist:

* ``paper``: the values of Zaheer et al. (CVPR 2022) §4 "Implementation Details":
  RMSprop, lr 2e-5, momentum 0.60, batch 8192, 15 epochs, thresholds mu+sigma (G) and
  mu+0.1 sigma (D), D_th = 0.70, all-ones negative-learning target. These assume
  UCF-Crime's ~780k training segments (~1,400 optimiser steps in 15 epochs).
* ``small``: the same algorithm sized for a few hundred to a few thousand segments
  (demo data, tests): the batch is capped at 1/8 of the data, every stage takes at least
  a minimum number of optimiser steps, and the learning rate is higher so that those
  few steps move the networks. Its values were chosen on the synthetic planted-structure
  data of tests/synthetic.py by looking only at training losses and label fractions
  across a few seeds, not at test labels.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from gclvad.errors import GclvadError

ACTIVATIONS = ("relu", "leaky_relu", "gelu", "tanh")
METHODS = ("gcl", "autoencoder")
PRETRAIN_DATA = ("none", "all", "td", "normal")
NL_TARGETS = ("ones", "random_normal", "gaussian", "none")
G_LABEL_SOURCES = ("d", "g")
D_TARGETS = ("hard", "soft")
SCORE_MODELS = ("d", "g")
PRECISIONS = ("fp32", "bf16")
TD_NORMALIZE = ("l2", "none")
TD_MODES = ("absolute", "percentile")


class BadConfigError(GclvadError):
    """A GCL configuration with an unknown key or a value outside its allowed set."""


@dataclass(frozen=True)
class GCLConfig:
    """All settings of a GCL (or plain autoencoder) training run. Defaults = the paper."""

    # --- architecture (the input dimension d comes from the data) -----------------
    g_hidden: tuple[int, ...] = (1024, 512, 256, 512, 1024)  # G = FC[d, *g_hidden, d] (paper §4)
    d_hidden: tuple[int, ...] = (512, 32)  # D = FC[d, *d_hidden, 1] + sigmoid (paper §4)
    activation: str = "relu"  # between hidden layers; paper names none. G's output is linear
    dropout: float = 0.0  # dropout after every hidden activation of G and D; paper names none

    # --- what is trained ----------------------------------------------------------
    method: str = "gcl"  # "gcl": cooperative loop; "autoencoder": only G, plain reconstruction
    pretrain_data: str = "td"  # G's pre-training set (gcl) or training set (autoencoder):
    #   "td" temporal-difference cleaned, "all", "normal" (labelled-normal videos: OCC,
    #   reads labels), "none" (gcl only: no pre-training at all, GCL_B)
    pretrain_d: bool = True  # gcl with pre-training: train D on the frozen pre-trained G's labels

    # --- optimisation (paper §4) --------------------------------------------------
    lr: float = 2e-5  # RMSprop learning rate for both G and D
    momentum: float = 0.60  # RMSprop momentum (torch's `momentum`, not the smoothing `alpha`)
    batch_size: int = 8192  # nominal batch; see max_batch_fraction
    epochs: int = 15  # epochs of the cooperative loop (or of autoencoder training)
    pretrain_g_epochs: int = 15  # epochs of G's pre-training; paper does not say (AE_TD = 15)
    pretrain_d_epochs: int = 5  # epochs of D's pre-training; paper does not say
    max_batch_fraction: float | None = None  # None: batch_size as given; else the batch is
    #   min(batch_size, max(min_batch, floor(N * max_batch_fraction))) for a stage of N rows
    min_batch: int = 32  # floor of the size-aware batch
    min_steps_per_stage: int = 0  # a stage runs more epochs than configured if needed to
    #   take at least this many optimiser steps (0: epochs as configured)

    # --- pseudo-labels (paper §4: L_G^th = mu + sigma, L_D^th = mu + 0.1 sigma per batch) --
    g_threshold_k: float = 1.0  # G labels 1 where recon error >= mean + k * std of the batch
    d_threshold_k: float = 0.1  # D labels 1 where probability >= mean + k * std of the batch
    d_labels_after_d_step: bool = True  # D's labels for G's step come from D after its update
    g_label_source: str = "d"  # who labels G's negative learning: "d" (GCL) or "g" (G_self)
    d_targets: str = "hard"  # D trained on thresholded G labels ("hard") or normalised errors ("soft")

    # --- negative learning (paper §3.2.5) -----------------------------------------
    nl_target: str = "ones"  # pseudo reconstruction target for D-labelled anomalies:
    #   "ones", "random_normal" (a normal-labelled feature of the batch), "gaussian"
    #   (input + N(0, gaussian_sigma^2)), "none" (G trains on normal-labelled rows only)
    gaussian_sigma: float = 1.5  # the paper tries 1.5 and 6.0

    # --- temporal-difference cleaning for pre-training (paper §3.3) ----------------
    td_normalize: str = "l2"  # distances between L2-normalised features, or raw ("none")
    td_mode: str = "absolute"  # "absolute": keep ||f_t+1 - f_t|| <= td_threshold;
    #   "percentile": keep distances <= the td_percentile-th percentile of all distances
    td_threshold: float = 0.70  # D_th of the paper
    td_percentile: float = 70.0  # used when td_mode == "percentile"

    # --- weak supervision (GCL_WS, reads labels) -------------------------------------
    supervision_fraction: float = 0.0  # fraction of training videos whose label is revealed;
    #   labelled-normal videos' rows are forced to label 0 for both networks

    # --- scoring and execution ----------------------------------------------------
    score_model: str = "d"  # the network whose output is the anomaly score (paper §3.4: D)
    precision: str = "fp32"  # "bf16": forward passes under torch.autocast(bfloat16)
    device: str = "cpu"  # torch device string
    score_chunk: int = 65536  # rows per forward pass when scoring or precomputing errors

    def __post_init__(self) -> None:
        object.__setattr__(self, "g_hidden", tuple(int(v) for v in self.g_hidden))
        object.__setattr__(self, "d_hidden", tuple(int(v) for v in self.d_hidden))
        _check_choice("activation", self.activation, ACTIVATIONS)
        _check_choice("method", self.method, METHODS)
        _check_choice("pretrain_data", self.pretrain_data, PRETRAIN_DATA)
        _check_choice("nl_target", self.nl_target, NL_TARGETS)
        _check_choice("g_label_source", self.g_label_source, G_LABEL_SOURCES)
        _check_choice("d_targets", self.d_targets, D_TARGETS)
        _check_choice("score_model", self.score_model, SCORE_MODELS)
        _check_choice("precision", self.precision, PRECISIONS)
        _check_choice("td_normalize", self.td_normalize, TD_NORMALIZE)
        _check_choice("td_mode", self.td_mode, TD_MODES)
        if self.method == "autoencoder" and self.pretrain_data == "none":
            raise BadConfigError("GCL config: method 'autoencoder' needs pretrain_data all|td|normal, found 'none'")
        if self.method == "autoencoder" and self.score_model != "g":
            raise BadConfigError("GCL config: method 'autoencoder' has no D; score_model must be 'g'")
        if not 0.0 <= self.dropout < 1.0:
            raise BadConfigError(f"GCL config: dropout must be in [0, 1), found {self.dropout}")
        if not 0.0 <= self.supervision_fraction <= 1.0:
            raise BadConfigError(
                f"GCL config: supervision_fraction must be in [0, 1], found {self.supervision_fraction}"
            )
        if self.max_batch_fraction is not None and not 0.0 < self.max_batch_fraction <= 1.0:
            raise BadConfigError(f"GCL config: max_batch_fraction must be in (0, 1], found {self.max_batch_fraction}")
        if not 0.0 < self.td_percentile <= 100.0:
            raise BadConfigError(f"GCL config: td_percentile must be in (0, 100], found {self.td_percentile}")
        for name in ("batch_size", "min_batch", "score_chunk"):
            if getattr(self, name) < 1:
                raise BadConfigError(f"GCL config: {name} must be >= 1, found {getattr(self, name)}")
        for name in ("epochs", "pretrain_g_epochs", "pretrain_d_epochs", "min_steps_per_stage"):
            if getattr(self, name) < 0:
                raise BadConfigError(f"GCL config: {name} must be >= 0, found {getattr(self, name)}")
        if self.lr <= 0 or self.gaussian_sigma < 0:
            raise BadConfigError(f"GCL config: lr must be > 0 and gaussian_sigma >= 0, found {self.lr}, {self.gaussian_sigma}")

    @property
    def reads_labels(self) -> bool:
        """Whether training with this config needs the training videos' labels (OCC, WS)."""
        return self.pretrain_data == "normal" or self.supervision_fraction > 0.0

    def replace(self, **changes: Any) -> "GCLConfig":
        """A copy with some fields changed; unknown names are rejected."""
        return from_dict({**self.to_dict(), **changes})

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON/YAML-friendly values (tuples become lists)."""
        out = dataclasses.asdict(self)
        out["g_hidden"] = list(self.g_hidden)
        out["d_hidden"] = list(self.d_hidden)
        return out


def _check_choice(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise BadConfigError(f"GCL config: {name} must be one of {', '.join(allowed)}; found {value!r}")


def config_fields() -> list[str]:
    return [f.name for f in dataclasses.fields(GCLConfig)]


def from_dict(values: dict[str, Any]) -> GCLConfig:
    """Build a config from a mapping (e.g. a YAML section); unknown keys are named and rejected."""
    unknown = sorted(set(values) - set(config_fields()))
    if unknown:
        raise BadConfigError(
            f"GCL config: unknown key(s) {', '.join(unknown)}; known keys are {', '.join(config_fields())}"
        )
    return GCLConfig(**values)


PRESETS: dict[str, dict[str, Any]] = {
    # Paper §4 exactly (the dataclass defaults).
    "paper": {},
    # Same algorithm, sized for small data: see the module docstring.
    "small": {
        "lr": 1e-4,  # 5x the paper's; 1e-3 and above spike RMSprop's first steps (train loss)
        "max_batch_fraction": 0.125,  # at least 8 steps per epoch
        "min_batch": 32,
        "epochs": 15,
        "pretrain_g_epochs": 15,
        "pretrain_d_epochs": 5,
        "min_steps_per_stage": 150,  # AE train loss still falls steeply before ~150 steps at this lr
    },
}


def preset_names() -> list[str]:
    return list(PRESETS)


def get_preset(name: str, **overrides: Any) -> GCLConfig:
    """The named preset ("paper" or "small") with optional field overrides."""
    if name not in PRESETS:
        raise BadConfigError(f"GCL config: unknown preset {name!r}; presets are {', '.join(PRESETS)}")
    return from_dict({**PRESETS[name], **overrides})
