"""A run: one dataset x extractor x variant x seed, and the settings it resolves to.

A run's settings are a `GCLConfig` (training) and, when G trains on temporal-difference
cleaned rows, a `CleaningConfig`. They are layered: the package preset a config preset
names (`base`), that preset's own values, the workflow's `cleaning:` section (and the
preset's `cleaning:`), then the variant and the overrides written after `~` in its name,
as in output paths: `GCL_PT~nl_target=gaussian~gaussian_sigma=6`, `GCL_PT~loop.epochs=4`,
`GCL_WS~supervision=33` (percent of training videos whose label is revealed),
`GCL_PT~cleaning.threshold=0.5` (the run then gets its own cleaning mask),
`GCL_PT~postprocess.smoothing_sigma=16` (how its frame scores are post-processed), and
`GCL_PT~ensemble=5` (a seed ensemble of 5 runs of `GCL_PT`: `ensemble_members`) and
`GCL_PT~ensemble=3~density=1` (that ensemble with a second opinion: each segment's distance to
its nearest training segment of another video, gclvad.scoring.density).

Each training stage's job gets exactly the sections of the config that stage reads
(`stage_params`, from `gcl.config.STAGE_SECTIONS`), so editing a setting re-runs the stages
that read it and what follows them, nothing before. Nothing here imports torch: the
workflow's DAG process reads settings through this module.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gclvad.cleaning import CleaningConfig
from gclvad.gcl.config import SECTIONS, STAGE_SECTIONS, BadConfigError, GCLConfig, Stage, from_dict, setting_path
from gclvad.gcl.variants import VARIANTS, get_variant, variant_cleaning
from gclvad.scoring.postprocess import PostprocessConfig

CLEANING_PREFIX = "cleaning."
POSTPROCESS_PREFIX = "postprocess."
ENSEMBLE = "ensemble"
DENSITY = "density"
# Settings a variant name may not change: they decide which workflow rules train the run
# (method) or where it runs (device, the workflow's top-level `device`).
FIXED_BY_WORKFLOW = {"method": "it is what the variant is", "device": "it is the workflow's top-level `device`"}
# Settings of older releases a variant name may still carry, and what replaced them: TD cleaning
# left the GCL settings for `cleaning.*`, and `normalize` became `normalise` (issues 16, 20).
RETIRED_SETTINGS = {
    "td_threshold": "cleaning.threshold",
    "td_mode": "cleaning.mode",
    "td_normalize": "cleaning.normalise",
    "td_percentile": "cleaning.threshold with cleaning.mode=percentile",
    "cleaning.normalize": "cleaning.normalise",
}


@dataclass(frozen=True)
class RunSettings:
    """Everything a run reads: GCL settings, TD cleaning when G trains on cleaned rows, how its
    scores are post-processed, and how many seeds it ensembles (1: a single run)."""

    gcl: GCLConfig
    cleaning: CleaningConfig | None
    postprocess: PostprocessConfig = field(default_factory=PostprocessConfig)
    ensemble: int = 1
    density: int = 0  # an ensemble's second opinion: the k of its nearest-neighbour distance (0: none)

    def to_dict(self) -> dict[str, Any]:
        """The settings the run's training reads, as plain values (the sections of its stages, its
        cleaning; device excluded). Post-processing is not among them: only scoring reads it."""
        sections = sorted({s for stage in self.gcl.stages for s in STAGE_SECTIONS[stage]}, key=list(SECTIONS).index)
        values = self.gcl.sections(tuple(sections))
        values["execution"] = {k: v for k, v in values["execution"].items() if k != "device"}
        if self.cleaning is not None:
            values["cleaning"] = self.cleaning.to_dict()
        return values


@dataclass(frozen=True)
class Variant:
    """A variant name taken apart: the paper's variant and its typed overrides."""

    name: str
    gcl: dict[str, Any]  # GCL settings ("section.field" or unique names)
    cleaning: dict[str, Any]  # CleaningConfig fields
    postprocess: dict[str, Any]  # PostprocessConfig fields
    ensemble: int  # seeds ensembled (1: a single run)
    density: int = 0  # the k of an ensemble's nearest-neighbour second opinion (0: none)


def parse_variant(text: str) -> Variant:
    """'GCL_WS~supervision=33' -> Variant('GCL_WS', {'supervision.fraction': 0.33}, ...)."""
    name, *pairs = text.split("~")
    if name not in VARIANTS:
        raise BadConfigError(f"variant {text!r}: unknown variant {name!r}; variants are {', '.join(VARIANTS)}")
    parsed = Variant(name, {}, {}, {}, 1)
    ensemble = density = 0
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise BadConfigError(f"variant {text!r}: override {pair!r} is not key=value")
        if key in RETIRED_SETTINGS:
            raise BadConfigError(f"variant {text!r}: setting {key!r} is retired; write {RETIRED_SETTINGS[key]}")
        if key == "supervision":
            parsed.gcl["supervision.fraction"] = _number(value, key, text) / 100.0
        elif key == ENSEMBLE:
            ensemble = _whole(value, key, text, 2, "seeds")
        elif key == DENSITY:
            density = _whole(value, key, text, 1, "nearest neighbours")
        elif key.startswith(CLEANING_PREFIX):
            field_name = key[len(CLEANING_PREFIX) :]
            parsed.cleaning[field_name] = _typed(CleaningConfig, field_name, value, text)
        elif key.startswith(POSTPROCESS_PREFIX):
            field_name = key[len(POSTPROCESS_PREFIX) :]
            parsed.postprocess[field_name] = _typed(PostprocessConfig, field_name, value, text)
        else:
            parsed.gcl[key] = _gcl_override(key, value, text)
    if density and not ensemble:
        raise BadConfigError(
            f"variant {text!r}: density is a second opinion of a seed ensemble, whose file keeps its "
            "training segments; add ~ensemble=K"
        )
    return dataclasses.replace(parsed, ensemble=ensemble or 1, density=density)


def _whole(value: str, key: str, variant: str, least: int, what: str) -> int:
    number = _number(value, key, variant)
    if number < least or number != int(number):
        raise BadConfigError(f"variant {variant!r}: {key} must be a whole number of {what} >= {least}, found {value!r}")
    return int(number)


def _without(variant: str, *prefixes: str) -> str:
    return "~".join(part for i, part in enumerate(variant.split("~")) if i == 0 or not part.startswith(prefixes))


def models_variant(variant: str) -> str:
    """The variant whose networks a run scores with: without its post-processing overrides,
    which change how scores are post-processed and nothing that is trained (so that
    `GCL_PT~postprocess.smoothing_sigma=16` scores with GCL_PT's networks, trained once)."""
    return _without(variant, POSTPROCESS_PREFIX)


def ensemble_members(variant: str, seed: int) -> list[tuple[str, int]]:
    """(variant, seed) of the runs a `~ensemble=K` variant's seed `seed` combines: the same
    variant without `~ensemble=K` (and without post-processing), at seeds seed*K .. seed*K + K-1
    (seeds of different ensembles never overlap). The second opinion is the ensemble's alone."""
    size = parse_variant(variant).ensemble
    member = _without(variant, f"{ENSEMBLE}=", f"{DENSITY}=", POSTPROCESS_PREFIX)
    return [(member, seed * size + k) for k in range(size)]


def _gcl_override(key: str, value: str, variant: str) -> Any:
    try:
        section, field = setting_path(key)
    except BadConfigError as error:
        raise BadConfigError(f"variant {variant!r}: {error}") from None
    fixed = FIXED_BY_WORKFLOW.get(field)
    if fixed is not None:
        raise BadConfigError(f"variant {variant!r}: {key} cannot be changed in a variant name: {fixed}")
    return _typed(SECTIONS[section], field, value, variant)


def _typed(section_type: type, field: str, value: str, variant: str) -> Any:
    """`value` as the type of `section_type.field` (bool, int, float, str)."""
    fields = {f.name: f for f in dataclasses.fields(section_type)}
    if field not in fields:
        raise BadConfigError(f"variant {variant!r}: unknown setting {field!r}; known: {', '.join(fields)}")
    kind = typing.get_type_hints(section_type)[field]
    if kind is bool:
        if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
            raise BadConfigError(f"variant {variant!r}: {field} must be true or false, found {value!r}")
        return value.lower() in ("true", "1", "yes")
    if kind is int:
        return int(_number(value, field, variant))
    if kind in (float, float | None):
        return _number(value, field, variant)
    if kind is str:
        return value
    raise BadConfigError(f"variant {variant!r}: {field} cannot be set in a variant name; set it in a training preset")


def _number(value: str, field: str, variant: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise BadConfigError(f"variant {variant!r}: {field} must be a number, found {value!r}") from None


def run_settings(
    preset: Mapping[str, Any], variant: str, cleaning: Mapping[str, Any] | None = None, device: str = "cpu"
) -> RunSettings:
    """The settings of a run: config preset `preset` (`base` package preset, section values,
    optional `cleaning`), the workflow's `cleaning` section, then the variant and its `~` overrides."""
    preset = dict(preset)
    base = preset.pop("base", "paper")
    preset_cleaning = preset.pop("cleaning", {})
    preset_postprocess = preset.pop("postprocess", {})
    parsed = parse_variant(variant)
    config = get_variant(parsed.name, preset=base, **_flat(preset)).replace(**parsed.gcl, device=device)
    cleaning_values = {**(cleaning or {}), **preset_cleaning, **variant_cleaning(parsed.name), **parsed.cleaning}
    uses_cleaning = config.pretrain_g.data == "td"  # G's pre-training (or the autoencoder) on cleaned rows
    if parsed.cleaning and not uses_cleaning:
        raise BadConfigError(
            f"variant {variant!r}: it sets cleaning, but this variant does not pre-train on temporal-difference "
            "cleaned rows, so the setting would be ignored"
        )
    return RunSettings(
        gcl=config,
        cleaning=CleaningConfig(**cleaning_values) if uses_cleaning else None,
        postprocess=PostprocessConfig(**{**preset_postprocess, **parsed.postprocess}),
        ensemble=parsed.ensemble,
        density=parsed.density,
    )


def _flat(sections: Mapping[str, Any]) -> dict[str, Any]:
    """{"loop": {"epochs": 3}} -> {"loop.epochs": 3}: a preset's values as replace() takes them."""
    flat = {}
    for section, values in sections.items():
        if section == "method":
            raise BadConfigError(f"training preset: method is set by the variant, not a preset ({dict(sections)})")
        if not isinstance(values, Mapping):
            raise BadConfigError(f"training preset: {section} must be a mapping of settings, found {values!r}")
        flat.update({f"{section}.{key}": value for key, value in values.items()})
    return flat


def stage_params(settings: RunSettings, stage: Stage, seed: int) -> dict[str, Any]:
    """What `stage`'s job reads (Snakemake params, rerun triggers): `method`, the sections of
    STAGE_SECTIONS[stage] without the device, and the seed."""
    values = settings.gcl.sections(STAGE_SECTIONS[Stage(stage)])
    values["execution"] = {k: v for k, v in values["execution"].items() if k != "device"}
    return {**values, "seed": seed}


def stage_config(params: Mapping[str, Any], device: str) -> tuple[GCLConfig, int]:
    """(GCLConfig, seed) a stage's job trains with: its params, the device it runs on, and
    defaults for the sections it does not read (and never looks at)."""
    values = {key: value for key, value in params.items() if key != "seed"}
    values["execution"] = {**values.get("execution", {}), "device": device}
    return from_dict(values), int(params["seed"])


# One `~key=value` of what is trained: neither the ensemble's size, nor its second opinion,
# nor post-processing.
_OVERRIDE = r"~(?!ensemble=|density=|postprocess\.)[A-Za-z0-9_.]+=[A-Za-z0-9_.\-]+"


def variant_pattern(method: str) -> str:
    """A regex of the variant names (with `~` overrides) whose runs train with `method`, for
    the wildcard constraints that send a run to the autoencoder's rule or to GCL's rules
    (a seed ensemble is not trained: rule `ensemble` combines its members; post-processing
    overrides score with the networks of the variant without them)."""
    names = [name for name, values in VARIANTS.items() if values.get("method", "gcl") == method]
    return rf"(?:{'|'.join(names)})(?:{_OVERRIDE})*"


_ENSEMBLE_OVERRIDE = rf"(?:{_OVERRIDE}|~density=\d+)"
ENSEMBLE_PATTERN = rf"[A-Za-z0-9_]+{_ENSEMBLE_OVERRIDE}*~ensemble=\d+{_ENSEMBLE_OVERRIDE}*"
