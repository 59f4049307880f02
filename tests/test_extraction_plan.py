"""Extraction planning (gclvad.stages.extraction_plan): shards of a dataset's videos, what a
current feature file holds, which shards have work left, and the line `snakemake -n` prints.

tests/test_workflow_extraction.py runs the same plan through the workflow."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from gclvad.errors import GclvadError
from gclvad.extract.state import BAD, DONE, TODO, write_bad_marker
from gclvad.features.files import write_video_features
from gclvad.stages.extraction_plan import (
    CLUSTER_VIDEOS_PER_JOB,
    clear_stale_manifest,
    done_feature_files,
    expected_feature_file,
    extraction_gpus,
    extraction_setting,
    plan_summary,
    shard_partition,
    shard_rows,
    shard_videos,
    todo_shards,
    usable_rows,
    video_states,
)


def rows(count: int, status: str = "ok") -> list[dict]:
    return [{"video": f"v{i}", "source": f"videos/v{i}.mp4", "segments": 3, "status": status} for i in range(count)]


def test_extraction_settings_default_to_auto():
    assert extraction_setting({}, "videos_per_job") == "auto"
    assert extraction_setting({"extraction": {"decoders": 2}}, "decoders") == 2
    assert extraction_setting({"extraction": {"decoders": 2}}, "videos_per_job") == "auto"


def test_only_videos_with_features_are_extracted_in_index_order():
    index = [*rows(2), {**rows(3)[2], "status": "truncated"}, {**rows(4)[3], "status": "bad"}]
    assert [row["video"] for row in usable_rows(index)] == ["v0", "v1", "v2"]


def test_shards_of_videos_per_job_and_auto_by_where_jobs_run():
    videos = rows(7)
    assert [[row["video"] for row in shard] for shard in shard_partition(videos, 3, False)] == [
        ["v0", "v1", "v2"],
        ["v3", "v4", "v5"],
        ["v6"],
    ]
    assert [len(shard) for shard in shard_partition(videos, "auto", False)] == [7]
    many = rows(CLUSTER_VIDEOS_PER_JOB + 1)
    assert [len(shard) for shard in shard_partition(many, "auto", True)] == [CLUSTER_VIDEOS_PER_JOB, 1]
    assert shard_partition([], "auto", False) == []


def test_a_shard_beyond_the_partition_names_the_manifest_and_the_count():
    partition = shard_partition(rows(4), 2, False)
    assert shard_rows(partition, 1, "m.json", "demo") == partition[1]
    with pytest.raises(GclvadError, match=r"^m.json: dataset 'demo' has 2 shard\(s\) of extraction.videos_per_job"):
        shard_rows(partition, 2, "m.json", "demo")


def test_a_shard_job_gets_each_videos_source_feature_file_and_segments():
    [job] = shard_videos(rows(1), lambda video: f"features/{video}.h5")
    assert job == {"video": "v0", "source": "videos/v0.mp4", "out_path": "features/v0.h5", "segments": 3}


def test_expected_feature_files_follow_the_settings_that_change_features():
    random = expected_feature_file({"weights": "random", "crops": "three"}, "r3d_18", 16, 16, 5)
    assert random.attrs == {  # no precision: `auto`, resolved by the job's machine, not pinned here
        "extractor": "r3d_18",
        "weights_random": True,
        "segment_length": 16,
        "segment_stride": None,  # consecutive windows: the attribute is absent
        "frame_step": None,  # every frame: absent too
        "weights_sha256": "random",
    }
    assert (random.dtype, random.segments, random.newer_than, random.crops) == ("float16", 5, (), 3)
    weighed = {"weights": "w.pth", "precision": "bf16", "dtype": "float32"}
    overlapping = expected_feature_file(weighed, "resnext101", 16, 8, 4)
    assert overlapping.attrs["segment_stride"] == 8 and "weights_sha256" not in overlapping.attrs
    assert (overlapping.attrs["precision"], overlapping.dtype) == ("bf16", "float32")
    assert overlapping.newer_than == (Path("w.pth"),) and overlapping.crops == 1
    assert expected_feature_file(weighed, "resnext101", 16, 16, 4, frame_step=2).attrs["frame_step"] == 2
    explicit = expected_feature_file({"weights": "random", "precision": "fp32"}, "r3d_18", 16, 16, 5)
    assert explicit.attrs["precision"] == "fp32"


@pytest.fixture
def three_shards(tmp_path):
    """Shards of 2 videos: v0 done, v1 bad, v2 and v4 done, v3 missing; v5 done."""
    videos = rows(6)
    for row in videos:
        row["source"] = str(tmp_path / f"{row['video']}.mp4")
        Path(row["source"]).write_bytes(b"video")
    expected = lambda segments: expected_feature_file({"weights": "random"}, "r3d_18", 16, 16, segments)  # noqa: E731
    feature_file = lambda video: str(tmp_path / f"{video}.h5")  # noqa: E731
    attrs = {key: value for key, value in expected(3).attrs.items() if value is not None}  # None: absent
    for video in ("v0", "v2", "v4", "v5"):
        write_video_features(feature_file(video), np.ones((3, 4), np.float32), attrs, "float16")
    write_bad_marker(feature_file("v1"), tmp_path / "v1.mp4", "not a video")
    partition = shard_partition(videos, 2, False)
    return partition, feature_file, expected


def test_states_say_which_shards_have_work_left_and_which_files_are_merged(three_shards):
    partition, feature_file, expected = three_shards
    states = video_states(partition, feature_file, expected)
    assert states == [[DONE, BAD], [DONE, TODO], [DONE, DONE]]
    assert todo_shards(states) == [1]
    assert done_feature_files(partition, states, feature_file) == [feature_file(v) for v in ("v0", "v2", "v4", "v5")]
    assert todo_shards([[DONE, BAD], [BAD]]) == []


def test_the_plan_summary_counts_shards_videos_and_work(three_shards):
    partition, feature_file, expected = three_shards
    states = video_states(partition, feature_file, expected)
    summary = plan_summary("demo/r3d_18", partition, states)
    assert summary == "extraction of demo/r3d_18: 3 shards (2, 2, 2 videos), 4 videos already done, 1 shard job to run"
    one = shard_partition(rows(6), "auto", False)
    assert plan_summary("demo/i3d", one, [[TODO] * 6]).startswith(
        "extraction of demo/i3d: 1 shard (6 videos), 0 videos"
    )


def test_a_stale_manifest_is_removed_and_a_fresh_one_is_an_error(tmp_path):
    manifest = tmp_path / "0.json"
    clear_stale_manifest(manifest, 0, "shard0.log")  # none: nothing to do
    manifest.write_text("{}")
    started = manifest.stat().st_mtime_ns + 1
    clear_stale_manifest(manifest, started, "shard0.log")
    assert not manifest.exists()
    manifest.write_text("{}")
    os.utime(manifest, ns=(started, started))
    with pytest.raises(GclvadError, match=r"shard job .*0.json finished, but .* see its log, shard0.log"):
        clear_stale_manifest(manifest, started, "shard0.log")
    assert manifest.exists()


@pytest.mark.parametrize(
    ("device", "nvidia_smi", "gpus"),
    [("cuda", False, 1), ("cuda:1", False, 1), ("auto", True, 1), ("auto", False, 0), ("cpu", True, 0)],
)
def test_gpus_a_job_asks_for(device, nvidia_smi, gpus):
    assert extraction_gpus(device, nvidia_smi) == gpus
