"""The workflow's config checks (gclvad.stages.config_checks), called on small config dicts.

The workflow runs them before planning any job (tests/test_workflow_config.py and
tests/test_workflow_refusals.py see the messages through a dry run); here each check is held
to what it finds and what it lets pass.
"""

from __future__ import annotations

import copy
import subprocess
import sys

import pytest

from gclvad.stages.config_checks import (
    cleaning_problems,
    config_problems,
    cuda_device_problems,
    extractor_name_problems,
    frame_step_problems,
    network_of,
    published_datasets,
    reference_problems,
    retired_spelling_problems,
    segment_length_problems,
)


def small_config(**datasets) -> dict:
    """A config as the schema leaves it: one video dataset on i3d, presets small and paper."""
    return {
        "segment_length": 16,
        "device": "cpu",
        "datasets": datasets or {"demo": {"format": "generic", "extractor": "i3d", "training": "small"}},
        "extractors": {"i3d": {"weights": "package"}, "i3d_three": {"network": "i3d", "crops": "three"}},
        "cleaning": {},
        "training": {"presets": {"small": {"base": "small"}, "paper": {"base": "paper"}}},
    }


def with_changes(config: dict, edit) -> dict:
    config = copy.deepcopy(config)
    edit(config)
    return config


PUBLISHED = {"format": "features", "train_list": "a", "test_list": "b", "feature_dir": "c"}


def test_a_usable_config_has_no_problems():
    config = small_config(demo={"format": "generic", "extractor": "i3d_three"}, fx=PUBLISHED)
    assert retired_spelling_problems(config) == []
    assert config_problems(config) == []


def test_published_datasets_and_networks():
    config = small_config(demo={"format": "generic", "extractor": "i3d"}, fx=PUBLISHED)
    assert published_datasets(config) == ["fx"]
    assert network_of(config, "i3d_three") == "i3d" and network_of(config, "i3d") == "i3d"


# ---------------------------------------------------------------- old spellings


def test_a_datasets_crops_is_refused_naming_crop_use():
    config = small_config(demo={"format": "generic", "extractor": "i3d", "crops": "each"})
    [problem] = retired_spelling_problems(config)
    assert problem.startswith("config datasets.demo.crops: a dataset's `crops` is now `crop_use`")
    assert problem.endswith("write crop_use: each")


def test_the_old_crops_value_center_is_told_both_new_spellings():
    config = small_config(demo={"format": "generic", "extractor": "i3d", "crops": "center"})
    [problem] = retired_spelling_problems(config)
    assert "`crop_use`" in problem and problem.endswith("write crop_use: centre")


@pytest.mark.parametrize(
    ("edit", "key"),
    [
        (lambda c: c["datasets"]["demo"].update(crop_use="center"), "datasets.demo.crop_use"),
        (lambda c: c["extractors"]["i3d"].update(crops="center"), "extractors.i3d.crops"),
    ],
)
def test_center_is_refused_naming_centre(edit, key):
    [problem] = retired_spelling_problems(with_changes(small_config(), edit))
    assert problem == f"config {key}: 'center' is spelled 'centre'; write centre"


@pytest.mark.parametrize(
    ("edit", "key"),
    [
        (lambda c: c["cleaning"].update(normalize="none"), "cleaning"),
        (
            lambda c: c["training"]["presets"]["small"].update(cleaning={"normalize": "l2"}),
            "training.presets.small.cleaning",
        ),
    ],
)
def test_cleaning_normalize_is_refused_naming_normalise(edit, key):
    [problem] = retired_spelling_problems(with_changes(small_config(), edit))
    assert problem.startswith(f"config {key}.normalize: the key is now {key}.normalise")


def test_the_new_spellings_pass_and_every_old_one_is_named():
    config = small_config()
    config["datasets"]["demo"]["crop_use"] = "centre"
    config["cleaning"] = {"normalise": "none"}
    assert retired_spelling_problems(config) == []
    config["datasets"]["other"] = {"format": "generic", "extractor": "i3d", "crops": "mean"}
    config["cleaning"] = {"normalize": "none"}
    assert len(retired_spelling_problems(config)) == 2


def test_old_spellings_are_looked_for_in_configs_the_schema_will_refuse():
    # Run before the schema: shapes it refuses must not crash the check.
    for config in ({}, {"datasets": "x", "cleaning": None, "training": {"presets": []}}, {"datasets": {"d": 3}}):
        assert retired_spelling_problems(config) == []


# ---------------------------------------------------------------- after the schema


def test_unknown_extractor_and_preset_references_are_named_with_the_known_ones():
    config = small_config(demo={"format": "generic", "extractor": "r4d", "training": "huge"})
    assert reference_problems(config) == [
        "config datasets.demo.training: 'huge' is not defined (known: paper, small)",
        "config datasets.demo.extractor: 'r4d' is not defined (known: i3d, i3d_three)",
    ]


def test_a_published_dataset_names_no_extractor_and_its_preset_defaults_to_small():
    config = small_config(fx=PUBLISHED)
    assert reference_problems(config) == []
    config["training"]["presets"].pop("small")
    assert reference_problems(config) == ["config datasets.fx.training: 'small' is not defined (known: paper)"]


def test_frame_step_is_refused_for_published_features_only():
    config = small_config(demo={"format": "generic", "extractor": "i3d", "frame_step": 2}, fx=PUBLISHED)
    assert frame_step_problems(config) == []
    config["datasets"]["fx"]["frame_step"] = 1  # the default, said out loud
    assert config_problems(config) == []
    config["datasets"]["fx"]["frame_step"] = 3
    assert config_problems(config) == [
        "config datasets.fx.frame_step: 3 for published features, whose rows were extracted from every frame "
        "by others; remove it (only datasets of videos sample frames)"
    ]


def test_an_extractor_entry_must_run_a_known_network():
    config = small_config()
    config["extractors"]["r4d_18"] = {"weights": "random"}
    config["extractors"]["i3d_four"] = {"network": "i4d", "weights": "random"}
    problems = extractor_name_problems(config)
    assert len(problems) == 2
    assert problems[0].startswith("config extractors.r4d_18: 'r4d_18' is not a known extractor (known: ")
    assert problems[1].startswith("config extractors.i3d_four.network: 'i4d' is not a known extractor")


def test_segment_length_must_suit_each_video_datasets_network():
    config = small_config(demo={"format": "generic", "extractor": "i3d_three"}, fx=PUBLISHED)
    config["segment_length"] = 8
    [problem] = segment_length_problems(config)
    assert problem.startswith("config segment_length: extractor 'i3d' needs segments of at least 9 frames")
    assert "(dataset demo uses it)" in problem
    config["segment_length"] = 9
    assert segment_length_problems(config) == []


def test_cleaning_is_checked_as_each_dataset_layers_it():
    config = small_config(demo={"format": "generic", "extractor": "i3d"})
    config["cleaning"] = {"mode": "percentile", "threshold": 150}
    [problem] = cleaning_problems(config)
    assert problem.startswith(
        "config cleaning (dataset demo, training preset small): cleaning.threshold is a percentile"
    )
    # The preset's own cleaning comes over the top-level section.
    config["training"]["presets"]["small"]["cleaning"] = {"threshold": 90}
    assert cleaning_problems(config) == []
    config["cleaning"] = {"normalise": "cosine"}
    assert "cleaning.normalise must be one of l2, none; found 'cosine'" in cleaning_problems(config)[0]


def test_config_problems_stop_at_the_first_check_that_finds_any():
    # Unknown extractor: segment_length's check, which reads it, must not run (and crash).
    config = small_config(demo={"format": "generic", "extractor": "r4d"})
    config["segment_length"] = 4
    assert config_problems(config) == ["config datasets.demo.extractor: 'r4d' is not defined (known: i3d, i3d_three)"]


def test_a_cpu_device_needs_no_probe_and_cuda_is_probed_in_a_child():
    assert cuda_device_problems("cpu") == [] and cuda_device_problems("auto") == []
    has_cuda = (
        subprocess.run(
            [sys.executable, "-c", "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"]
        ).returncode
        == 0
    )
    problems = cuda_device_problems("cuda")
    if has_cuda:
        assert problems == []
    else:
        [problem] = problems
        assert problem.startswith("config device: 'cuda' cannot be used on this machine: ")
        assert "has no usable CUDA GPU" in problem


def test_the_checks_load_no_torch():
    probe = "import sys, gclvad.stages.config_checks, gclvad.stages.extraction_plan; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
