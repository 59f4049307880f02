"""A run: one dataset x extractor x variant x seed, and the training settings it resolves to.

A variant name may carry overrides after `~`, as in output paths:
`GCL_PT~nl_target=gaussian~gaussian_sigma=6`, `GCL_WS~supervision=33` (percent of training
videos whose label is revealed). The workflow's training stages each depend on part of the
settings only (`stage_settings`), so that editing e.g. the loop's epochs re-runs the loop and
not the pre-training.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

from gclvad.gcl.config import BadConfigError, GCLConfig
from gclvad.gcl.variants import get_variant

STAGES = ("pretrain_g", "pretrain_d", "loop")

# Settings that only the cooperative loop reads (and scoring, which follows it).
LOOP_ONLY = frozenset(
    {"epochs", "d_threshold_k", "d_labels_after_d_step", "g_label_source", "nl_target"}
    | {"gaussian_sigma", "score_chunk"}
)
# Settings read from D's pre-training on. (D's architecture is not among them: both networks
# are initialised together, before G's pre-training, from the run's seed.)
FROM_PRETRAIN_D = frozenset({"pretrain_d", "pretrain_d_epochs", "g_threshold_k", "d_targets", "supervision_fraction"})
# Settings that change where training runs but not what it computes.
EXECUTION = frozenset({"device"})
# Temporal-difference cleaning settings: read only when G pre-trains on TD-cleaned rows.
TD_SETTINGS = frozenset({"td_normalize", "td_mode", "td_threshold", "td_percentile"})
# Settings of D and of the cooperative loop, which a plain autoencoder run never has; its
# one training stage lasts `epochs` (not `pretrain_g_epochs`).
NOT_IN_AUTOENCODER = frozenset(
    {"pretrain_d", "pretrain_d_epochs", "pretrain_g_epochs", "g_threshold_k", "d_targets"}
    | {"d_threshold_k", "d_labels_after_d_step", "g_label_source", "nl_target", "gaussian_sigma"}
)

# Config `cleaning` keys -> GCLConfig fields.
CLEANING_FIELDS = {"normalize": "td_normalize", "mode": "td_mode"}


def parse_variant(text: str) -> tuple[str, dict[str, Any]]:
    """'GCL_WS~supervision=33' -> ('GCL_WS', {'supervision_fraction': 0.33})."""
    name, *pairs = text.split("~")
    overrides: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise BadConfigError(f"variant {text!r}: override {pair!r} is not key=value")
        if key == "supervision":
            overrides["supervision_fraction"] = float(value) / 100.0
        else:
            overrides[key] = _typed_value(key, value, text)
    return name, overrides


def _typed_value(key: str, value: str, variant: str) -> Any:
    fields = {f.name: f for f in dataclasses.fields(GCLConfig)}
    if key not in fields:
        raise BadConfigError(f"variant {variant!r}: unknown setting {key!r}; known: {', '.join(fields)}")
    default = fields[key].default
    if isinstance(default, bool):
        return value.lower() in ("1", "true", "yes")
    if isinstance(default, int):
        return int(value)
    if isinstance(default, float) or default is None:
        return float(value)
    return value


def cleaning_overrides(cleaning: Mapping[str, Any]) -> dict[str, Any]:
    """The workflow's `cleaning` section as GCLConfig fields."""
    out = {CLEANING_FIELDS[k]: v for k, v in cleaning.items() if k in CLEANING_FIELDS}
    if "threshold" in cleaning:
        key = "td_percentile" if cleaning.get("mode") == "percentile" else "td_threshold"
        out[key] = float(cleaning["threshold"])
    return out


def run_config(
    preset: Mapping[str, Any], variant: str, cleaning: Mapping[str, Any] | None = None, device: str = "cpu"
) -> GCLConfig:
    """The GCLConfig of a run: package preset `preset['base']`, the preset's overrides, the
    workflow's cleaning settings, then the variant and its `~` overrides."""
    preset = dict(preset)
    base = preset.pop("base", "paper")
    name, variant_overrides = parse_variant(variant)
    overrides = {**preset, **cleaning_overrides(cleaning or {}), **variant_overrides, "device": device}
    return get_variant(name, preset=base, **overrides)


def run_settings(config: GCLConfig) -> dict[str, Any]:
    """The settings a run reads, as plain values: those of its method and pre-training data,
    without execution settings (so that unread settings re-run nothing when edited)."""
    unread = set(EXECUTION)
    if config.pretrain_data != "td":
        unread |= TD_SETTINGS
    if config.method == "autoencoder":
        unread |= NOT_IN_AUTOENCODER
    return {k: v for k, v in config.to_dict().items() if k not in unread}


def stage_settings(config: GCLConfig, seed: int, stage: str) -> dict[str, Any]:
    """The settings `stage` depends on, as plain values (Snakemake params, rerun triggers)."""
    if stage not in STAGES:
        raise BadConfigError(f"unknown training stage {stage!r}; stages are {', '.join(STAGES)}")
    values = run_settings(config)
    if stage != "loop":
        dropped = set(LOOP_ONLY)
        if config.method == "autoencoder":
            dropped.discard("epochs")  # the autoencoder's training is its only stage
        values = {k: v for k, v in values.items() if k not in dropped}
    if stage == "pretrain_g":
        values = {k: v for k, v in values.items() if k not in FROM_PRETRAIN_D}
    return {**values, "seed": seed}

