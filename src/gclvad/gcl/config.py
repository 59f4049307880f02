"""The settings of one GCL training run: a typed `GCLConfig` in sections, its stages, its presets.

Sections group the settings by who reads them, so that a training stage's settings are the
sections it reads (`STAGE_SECTIONS`), by structure, and an edit re-runs exactly the stages
that read it:

    architecture  G and D                     every stage (both networks are built at the start)
    optimiser     RMSprop, batches, schedule  every stage
    execution     precision, device           every stage (device: where, not what)
    pretrain_g    G's plain-reconstruction training: GCL's pre-training of G, or the
                  autoencoder's whole training (which rows, how long)
    pretrain_d    D's pre-training on the frozen pre-trained G's labels
    d_step        how D learns from G's labels (pre-training of D and the loop)
    supervision   revealed video labels (weak supervision; pre-training of D and the loop)
    loop          the cooperative loop: D's labels for G, negative learning
    scoring       which network scores, in chunks of how many rows

Temporal-difference cleaning is not here: it is its own stage with its own config
(`gclvad.cleaning.CleaningConfig`). Two package presets exist:

* ``paper``: the values of Zaheer et al. (CVPR 2022) §4 "Implementation Details":
  RMSprop, lr 2e-5, momentum 0.60, batch 8192, 15 epochs, thresholds mu+sigma (G) and
  mu+0.1 sigma (D), all-ones negative-learning target. These assume UCF-Crime's ~780k
  training segments (~1,400 optimiser steps in 15 epochs).
* ``small``: the same algorithm sized for a few hundred to a few thousand segments
  (demo data, tests): the batch is capped at 1/8 of the data, every stage takes at least
  a minimum number of optimiser steps, and the learning rate is higher so that those
  few steps move the networks. Its values were chosen on the synthetic planted-structure
  data of tests/synthetic.py by looking only at training losses and label fractions
  across a few seeds, not at test labels.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
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


class BadConfigError(GclvadError):
    """A GCL configuration with an unknown key or a value outside its allowed set."""


class Stage(enum.StrEnum):
    """The training stages: the same names in the trainer, its log, the workflow's rules and files."""

    PRETRAIN_G = "pretrain_g"  # G alone, plain reconstruction (paper §3.3), for GCL
    PRETRAIN_D = "pretrain_d"  # D alone, on the frozen pre-trained G's pseudo-labels (§3.3)
    GCL_LOOP = "gcl_loop"  # G and D cooperatively (§3.2, Fig. 2)
    AUTOENCODER = "autoencoder"  # G alone, plain reconstruction: the AE_* baselines' only stage


def _check_choice(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise BadConfigError(f"GCL config: {name} must be one of {', '.join(allowed)}; found {value!r}")


def _check_at_least(section: str, names: tuple[str, ...], values: Any, minimum: int) -> None:
    for name in names:
        if getattr(values, name) < minimum:
            raise BadConfigError(f"GCL config: {section}.{name} must be >= {minimum}, found {getattr(values, name)}")


@dataclass(frozen=True)
class Architecture:
    g_hidden: tuple[int, ...] = (1024, 512, 256, 512, 1024)  # G = FC[d, *g_hidden, d] (paper §4)
    d_hidden: tuple[int, ...] = (512, 32)  # D = FC[d, *d_hidden, 1] + sigmoid (paper §4)
    activation: str = "relu"  # between hidden layers; paper names none. G's output is linear
    dropout: float = 0.0  # after every hidden activation of G and D; paper names none

    def __post_init__(self) -> None:
        object.__setattr__(self, "g_hidden", tuple(int(v) for v in self.g_hidden))
        object.__setattr__(self, "d_hidden", tuple(int(v) for v in self.d_hidden))
        _check_choice("architecture.activation", self.activation, ACTIVATIONS)
        if not 0.0 <= self.dropout < 1.0:
            raise BadConfigError(f"GCL config: architecture.dropout must be in [0, 1), found {self.dropout}")


@dataclass(frozen=True)
class Optimiser:
    lr: float = 2e-5  # RMSprop learning rate for both G and D (paper §4)
    momentum: float = 0.60  # RMSprop momentum (torch's `momentum`, not the smoothing `alpha`)
    batch_size: int = 8192  # nominal batch (paper §4); see max_batch_fraction
    max_batch_fraction: float | None = None  # None: batch_size as given; else the batch is
    #   min(batch_size, max(min_batch, floor(N * max_batch_fraction))) for a stage of N rows
    min_batch: int = 32  # floor of the size-aware batch
    min_steps_per_stage: int = 0  # a stage runs more epochs than configured if needed to
    #   take at least this many optimiser steps (0: epochs as configured)

    def __post_init__(self) -> None:
        if self.lr <= 0:
            raise BadConfigError(f"GCL config: optimiser.lr must be > 0, found {self.lr}")
        if self.max_batch_fraction is not None and not 0.0 < self.max_batch_fraction <= 1.0:
            raise BadConfigError(
                f"GCL config: optimiser.max_batch_fraction must be in (0, 1], found {self.max_batch_fraction}"
            )
        _check_at_least("optimiser", ("batch_size", "min_batch"), self, 1)
        _check_at_least("optimiser", ("min_steps_per_stage",), self, 0)


@dataclass(frozen=True)
class Execution:
    precision: str = "fp32"  # "bf16": forward passes under torch.autocast(bfloat16)
    device: str = "cpu"  # torch device string; where training runs, not what it computes

    def __post_init__(self) -> None:
        _check_choice("execution.precision", self.precision, PRECISIONS)


@dataclass(frozen=True)
class PretrainG:
    data: str = "td"  # G's rows: "td" temporal-difference cleaned (paper §3.3), "all",
    #   "normal" (labelled-normal videos: OCC, reads labels), "none" (gcl only: GCL_B)
    epochs: int = 15  # the paper does not say how long (AE_TD = 15)

    def __post_init__(self) -> None:
        _check_choice("pretrain_g.data", self.data, PRETRAIN_DATA)
        _check_at_least("pretrain_g", ("epochs",), self, 0)


@dataclass(frozen=True)
class PretrainD:
    epochs: int = 5  # the paper does not say; 0: no pre-training of D

    def __post_init__(self) -> None:
        _check_at_least("pretrain_d", ("epochs",), self, 0)


@dataclass(frozen=True)
class DStep:
    g_threshold_k: float = 1.0  # G labels 1 where recon error >= mean + k * std of the batch (Eq. 2)
    d_targets: str = "hard"  # D trained on thresholded G labels ("hard") or normalised errors ("soft")

    def __post_init__(self) -> None:
        _check_choice("d_step.d_targets", self.d_targets, D_TARGETS)


@dataclass(frozen=True)
class Supervision:
    fraction: float = 0.0  # fraction of training videos whose label is revealed (GCL_WS);
    #   labelled-normal videos' rows are forced to label 0 for both networks

    def __post_init__(self) -> None:
        if not 0.0 <= self.fraction <= 1.0:
            raise BadConfigError(f"GCL config: supervision.fraction must be in [0, 1], found {self.fraction}")


@dataclass(frozen=True)
class Loop:
    epochs: int = 15  # epochs of the cooperative loop (paper §4)
    d_threshold_k: float = 0.1  # D labels 1 where probability >= mean + k * std of the batch (Eq. 4)
    d_labels_after_d_step: bool = True  # D's labels for G's step come from D after its update
    g_label_source: str = "d"  # who labels G's negative learning: "d" (GCL) or "g" (G_self)
    nl_target: str = "ones"  # pseudo reconstruction target for D-labelled anomalies (§3.2.5):
    #   "ones", "random_normal" (a normal-labelled feature of the batch), "gaussian"
    #   (input + N(0, gaussian_sigma^2)), "none" (G trains on normal-labelled rows only)
    gaussian_sigma: float = 1.5  # the paper tries 1.5 and 6.0

    def __post_init__(self) -> None:
        _check_at_least("loop", ("epochs",), self, 0)
        _check_choice("loop.g_label_source", self.g_label_source, G_LABEL_SOURCES)
        _check_choice("loop.nl_target", self.nl_target, NL_TARGETS)
        if self.gaussian_sigma < 0:
            raise BadConfigError(f"GCL config: loop.gaussian_sigma must be >= 0, found {self.gaussian_sigma}")


@dataclass(frozen=True)
class Scoring:
    model: str = "d"  # the network whose output is the anomaly score (paper §3.4: D)
    chunk: int = 65536  # rows per forward pass when scoring or computing errors of all rows

    def __post_init__(self) -> None:
        _check_choice("scoring.model", self.model, SCORE_MODELS)
        _check_at_least("scoring", ("chunk",), self, 1)


SECTIONS: dict[str, type] = {
    "architecture": Architecture,
    "optimiser": Optimiser,
    "execution": Execution,
    "pretrain_g": PretrainG,
    "pretrain_d": PretrainD,
    "d_step": DStep,
    "supervision": Supervision,
    "loop": Loop,
    "scoring": Scoring,
}

# What each stage reads, besides `method`. Sections every stage reads come first; a stage's
# workflow params are exactly these sections (device aside), so editing a section re-runs
# the stages that read it and, through their outputs, what follows them.
_EVERY_STAGE = ("architecture", "optimiser", "execution")
STAGE_SECTIONS: dict[Stage, tuple[str, ...]] = {
    Stage.PRETRAIN_G: (*_EVERY_STAGE, "pretrain_g"),
    Stage.PRETRAIN_D: (*_EVERY_STAGE, "pretrain_d", "d_step", "supervision", "scoring"),
    Stage.GCL_LOOP: (*_EVERY_STAGE, "d_step", "supervision", "loop", "scoring"),
    Stage.AUTOENCODER: (*_EVERY_STAGE, "pretrain_g", "scoring"),
}


@dataclass(frozen=True)
class GCLConfig:
    """All settings of a GCL (or plain autoencoder) training run. Defaults = the paper."""

    method: str = "gcl"  # "gcl": cooperative loop; "autoencoder": only G, plain reconstruction
    architecture: Architecture = field(default_factory=Architecture)
    optimiser: Optimiser = field(default_factory=Optimiser)
    execution: Execution = field(default_factory=Execution)
    pretrain_g: PretrainG = field(default_factory=PretrainG)
    pretrain_d: PretrainD = field(default_factory=PretrainD)
    d_step: DStep = field(default_factory=DStep)
    supervision: Supervision = field(default_factory=Supervision)
    loop: Loop = field(default_factory=Loop)
    scoring: Scoring = field(default_factory=Scoring)

    def __post_init__(self) -> None:
        _check_choice("method", self.method, METHODS)
        if self.method == "autoencoder" and self.pretrain_g.data == "none":
            raise BadConfigError("GCL config: method 'autoencoder' needs pretrain_g.data all|td|normal, found 'none'")
        if self.method == "autoencoder" and self.scoring.model != "g":
            raise BadConfigError("GCL config: method 'autoencoder' has no D; scoring.model must be 'g'")

    @property
    def reads_labels(self) -> bool:
        """Whether training with this config needs the training videos' labels (OCC, WS)."""
        return self.pretrain_g.data == "normal" or self.supervision.fraction > 0.0

    @property
    def device(self) -> str:
        return self.execution.device

    @property
    def stages(self) -> list[Stage]:
        """The stages a run of this config trains, in order."""
        if self.method == "autoencoder":
            return [Stage.AUTOENCODER]
        if self.pretrain_g.data == "none":  # GCL_B: no pre-training at all
            return [Stage.GCL_LOOP]
        planned = [Stage.PRETRAIN_G]
        if self.pretrain_d.epochs > 0:
            planned.append(Stage.PRETRAIN_D)
        return [*planned, Stage.GCL_LOOP]

    def replace(self, **changes: Any) -> GCLConfig:
        """A copy with some settings changed, named as `setting_path` resolves them
        ("loop.epochs", "nl_target", "device"); unknown or ambiguous names are rejected."""
        values = self.to_dict()
        for name, value in changes.items():
            section, key = setting_path(name)
            if section is None:
                values[key] = value
            else:
                values[section] = {**values[section], key: value}
        return from_dict(values)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON/YAML-friendly values, one dict per section (tuples become lists)."""
        out: dict[str, Any] = {"method": self.method}
        for name in SECTIONS:
            section = dataclasses.asdict(getattr(self, name))
            out[name] = {k: list(v) if isinstance(v, tuple) else v for k, v in section.items()}
        return out

    def sections(self, names: tuple[str, ...]) -> dict[str, Any]:
        """`method` and the named sections as plain values."""
        values = self.to_dict()
        return {"method": self.method, **{name: values[name] for name in names}}


def _fields_of(section: str) -> list[str]:
    return [f.name for f in dataclasses.fields(SECTIONS[section])]


def setting_names() -> dict[str, list[str]]:
    """Short setting name -> the sections that have a setting of that name."""
    names: dict[str, list[str]] = {}
    for section in SECTIONS:
        for name in _fields_of(section):
            names.setdefault(name, []).append(section)
    return names


def setting_path(name: str) -> tuple[str | None, str]:
    """(section, field) of a setting named "section.field", or by its field name alone where
    only one section has it; "method" is (None, "method")."""
    if name == "method":
        return None, name
    section, dot, key = name.rpartition(".")
    if dot:
        if section not in SECTIONS or key not in _fields_of(section):
            raise BadConfigError(f"GCL config: unknown setting {name!r}; {_known_settings()}")
        return section, key
    owners = setting_names().get(name, [])
    if len(owners) == 1:
        return owners[0], name
    if owners:
        choices = ", ".join(f"{owner}.{name}" for owner in owners)
        raise BadConfigError(f"GCL config: setting {name!r} is ambiguous; write one of {choices}")
    raise BadConfigError(f"GCL config: unknown setting {name!r}; {_known_settings()}")


def _known_settings() -> str:
    listed = "; ".join(f"{section}: {', '.join(_fields_of(section))}" for section in SECTIONS)
    return f"settings are method and, by section, {listed}"


def from_dict(values: Mapping[str, Any]) -> GCLConfig:
    """Build a config from nested plain values (a YAML section, `to_dict()`); missing keys
    keep their defaults, unknown ones are named and rejected."""
    unknown = sorted(set(values) - {"method", *SECTIONS})
    if unknown:
        raise BadConfigError(f"GCL config: unknown key(s) {', '.join(unknown)}; {_known_settings()}")
    sections = {}
    for name, section_type in SECTIONS.items():
        given = values.get(name) or {}
        if not isinstance(given, Mapping):
            raise BadConfigError(f"GCL config: section {name} must be a mapping, found {given!r}")
        extra = sorted(set(given) - set(_fields_of(name)))
        if extra:
            raise BadConfigError(
                f"GCL config: unknown key(s) {', '.join(f'{name}.{k}' for k in extra)}; "
                f"{name} has {', '.join(_fields_of(name))}"
            )
        sections[name] = section_type(**given)
    return GCLConfig(method=values.get("method", "gcl"), **sections)


def merged(base: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """Nested plain values `base` with `changes` applied section by section."""
    out = {key: dict(value) if isinstance(value, Mapping) else value for key, value in base.items()}
    for key, value in changes.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = {**out[key], **value}
        else:
            out[key] = value
    return out


PRESETS: dict[str, dict[str, Any]] = {
    # Paper §4 exactly (the dataclass defaults).
    "paper": {},
    # Same algorithm, sized for small data: see the module docstring.
    "small": {
        "optimiser": {
            "lr": 1e-4,  # 5x the paper's; 1e-3 and above spike RMSprop's first steps (train loss)
            "max_batch_fraction": 0.125,  # at least 8 steps per epoch
            "min_batch": 32,
            "min_steps_per_stage": 150,  # AE train loss still falls steeply before ~150 steps at this lr
        },
        "pretrain_g": {"epochs": 15},
        "pretrain_d": {"epochs": 5},
        "loop": {"epochs": 15},
    },
}


def preset_names() -> list[str]:
    return list(PRESETS)


def get_preset(name: str, **overrides: Any) -> GCLConfig:
    """The named preset ("paper" or "small") with optional settings changed (`replace`)."""
    if name not in PRESETS:
        raise BadConfigError(f"GCL config: unknown preset {name!r}; presets are {', '.join(PRESETS)}")
    return from_dict(PRESETS[name]).replace(**overrides)
