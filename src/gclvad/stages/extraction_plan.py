"""Which extraction jobs a dataset x extractor needs, decided in the workflow's planning process.

One shard job extracts many videos in one process (gclvad.extract.shards); its output is a
small manifest, while the per-video feature files it writes are what merge_features reads.
Which videos still need extracting is decided from the files themselves
(gclvad.extract.state), so that only settings that change features re-extract, and changing
videos_per_job, decoders or batch_size re-runs nothing. workflow/rules/extract.smk calls
these functions with what it reads of the config and the segment index. Nothing here
imports torch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from gclvad.decode.crops import crop_count
from gclvad.errors import GclvadError
from gclvad.extract.state import DONE, TODO, Expected, video_state
from gclvad.weights import RANDOM_WEIGHTS, is_marker

EXTRACTION_DEFAULTS = {"videos_per_job": "auto", "decoders": "auto"}
# videos_per_job "auto": one job for all videos of a dataset when jobs run on this machine;
# on a cluster one job per this many videos, each with one GPU (at ~1,000 clips/s a shard of
# 100 UCF-Crime videos, ~45,000 clips, is a job of about a minute of GPU time).
CLUSTER_VIDEOS_PER_JOB = 100
USABLE_STATUSES = ("ok", "truncated")  # segment index rows whose video has features

Row = Mapping[str, Any]  # a segment index row: video, source, segments, status, ...
Partition = list[list[Row]]


def extraction_setting(config: Mapping[str, Any], key: str) -> Any:
    """A key of the config's `extraction:` section, or its default."""
    return config.get("extraction", {}).get(key, EXTRACTION_DEFAULTS[key])


def usable_rows(rows: Sequence[Row]) -> list[Row]:
    """The index rows of videos that have features (status ok or truncated), in index order."""
    return [row for row in rows if row["status"] in USABLE_STATUSES]


def shard_partition(rows: Sequence[Row], videos_per_job: int | str, on_cluster: bool) -> Partition:
    """The usable videos in shards of videos_per_job (in index order)."""
    size = videos_per_job
    if size == "auto":
        size = CLUSTER_VIDEOS_PER_JOB if on_cluster else max(1, len(rows))
    return [list(rows[i : i + size]) for i in range(0, len(rows), size)]


def shard_rows(partition: Partition, shard: int, manifest: str, dataset: str) -> list[Row]:
    """Shard `shard`'s rows; a shard number beyond the partition names the manifest asked for."""
    if shard >= len(partition):
        raise GclvadError(
            f"{manifest}: dataset '{dataset}' has {len(partition)} shard(s) of extraction.videos_per_job "
            "videos, numbered from 0"
        )
    return partition[shard]


def shard_videos(rows: Sequence[Row], feature_file: Callable[[str], str]) -> list[dict[str, Any]]:
    """What a shard job extracts: video id, source, feature file and segment count."""
    return [
        {
            "video": row["video"],
            "source": row["source"],
            "out_path": feature_file(row["video"]),
            "segments": int(row["segments"]),
        }
        for row in rows
    ]


def expected_feature_file(
    extractor: Mapping[str, Any],
    network: str,
    segment_length: int,
    segment_stride: int,
    segments: int,
    frame_step: int = 1,
) -> Expected:
    """What a current per-video feature file holds (gclvad.extract.state) for an `extractors:`
    entry; the shard job also checks the weights' sha256 and the preprocessing, which the
    planning process cannot."""
    weights = extractor["weights"]
    precision = extractor.get("precision", "auto")
    attrs = {
        "extractor": network,
        "weights_random": weights == RANDOM_WEIGHTS,
        # `auto` is resolved by the job's machine, which this planning process may not be (a
        # cluster's login node): a file of either precision is current here, and the shard job
        # re-checks each video it extracts against the precision it resolved.
        **({} if precision == "auto" else {"precision": precision}),
        "segment_length": segment_length,
        # the attribute is absent for consecutive windows
        "segment_stride": None if segment_stride == segment_length else segment_stride,
        "frame_step": None if frame_step == 1 else frame_step,  # absent for every frame
    }
    if weights == RANDOM_WEIGHTS:
        attrs["weights_sha256"] = RANDOM_WEIGHTS
    newer_than = () if is_marker(weights) else (Path(weights),)
    crops = crop_count(extractor.get("crops", "centre"))
    return Expected(attrs, extractor.get("dtype", "float16"), segments, newer_than, crops=crops)


def video_states(
    partition: Partition, feature_file: Callable[[str], str], expected: Callable[[int], Expected]
) -> list[list[str]]:
    """Per shard, the state (DONE, BAD, TODO) of each of its videos; `expected(segments)` is
    what a current feature file of a video of that many segments holds."""
    return [
        [video_state(feature_file(row["video"]), row["source"], expected(int(row["segments"]))).state for row in rows]
        for rows in partition
    ]


def todo_shards(states: Sequence[Sequence[str]]) -> list[int]:
    """Shard numbers with a video that has neither a current feature file nor a bad-video marker."""
    return [shard for shard, shard_states in enumerate(states) if TODO in shard_states]


def done_feature_files(
    partition: Partition, states: Sequence[Sequence[str]], feature_file: Callable[[str], str]
) -> list[str]:
    """Feature files of the videos that are done, in index order (bad videos have none)."""
    return [
        feature_file(row["video"])
        for rows, shard_states in zip(partition, states, strict=True)
        for row, state in zip(rows, shard_states, strict=True)
        if state == DONE
    ]


def clear_stale_manifest(manifest: Path, planning_started_ns: int, log: str) -> None:
    """A manifest says its shard is done. One older than this planning process whose shard has
    work left (a feature file deleted, settings changed) is stale: removed, so the shard runs
    again. One written since is a shard job that left work undone: an error naming its log."""
    if not manifest.exists():
        return
    if manifest.stat().st_mtime_ns >= planning_started_ns:
        raise GclvadError(
            f"shard job {manifest} finished, but some of its videos still have no current feature file; "
            f"see its log, {log}"
        )
    manifest.unlink()


def extraction_gpus(device: str, nvidia_smi_found: bool) -> int:
    """GPUs an extraction job asks for, so that cluster profiles request one."""
    if device.startswith("cuda"):
        return 1
    return int(device == "auto" and nvidia_smi_found)


def plan_summary(name: str, partition: Partition, states: Sequence[Sequence[str]]) -> str:
    """One line telling what extraction of `name` (dataset/extractor) will do, for `snakemake -n`,
    whose job list cannot show the shard jobs of a checkpoint that has not run."""
    sizes = ", ".join(str(len(rows)) for rows in partition)
    done = sum(state == DONE for shard_states in states for state in shard_states)
    todo = len(todo_shards(states))
    shards, jobs = _counted(len(partition), "shard"), _counted(todo, "shard job")
    return f"extraction of {name}: {shards} ({sizes} videos), {done} videos already done, {jobs} to run"


def _counted(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"
