"""Names and settings the workflow refuses before any job runs (issue 11, items 6-8), and a
user error inside a job printed once, without a traceback (item 5).

Each refusal is a dry run that must stop before planning a job, with the message a user
sees; `test_extractor_facts_are_what_the_networks_accept` keeps the torch-free table these
checks read in step with the real networks.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from videos import make_video

from workflow import make_workdir, merge, snakemake, tiny_config, write_config


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return make_workdir(tmp_path_factory.mktemp("refusals") / "workdir", tiny_config())


def refused(workdir: Path, config: dict, target: str = "results/demo/segments.tsv") -> str:
    """The output of a dry run that stops before planning any job."""
    write_config(workdir, config)
    result = snakemake(workdir, "-n", target, check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-3000:]
    assert "Job stats:" not in output, output[-3000:]
    return output


def test_the_tiny_config_itself_is_accepted(workdir):
    write_config(workdir, tiny_config())
    assert "segment_index" in snakemake(workdir, "-n", "results/demo/segments.tsv").stdout


def test_dataset_name_outside_the_wildcard_pattern_is_refused_by_the_schema(workdir):
    config = tiny_config()
    config["datasets"] = {"x; touch y": config["datasets"]["demo"]}
    output = refused(workdir, config, "results/demo/segments.tsv")
    assert "'x; touch y' does not match '^[A-Za-z0-9_-]+$'" in output
    assert not (workdir / "y").exists()


def test_unknown_extractor_key_is_refused(workdir):
    config = merge(tiny_config(), {"extractors": {"r4d_18": {"weights": "random"}}})
    output = refused(workdir, config)
    assert "config extractors.r4d_18: 'r4d_18' is not a known extractor (known: resnext101, i3d, r3d_18" in output


@pytest.mark.parametrize(
    "extractor, segment_length, message",
    [
        ("i3d", 8, "extractor 'i3d' needs segments of at least 9 frames"),
        ("s3d", 12, "extractor 's3d' needs segments of at least 13 frames"),
        ("mvit_v2_s", 8, "extractor 'mvit_v2_s' only accepts 16-frame segments"),
    ],
)
def test_segment_length_the_dataset_extractor_refuses(workdir, extractor, segment_length, message):
    config = merge(tiny_config(), {"segment_length": segment_length, "datasets": {"demo": {"extractor": extractor}}})
    config["extractors"][extractor] = {"weights": "random"}
    output = refused(workdir, config)
    assert f"config segment_length: {message}" in output and "(dataset demo uses it)" in output


@pytest.mark.parametrize("where", ["top level", "preset"])
def test_percentile_threshold_outside_0_100_is_refused_for_any_target(workdir, where):
    cleaning = {"mode": "percentile", "threshold": 150}
    config = tiny_config()
    if where == "top level":
        config["cleaning"] = cleaning
    else:
        config["training"]["presets"]["tiny"]["cleaning"] = cleaning
    # The segment index reads no cleaning setting: the refusal does not wait for a TD run.
    output = refused(workdir, config)
    assert "config cleaning (dataset demo, training preset tiny): cleaning.threshold is a percentile" in output
    assert "so it must be in (0, 100]; found 150" in output


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda c: c["datasets"]["demo"].update(crops="each"),
            "config datasets.demo.crops: a dataset's `crops` is now `crop_use`",
        ),
        (
            lambda c: c["datasets"]["demo"].update(crop_use="center"),
            "config datasets.demo.crop_use: 'center' is spelled 'centre'",
        ),
        (
            lambda c: c["cleaning"].update(normalize="l2"),
            "config cleaning.normalize: the key is now cleaning.normalise",
        ),
        (
            lambda c: c["training"]["presets"]["tiny"].update(cleaning={"normalize": "none"}),
            "config training.presets.tiny.cleaning.normalize: the key is now training.presets.tiny.cleaning.normalise",
        ),
    ],
)
def test_old_spellings_are_refused_naming_the_new_ones_before_the_schema(workdir, edit, message):
    config = tiny_config()
    edit(config)
    output = refused(workdir, config)
    assert message in output, output[-3000:]
    assert "Additional properties are not allowed" not in output and "is not one of" not in output


def test_a_retired_variant_setting_names_its_new_name(workdir):
    target = "results/demo/r3d_18/GCL_PT~cleaning.normalize=none/seed0/auc.json"
    output = refused(workdir, tiny_config(), target)
    assert "setting 'cleaning.normalize' is retired; write cleaning.normalise" in output, output[-3000:]


def test_video_wildcard_takes_only_safe_ids(workdir):
    write_config(workdir, tiny_config())
    for video in ("sub/x", ".hidden"):
        output = refused(workdir, tiny_config(), f"results/demo/features/r3d_18/{video}.h5")
        assert "MissingRuleException" in output and "No rule to produce" in output


def test_extractor_facts_are_what_the_networks_accept():
    """Each network (random weights) takes a clip of its shortest length and refuses one frame
    fewer, where the table says so; the table names exactly the extractors gclvad builds."""
    import torch

    from gclvad.decode.preprocessing import _pair
    from gclvad.errors import GclvadError
    from gclvad.extract.facts import EXTRACTOR_FACTS, segment_length_problem
    from gclvad.extract.networks.registry import EXTRACTOR_NAMES, build_extractor

    assert set(EXTRACTOR_FACTS) == set(EXTRACTOR_NAMES)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for name, facts in EXTRACTOR_FACTS.items():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                extractor = build_extractor(name, "random", device="cpu")
            assert extractor.required_frames == facts.required_frames, name
            height, width = _pair(extractor.preprocessing.crop)
            shortest = facts.required_frames or facts.min_frames
            assert extractor.extract(torch.zeros(1, 3, shortest, height, width)).shape == (1, extractor.dim)
            too_short = facts.required_frames + 1 if facts.required_frames else facts.min_frames - 1
            if too_short >= 1:
                with pytest.raises((RuntimeError, GclvadError)):
                    extractor.extract(torch.zeros(1, 3, too_short, height, width))
                assert segment_length_problem(name, too_short)
            assert segment_length_problem(name, shortest) == ""
    finally:
        torch.set_num_threads(before)


def test_a_user_error_inside_a_job_is_printed_once_without_traceback(tmp_path):
    """A manifest with a missing video: the job's message reaches the console once (through
    the failed job's log), with every problem and no Python traceback."""
    config = tiny_config()
    config["datasets"] = {
        "mine": {"format": "generic", "manifest": "data/videos.csv", "extractor": "r3d_18", "training": "tiny"}
    }
    workdir = make_workdir(tmp_path / "workdir", config)
    make_video(workdir / "data" / "a.mkv", 40)
    (workdir / "data" / "videos.csv").write_text("video,path\na,a.mkv\nb,b.mkv\na,a.mkv\n")
    result = snakemake(workdir, "results/mine/segments.tsv", check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert output.count("a: data/videos.csv line 2, data/videos.csv line 4") == 1, output
    assert output.count("data/b.mkv (video b, data/videos.csv line 3): not found") == 1, output
    assert "Traceback" not in output
    log = (workdir / "logs" / "mine" / "segment_index.log").read_text()
    assert "ERROR gclvad: job failed: video ids must be unique" in log and "Traceback" not in log
