"""Checks of the workflow's config beyond its schema, as plain functions of the config dict.

The workflow (workflow/rules/common.smk) stops before planning any job when one of them
returns problems, printing them; each problem names the config key and what is wrong.
`retired_spelling_problems` runs before the schema, so that a config written with an old
spelling is told the new one rather than "Additional properties are not allowed"; the
others run after it, in the order `config_problems` gives. Nothing here imports torch:
the workflow's planning process calls these.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Mapping
from typing import Any

from gclvad.cleaning import CleaningConfig
from gclvad.errors import GclvadError
from gclvad.extract.facts import segment_length_problem, unknown_extractor_problem

DEFAULT_PRESET = "small"
PUBLISHED_FORMAT = "features"  # datasets of published features: no videos, no extractor
# Config keys and values renamed so that one word names one concept (issue 16); a config
# that still uses the old one is refused, since reading it another way would change its meaning.
RETIRED_VALUES = {"center": "centre"}


def published_datasets(config: Mapping[str, Any]) -> list[str]:
    """Names of the datasets of published features (format `features`)."""
    return [name for name, entry in config["datasets"].items() if entry["format"] == PUBLISHED_FORMAT]


def network_of(config: Mapping[str, Any], extractor: str) -> str:
    """The network an `extractors:` entry runs: its `network`, or its own name."""
    return config["extractors"][extractor].get("network", extractor)


def preset_name(entry: Mapping[str, Any]) -> str:
    """The training preset a dataset entry names (`small` when it names none)."""
    return entry.get("training", DEFAULT_PRESET)


# ---------------------------------------------------------------- before the schema


def _entries(config: Mapping[str, Any], section: str) -> list[tuple[str, Mapping[str, Any]]]:
    """(name, entry) of a mapping section, skipping what the schema will refuse anyway."""
    entries = config.get(section)
    if not isinstance(entries, Mapping):
        return []
    return [(name, entry) for name, entry in entries.items() if isinstance(entry, Mapping)]


def _retired_value(key: str, value: Any) -> list[str]:
    if isinstance(value, str) and value in RETIRED_VALUES:
        return [f"config {key}: '{value}' is spelled '{RETIRED_VALUES[value]}'; write {RETIRED_VALUES[value]}"]
    return []


def _cleaning_sections(config: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """(config key, section) of the top-level `cleaning:` and every training preset's."""
    sections = [("cleaning", config.get("cleaning"))]
    training = config.get("training")
    presets = training.get("presets") if isinstance(training, Mapping) else None
    for name, preset in _entries({"presets": presets}, "presets"):
        sections.append((f"training.presets.{name}.cleaning", preset.get("cleaning")))
    return sections


def retired_spelling_problems(config: Mapping[str, Any]) -> list[str]:
    """Old spellings: a dataset's `crops` (now `crop_use`), the value `center` (now `centre`),
    `cleaning.normalize` (now `cleaning.normalise`)."""
    problems = []
    for name, entry in _entries(config, "datasets"):
        if "crops" in entry:
            problems.append(
                f"config datasets.{name}.crops: a dataset's `crops` is now `crop_use` (how training uses the "
                f"crops of a segment: mean, each, first or centre); `crops` is the extractor's key (the crops "
                f"the network sees); write crop_use: {RETIRED_VALUES.get(entry['crops'], entry['crops'])}"
            )
        problems += _retired_value(f"datasets.{name}.crop_use", entry.get("crop_use"))
    for name, entry in _entries(config, "extractors"):
        problems += _retired_value(f"extractors.{name}.crops", entry.get("crops"))
    for key, section in _cleaning_sections(config):
        if isinstance(section, Mapping) and "normalize" in section:
            problems.append(f"config {key}.normalize: the key is now {key}.normalise (spelled as crop_normalise)")
    return problems


# ---------------------------------------------------------------- after the schema


def reference_problems(config: Mapping[str, Any]) -> list[str]:
    """Names a dataset gives (its extractor, its training preset) must be config entries."""
    problems = []
    published = published_datasets(config)
    for name, entry in config["datasets"].items():
        references = {"training": (preset_name(entry), config["training"]["presets"])}
        if name not in published:
            references["extractor"] = (entry["extractor"], config["extractors"])
        for key, (value, known) in references.items():
            if value not in known:
                problems.append(
                    f"config datasets.{name}.{key}: '{value}' is not defined (known: {', '.join(sorted(known))})"
                )
    return problems


def extractor_name_problems(config: Mapping[str, Any]) -> list[str]:
    """Every `extractors:` entry must run a network gclvad has (gclvad.extract.facts)."""
    problems = []
    for name, entry in config["extractors"].items():
        problem = unknown_extractor_problem(network_of(config, name))
        if problem:
            key = f"{name}.network" if "network" in entry else name
            problems.append(f"config extractors.{key}: {problem}")
    return problems


def segment_length_problems(config: Mapping[str, Any]) -> list[str]:
    """segment_length must suit the extractor of every dataset (I3D needs 9 frames or more)."""
    problems = []
    published = published_datasets(config)
    for name, entry in config["datasets"].items():
        if name in published:
            continue  # features extracted by others: their rows are what they are
        problem = segment_length_problem(network_of(config, entry["extractor"]), config["segment_length"])
        if problem:
            problems.append(
                f"config segment_length: {problem} (dataset {name} uses it); set segment_length to a length it accepts"
            )
    return problems


def frame_step_problems(config: Mapping[str, Any]) -> list[str]:
    """frame_step samples decoded frames: published features have no frames left to sample."""
    return [
        f"config datasets.{name}.frame_step: {config['datasets'][name]['frame_step']} for published features, "
        "whose rows were extracted from every frame by others; remove it (only datasets of videos sample frames)"
        for name in published_datasets(config)
        if config["datasets"][name].get("frame_step", 1) != 1
    ]


def cleaning_problems(config: Mapping[str, Any]) -> list[str]:
    """The `cleaning:` settings every dataset's runs start from (the top-level section, then
    its training preset's), checked even where no run of it is asked for yet."""
    problems = []
    for name, entry in config["datasets"].items():
        preset = config["training"]["presets"][preset_name(entry)]
        try:
            CleaningConfig(**{**config.get("cleaning", {}), **preset.get("cleaning", {})})
        except GclvadError as error:
            problems.append(f"config cleaning (dataset {name}, training preset {preset_name(entry)}): {error}")
    return problems


# Each check may assume the ones before it passed (segment_length reads the extractors that
# the references named), so `config_problems` stops at the first that finds any.
CHECKS: tuple[Callable[[Mapping[str, Any]], list[str]], ...] = (
    reference_problems,
    extractor_name_problems,
    segment_length_problems,
    frame_step_problems,
    cleaning_problems,
)


def config_problems(config: Mapping[str, Any]) -> list[str]:
    """The problems of the first check of CHECKS that finds any (none: the config is usable)."""
    for check in CHECKS:
        problems = check(config)
        if problems:
            return problems
    return []


def cuda_device_problems(device: str) -> list[str]:
    """`device: cuda` on a machine without a usable CUDA GPU: the message a job would give,
    found in a child process so that this one never imports torch. Nothing for a usable
    device, or one that is not a CUDA one."""
    if not device.startswith("cuda"):
        return []
    probe = "import sys; from gclvad.device import resolve_device; resolve_device(sys.argv[1])"
    result = subprocess.run([sys.executable, "-c", probe, device], capture_output=True, text=True)
    if result.returncode == 0:
        return []
    reason = result.stderr.strip().splitlines()[-1] if result.stderr.strip() else ""
    return [f"config device: {device!r} cannot be used on this machine: {reason}"]
