"""Extraction in the workflow (issue 8): shard jobs of several videos, reruns that follow only
the settings that change features, a video that turns out bad inside a shard, and `device:
cuda` refused before any job on a machine without CUDA."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from gclvad.extract.networks.registry import build_extractor
from gclvad.extract.one_video import extract_video
from gclvad.features.feature_set import load_feature_set
from gclvad.features.files import read_video_features
from workflow import make_workdir, planned_rules, snakemake, tiny_config, write_config

MERGED = "results/demo/features/r3d_18.h5"
VIDEO_FEATURES = Path("results/demo/features/r3d_18")
VIDEOS = [f"train_{i:03d}" for i in range(4)] + [f"test_{i:03d}" for i in range(3)]


def dry_run_rules(workdir: Path) -> dict[str, int]:
    result = snakemake(workdir, "-n", MERGED)
    output = result.stdout + result.stderr
    if "Nothing to be done" in output:
        return {}
    return planned_rules(output)


def extraction_plan_lines(workdir: Path) -> list[str]:
    """The lines a dry run prints about extraction (on stderr: `snakemake -n` cannot list the
    jobs of a checkpoint that has not run)."""
    result = snakemake(workdir, "-n", MERGED)
    return [line for line in result.stderr.splitlines() if line.startswith("gclvad: extraction of")]


def edit_config(workdir: Path, edit) -> None:
    config = yaml.safe_load((workdir / "config" / "config.yaml").read_text())
    edit(config)
    write_config(workdir, config)


@pytest.fixture(scope="module")
def sharded(tmp_path_factory) -> Path:
    """The tiny demo's features extracted in shards of 3 videos (3 jobs: 3 + 3 + 1), bad
    videos skipped."""
    config = tiny_config(extraction={"videos_per_job": 3, "decoders": 2}, on_bad_video="skip")
    workdir = make_workdir(tmp_path_factory.mktemp("sharded") / "workdir", config)
    snakemake(workdir, MERGED)
    return workdir


@pytest.mark.slow
def test_shard_jobs_write_every_per_video_file_and_the_merged_file(sharded, tmp_path):
    logs = sorted(p.name for p in (sharded / "logs/demo/extract/r3d_18").glob("shard*.log"))
    assert logs == ["shard0.log", "shard1.log", "shard2.log"]
    assert sorted(p.stem for p in (sharded / VIDEO_FEATURES).glob("*.h5")) == sorted(VIDEOS)
    manifest = json.loads((sharded / VIDEO_FEATURES / "shards" / "1.json").read_text())
    assert list(manifest["features"]) == ["train_003", "test_000", "test_001"] and manifest["bad"] == {}
    merged = load_feature_set(sharded / MERGED)
    assert sorted(merged.videos) == sorted(VIDEOS) and merged.features.shape == (21, 512)
    # A job's features are those of extracting the video on its own (2 torch threads both).
    extractor = build_extractor("r3d_18", "random", "cpu")
    source = sharded / "results/demo/videos/test_001.mp4"
    extract_video(extractor, source, tmp_path / "alone.h5", batch_size=4, dtype="float32")
    alone, attrs = read_video_features(tmp_path / "alone.h5")
    assert np.array_equal(merged.of("test_001"), alone)
    assert read_video_features(sharded / VIDEO_FEATURES / "test_001.h5")[1] == attrs


@pytest.mark.slow
def test_only_settings_that_change_features_extract_again(sharded, tmp_path):
    workdir = shutil.copytree(sharded, tmp_path / "workdir", symlinks=True)
    assert dry_run_rules(workdir) == {}
    assert extraction_plan_lines(workdir) == [
        "gclvad: extraction of demo/r3d_18: 3 shards (3, 3, 1 videos), 7 videos already done, 0 shard jobs to run"
    ]
    for edit in (
        lambda c: c["extraction"].update(videos_per_job=2),
        lambda c: c["extraction"].update(decoders=1),
        lambda c: c["extractors"]["r3d_18"].update(batch_size=2),
    ):
        edit_config(workdir, edit)
        assert dry_run_rules(workdir) == {}, "an execution setting re-ran a job"
    # Now 4 shards of 2: a missing file re-runs its shard and the merge, nothing else.
    (workdir / VIDEO_FEATURES / "test_000.h5").unlink()
    assert dry_run_rules(workdir) == {"extract_shard": 1, "merge_features": 1}
    snakemake(workdir, MERGED)
    assert (workdir / "logs/demo/extract/r3d_18/shard2.log").read_text().count("-> results/demo/features") == 1
    assert dry_run_rules(workdir) == {}
    edit_config(workdir, lambda c: c["extractors"]["r3d_18"].update(precision="bf16"))
    assert dry_run_rules(workdir) == {"extract_shard": 4, "merge_features": 1}


@pytest.mark.slow
def test_a_video_that_turns_out_bad_is_skipped_inside_its_shard(sharded, tmp_path):
    workdir = shutil.copytree(sharded, tmp_path / "workdir", symlinks=True)
    kept = {v: (workdir / VIDEO_FEATURES / f"{v}.h5").stat().st_mtime_ns for v in VIDEOS}
    # Damaged after the segment index had found it fine (the index is not made again).
    (workdir / "results/demo/videos/test_001.mp4").write_text("overwritten by a failed copy\n" * 40)
    result = snakemake(workdir, MERGED)
    assert "test_001.mp4: skipped" in (workdir / "logs/demo/extract/r3d_18/shard1.log").read_text()
    assert "extract_shard" in result.stdout + result.stderr
    merged = load_feature_set(workdir / MERGED)
    assert sorted(merged.videos) == sorted(set(VIDEOS) - {"test_001"})
    manifest = json.loads((workdir / VIDEO_FEATURES / "shards" / "1.json").read_text())
    assert list(manifest["bad"]) == ["test_001"] and "is not a video FFmpeg can open" in manifest["bad"]["test_001"]
    # The others were not extracted again, and the bad one is not retried while it stays bad.
    for video in set(VIDEOS) - {"test_001"}:
        assert (workdir / VIDEO_FEATURES / f"{video}.h5").stat().st_mtime_ns == kept[video], video
    assert dry_run_rules(workdir) == {}


def test_a_dry_run_prints_the_extraction_it_plans_once(tmp_path):
    config = tiny_config(extraction={"videos_per_job": 3})
    workdir = make_workdir(tmp_path / "workdir", config)
    # Before the segment index exists the shards are unknown: the dry run says when they will be.
    assert extraction_plan_lines(workdir) == [
        "gclvad: extraction of demo/r3d_18: shards planned once results/demo/segments.tsv is written"
    ]
    snakemake(workdir, "results/demo/segments.tsv")
    assert extraction_plan_lines(workdir) == [
        "gclvad: extraction of demo/r3d_18: 3 shards (3, 3, 1 videos), 0 videos already done, 3 shard jobs to run"
    ]
    assert dry_run_rules(workdir) == {"extract_shard": 3, "merge_features": 1}


def test_cuda_on_a_machine_without_it_stops_before_any_job(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    workdir = make_workdir(tmp_path / "workdir", tiny_config(device="cuda"))
    result = snakemake(workdir, "-n", MERGED, check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "config device: 'cuda' cannot be used on this machine: " in output, output[-3000:]
    assert "has no usable CUDA GPU" in output and "rule " not in output
