"""Config errors (issue 2): a wrong config, missing dataset files or weights, or a target
naming something the config does not define stop `snakemake -n` before any job runs, with a
message that names the key (and, for files, where they go)."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import yaml

from workflow import REPO, make_workdir, snakemake, tiny_config, write_config

TARGET = "results/demo/auc.json"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """One scratch copy of the workflow; each test writes the config it needs."""
    return make_workdir(tmp_path_factory.mktemp("config") / "workdir", tiny_config())


def shipped_config() -> dict:
    return yaml.safe_load((REPO / "config" / "config.yaml").read_text())


def dry_run_fails(workdir: Path, config: dict, *targets: str) -> str:
    """Output of a dry run with `config` that must fail before any job is planned."""
    write_config(workdir, config)
    result = snakemake(workdir, "-n", *(targets or (TARGET,)), check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-3000:]
    assert "Job stats:" not in output, output[-3000:]
    assert not (workdir / "results").exists()
    return output


def edited(config: dict, edit) -> dict:
    config = copy.deepcopy(config)
    edit(config)
    return config


BAD_CONFIGS = {
    "wrong_type": (
        lambda c: c.update(segment_length="sixteen"),
        ["'sixteen' is not of type 'integer'", "instance['segment_length']"],
    ),
    "unknown_top_level_key": (
        lambda c: c.update(segment_lenght=8),
        ["Additional properties are not allowed ('segment_lenght' was unexpected)"],
    ),
    "unknown_dataset_key": (
        lambda c: c["datasets"]["demo"].update(extracter="r3d_18"),
        ["('extracter' was unexpected)", "instance['datasets']['demo']"],
    ),
    "unknown_preset_key": (
        lambda c: c["training"]["presets"]["tiny"].update(epoch=5),
        ["('epoch' was unexpected)", "instance['training']['presets']['tiny']"],
    ),
    "missing_top_level_key": (
        lambda c: c.pop("extractors"),
        ["'extractors' is a required property"],
    ),
    "missing_dataset_key": (
        lambda c: c["datasets"]["demo"].pop("extractor"),
        ["'extractor' is a required property", "instance['datasets']['demo']"],
    ),
    "value_outside_choices": (
        lambda c: c["cleaning"].update(mode="relative"),
        ["'relative' is not one of ['absolute', 'percentile']", "instance['cleaning']['mode']"],
    ),
    "dataset_names_unknown_extractor": (
        lambda c: c["datasets"]["demo"].update(extractor="r4d"),
        ["config datasets.demo.extractor: 'r4d' is not defined", "r3d_18"],
    ),
    "dataset_names_unknown_preset": (
        lambda c: c["datasets"]["demo"].update(training="huge"),
        ["config datasets.demo.training: 'huge' is not defined (known: paper, small, tiny, unlabelled)"],
    ),
}


@pytest.mark.parametrize("case", BAD_CONFIGS)
def test_bad_config_stops_naming_the_key(workdir, case):
    edit, expected = BAD_CONFIGS[case]
    output = dry_run_fails(workdir, edited(tiny_config(), edit))
    for text in expected:
        assert text in output, output[-3000:]


def readme_sections() -> list[str]:
    return re.findall(r"^#+ (.+)$", (REPO / "README.md").read_text(), flags=re.MULTILINE)


@pytest.mark.parametrize(("dataset", "section"), [("ucfc", "UCF-Crime"), ("stech", "ShanghaiTech")])
def test_missing_dataset_files_are_named_with_where_they_go(workdir, dataset, section):
    config = shipped_config()
    output = dry_run_fails(workdir, config, f"results/{dataset}/auc.json")
    entry = config["datasets"][dataset]
    for key in ("root", "train_list", "test_list", "annotations", "frame_masks"):
        if key in entry:
            assert f"{key}: {entry[key]}" in output, output[-3000:]
    assert f"see README.md, section '{section}'" in output
    # The section the message points to exists.
    assert any(heading.startswith(section) for heading in readme_sections())


def test_only_the_missing_dataset_files_are_named(workdir):
    config = shipped_config()
    entry = config["datasets"]["ucfc"]
    present = [workdir / entry["train_list"], workdir / entry["test_list"]]
    for path in present:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("Abuse/Abuse001_x264.mp4\n")
    try:
        output = dry_run_fails(workdir, config, "results/ucfc/auc.json")
    finally:
        for path in present:
            path.unlink()
    assert f"annotations: {entry['annotations']}" in output and f"root: {entry['root']}" in output
    assert "train_list:" not in output and "test_list:" not in output


def test_missing_weights_name_the_config_key_and_the_path(workdir):
    config = tiny_config()
    config["datasets"]["demo"]["extractor"] = "resnext101"
    weights = config["extractors"]["resnext101"]["weights"]
    output = dry_run_fails(workdir, config)
    assert f"weights for extractor 'resnext101' not found at {weights}" in output, output[-3000:]
    assert "download them as README.md says, or set extractors.resnext101.weights" in output
    assert weights in (REPO / "README.md").read_text()
    # With a file there, the same dry run gets past this check (the file is read by jobs only).
    (workdir / weights).parent.mkdir(parents=True, exist_ok=True)
    (workdir / weights).write_bytes(b"")
    try:
        result = snakemake(workdir, "-n", TARGET)
    finally:
        (workdir / weights).unlink()
    assert "Job stats:" in result.stdout


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("results/ucf/auc.json", "dataset 'ucf' is not in config 'datasets' (known: demo)"),
        ("results/demo/features/r4d.h5", "extractor 'r4d' is not in config 'extractors'"),
        ("results/demo/r4d/cleaning/l2-absolute-0.7/td_mask.npz", "extractor 'r4d' is not in config 'extractors'"),
        ("results/demo/r4d/GCL_PT/seed0/auc.json", "extractor 'r4d' is not in config 'extractors'"),
        ("results/demo/r3d_18/GCL_XY/seed0/auc.json", "unknown variant 'GCL_XY'"),
    ],
)
def test_target_naming_unknown_entries_stops(workdir, target, message):
    output = dry_run_fails(workdir, tiny_config(), target)
    assert message in output, output[-3000:]
