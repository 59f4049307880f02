"""The workflow's stages from videos to features: generate, index, extract, merge, link.

Like every module of gclvad.stages, one function per stage, what a Snakemake rule calls:
each reads its inputs, calls one concept module and writes its outputs. Parameters are
keyword-only and named like the rule's inputs, outputs and params; the scripts in
workflow/scripts/ do nothing but pass them on. Training is gclvad.stages.training; the
stages after it gclvad.stages.results and gclvad.stages.figures; what they read of a
dataset's index and features is gclvad.stages.data.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

from gclvad.atomic import write_json_atomic
from gclvad.datasets.readers import generate_synthetic, load_dataset
from gclvad.datasets.segment_index import (
    build_segment_index,
    index_summary,
    read_segment_index,
    usable_videos,
    write_segment_index,
)
from gclvad.features.files import merge_video_features
from gclvad.features.published import link_features
from gclvad.weights import sha256_file

# Extraction (torch) is imported inside the stage that runs it, so that the jobs that only
# generate, index, merge or link start without loading it.

log = logging.getLogger(__name__)


# ---------------------------------------------------------------- videos to features


def generate_demo_dataset(*, manifest: str | Path, generate: Mapping) -> Path:
    """A synthetic dataset (generate["kind"]: a kind of gclvad.datasets.readers.SYNTHETIC_KINDS) beside
    `manifest` (videos.csv, annotations.csv)."""
    written = generate_synthetic(Path(manifest).parent, **generate)
    log.info("synthetic dataset written: %s", written)
    return written


def index_dataset(
    *,
    spec: Mapping,
    segment_length: int,
    on_bad_video: str,
    out_path: str | Path,
    segment_stride: int | None = None,
    frame_step: int = 1,
) -> None:
    """Read a dataset, decode every video once and write its segment index (TSV)."""
    table = build_segment_index(
        load_dataset(dict(spec)), segment_length, on_bad_video, stride=segment_stride, frame_step=frame_step
    )
    write_segment_index(table, out_path)
    log.info("\n".join(index_summary(table)))


def extract_video_features(
    *,
    videos: Sequence[Mapping],
    manifest_path: str | Path,
    extractor: Mapping,
    segment_length: int,
    device: str,
    decoders: int | str = "auto",
    threads: int | None = None,
    on_bad_video: str = "stop",
    stride: int | None = None,
    frame_step: int = 1,
) -> None:
    """Extract a shard of videos ({video, source, out_path, segments} each) in this one process:
    parallel decoders, one network, each per-video feature file written as soon as its video is
    done (videos whose file is already current are kept); then the shard's manifest."""
    from gclvad.extract.shards import VideoJob, extract_videos

    jobs = [
        VideoJob(video["video"], Path(video["source"]), Path(video["out_path"]), video.get("segments"))
        for video in videos
    ]
    report = extract_videos(
        jobs,
        extractor=extractor["name"],
        weights=extractor["weights"],
        precision=extractor.get("precision", "auto"),
        device=device,
        segment_length=segment_length,
        batch_size=extractor.get("batch_size", 4),
        dtype=extractor.get("dtype", "float16"),
        decoders=decoders,
        threads=threads,
        on_bad_video=on_bad_video,
        crops=extractor.get("crops", "centre"),
        stride=stride,
        frame_step=frame_step,
    )
    write_json_atomic(manifest_path, report.manifest(jobs))


def merge_features(*, parts: Sequence[str | Path], out_path: str | Path) -> None:
    """Merge per-video feature files (named <video>.h5) into one file per dataset."""
    merge_video_features({Path(p).stem: Path(p) for p in parts}, Path(out_path))


def link_published_features(*, spec: Mapping, index_path: str | Path, extractor: str, out_path: str | Path) -> None:
    """The merged feature file of a `features` dataset: its usable videos' .npy files, read in
    place (gclvad.features.published.link_features), with where they came from."""
    usable = set(usable_videos(read_segment_index(index_path)))
    parts = {video.id: video.parts for video in load_dataset(dict(spec)) if video.id in usable}
    provenance = {
        "extractor": extractor,
        "weights_sha256": "published",
        "feature_source": str(Path(spec["feature_dir"]).absolute()),
        **{f"{key}_sha256": sha256_file(spec[key]) for key in ("train_list", "test_list")},
    }
    link_features(parts, out_path, provenance, int(spec["segment_length"]))
    log.info("%d videos of published features linked from %s", len(parts), spec["feature_dir"])
