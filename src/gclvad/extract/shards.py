"""Extraction of many videos in one process: one network, parallel decoders, per-video files.

A shard is a list of jobs (video, source, per-video output file). Videos whose file is
already complete and current (`gclvad.extract.state`) are kept; the others go to K decoder
processes (`gclvad.extract.decoders`), whose segments the main process gathers into batches, taking
clips of several videos into one batch, and runs through a network built once. A video's
file is written (atomically, with the attributes `gclvad.extract.one_video.extract_video` writes)
as soon as its last segment has been through the network, so a killed shard loses at most
the videos in flight, and running it again does only what is left.

Batches always hold exactly `batch_size` clips (the last one of the shard is filled up), and a
clip's features do not depend on the other clips of its batch, so every video gets bit for
bit the features `extract_video` gives it, whatever shared its batches. Batches are gathered
in a background thread, into pinned memory when the network is on a GPU, while the network
runs on the previous one.

A video that turns out bad while decoding is reported and, with on_bad_video "skip", left
with a bad-video marker while the others go on; with "stop" the shard stops.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from gclvad.decode.crops import crop_count
from gclvad.decode.inputs import ON_BAD_VIDEO
from gclvad.device import resolve_device
from gclvad.errors import BadVideoError, GclvadError
from gclvad.extract.decoders import DecoderPool, DecodeTask, Failed, Segment
from gclvad.extract.networks.base import Extractor
from gclvad.extract.networks.registry import build_extractor
from gclvad.extract.one_video import BackgroundIterator, check_segment_length, crop_clips, extraction_attrs, full_batch
from gclvad.extract.state import BAD, DONE, Expected, stale_temporaries, video_state, write_bad_marker
from gclvad.features.files import write_video_features
from gclvad.weights import is_marker

log = logging.getLogger(__name__)

_STAGED_BATCHES = 2  # batches gathered ahead of the network
PROGRESS_LOG_S = 30.0


@dataclass(frozen=True)
class VideoJob:
    """One video of a shard. segments: how many it has, when known (the segment index
    counts them), checked against a kept file. extra_attrs: stored in its file beside the
    extraction's own attributes, and required of a kept file."""

    video: str
    source: Path
    out_path: Path
    segments: int | None = None
    extra_attrs: Mapping[str, object] = field(default_factory=dict)


@dataclass
class ShardReport:
    """What a shard did: videos written now, kept from before, bad (video -> problem); clips
    through the network, wall and network seconds."""

    written: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    bad: dict[str, str] = field(default_factory=dict)
    clips: int = 0
    seconds: float = 0.0
    network_seconds: float = 0.0

    def manifest(self, jobs: Sequence[VideoJob]) -> dict:
        """The shard's outcome as the workflow records it: the same whether or not the shard
        was interrupted and resumed (no timings, no kept/written distinction)."""
        return {
            "features": {job.video: str(job.out_path) for job in jobs if job.video not in self.bad},
            "bad": dict(sorted(self.bad.items())),
        }


@dataclass
class _Batch:
    clips: torch.Tensor | None  # (batch_size, 3, T, H, W), or None when only events are left
    owners: list[tuple[int, int, int]]  # (task, segment index, crop) of each real clip
    events: list  # Finished / Failed messages received while the batch was gathered


def expected_file(
    extractor: Extractor,
    job: VideoJob,
    segment_length: int,
    dtype: str,
    weights_file: Path | None,
    stride=None,
    frame_step: int = 1,
) -> Expected:
    """What a kept feature file of `job` must hold: written by this network, weights and
    preprocessing, for this segment length, stride and storage type, and not older than its inputs."""
    attrs = extraction_attrs(extractor, segment_length, 0, 0.0, 0, dict(job.extra_attrs), stride, frame_step)
    for key in ("frames", "fps", "padded_tail"):  # what the video holds, not how it was extracted
        del attrs[key]
    attrs.setdefault("segment_stride", None)  # consecutive segments: no stride recorded
    attrs.setdefault("frame_step", None)  # every frame: no step recorded
    newer_than = (weights_file,) if weights_file is not None else ()
    crops = crop_count(extractor.preprocessing.crops)
    return Expected(attrs, dtype, job.segments, newer_than, read_all=True, crops=crops)


def _stage(clips: list[torch.Tensor], batch_size: int, pin_memory: bool) -> torch.Tensor:
    """One network input of exactly `batch_size` clips; in page-locked memory for a GPU, so the
    copy to the device does not wait for the CPU."""
    full = full_batch(clips, batch_size)
    staged = torch.empty((batch_size, *clips[0].shape), dtype=clips[0].dtype, pin_memory=pin_memory)
    return torch.stack(full, out=staged)


def gather_batches(messages: Iterable, batch_size: int, pin_memory: bool = False) -> Iterator[_Batch]:
    """Decoder messages -> batches of segments (of any videos) with the events received meanwhile."""
    clips: list[torch.Tensor] = []
    owners: list[tuple[int, int, int]] = []
    events: list = []
    for message in messages:
        if isinstance(message, Segment):
            for crop, clip in enumerate(crop_clips(message.clip)):  # every crop is one clip of a batch
                clips.append(clip)
                owners.append((message.task, message.index, crop))
                if len(clips) == batch_size:
                    yield _Batch(_stage(clips, batch_size, pin_memory), owners, events)
                    clips, owners, events = [], [], []
        else:
            events.append(message)
    if clips or events:
        yield _Batch(_stage(clips, batch_size, pin_memory) if clips else None, owners, events)


class _Writer:
    """Collects each video's rows and writes its file when its last row is in."""

    def __init__(
        self, extractor, jobs: Sequence[VideoJob], segment_length, dtype, on_bad_video, report, bar, stride, frame_step
    ):
        self.extractor, self.jobs, self.segment_length, self.dtype = extractor, jobs, segment_length, dtype
        self.stride, self.frame_step = stride, frame_step
        self.on_bad_video, self.report, self.bar = on_bad_video, report, bar
        self.rows: dict[int, list[np.ndarray]] = {}

    def add(self, owners: list[tuple[int, int, int]], features: np.ndarray) -> None:
        """Rows in arrival order: a video's segments in order, each segment's crops in order."""
        for (task, index, crop), row in zip(owners, features, strict=True):
            rows = self.rows.setdefault(task, [])
            if crop == 0:
                if index != len(rows):
                    raise RuntimeError(f"{self.jobs[task].source}: segment {index} arrived after {len(rows)} others")
                rows.append([])
            rows[index].append(row)

    def finish(self, event) -> None:
        job = self.jobs[event.task]
        rows = self.rows.pop(event.task, [])
        if isinstance(event, Failed):
            self._failed(job, event)
        else:
            if len(rows) != event.segments:
                raise RuntimeError(f"{job.source}: {len(rows)} rows for {event.segments} segments")
            attrs = extraction_attrs(
                self.extractor, self.segment_length, event.frames, event.fps, event.padded_tail,
                dict(job.extra_attrs), self.stride, self.frame_step,
            )  # fmt: skip
            # (S, d) for one crop a segment, (S, C, d) for several
            features = np.stack([crops[0] if len(crops) == 1 else np.stack(crops) for crops in rows])
            write_video_features(job.out_path, features, attrs, self.dtype)
            self.report.written.append(job.video)
            log.info("%s: %d segments (%d frames) -> %s", job.source, event.segments, event.frames, job.out_path)
        self.bar.update(1)

    def _failed(self, job: VideoJob, event: Failed) -> None:
        if not event.bad_video:
            raise RuntimeError(f"decoding {job.source} failed unexpectedly:\n{event.problem}")
        problem = event.problem.removeprefix(f"{job.source}: ")
        if self.on_bad_video == "stop":
            raise BadVideoError(
                job.source,
                f"{problem} (to extract the other videos, skip such ones: config `on_bad_video: skip`, or "
                "`gclvad extract --on-bad-video skip`)",
            )
        write_bad_marker(job.out_path, job.source, problem)
        self.report.bad[job.video] = problem
        log.warning("%s: skipped, %s", job.source, problem)


class _LogLines:
    """A file for tqdm that logs each meter it draws as one line (for job logs, not terminals)."""

    def write(self, text: str) -> None:
        line = text.strip("\r\n ")
        if line:
            log.info("%s", line)

    def flush(self) -> None:
        pass


def _progress(total: int, done: int, name: str, show: bool | None):
    """tqdm over videos: a live bar on a terminal (or with show=True); without one (show=None,
    e.g. a cluster job's log), one log line every PROGRESS_LOG_S seconds and one at the end."""
    options = dict(total=total, initial=done, desc=f"extract {name}", unit="video")
    if show or (show is None and sys.stderr.isatty()):
        return tqdm(file=sys.stderr, mininterval=1.0, **options)
    return tqdm(file=_LogLines(), mininterval=PROGRESS_LOG_S, ascii=True, ncols=100, disable=show is False, **options)


def extract_shard(
    extractor: Extractor,
    jobs: Sequence[VideoJob],
    pool: DecoderPool,
    *,
    segment_length: int = 16,
    batch_size: int = 4,
    dtype: str = "float16",
    on_bad_video: str = "stop",
    weights_file: Path | None = None,
    progress: bool | None = None,
    stride: int | None = None,
    frame_step: int = 1,
) -> ShardReport:
    """Write the per-video feature file of every job that has no complete, current one
    (segments in windows every `stride` frames, default consecutive, of every
    `frame_step`-th frame, default all).

    `pool` must be started before the extractor was built (see gclvad.extract.decoders). Progress:
    one tqdm line (videos done / total, clips/s, ETA): see `_progress`; False shows none.
    """
    check_segment_length(extractor, segment_length)
    if batch_size < 1:
        raise GclvadError(f"batch_size must be at least 1, got {batch_size}")
    if on_bad_video not in ON_BAD_VIDEO:
        raise GclvadError(f"on_bad_video must be one of {', '.join(ON_BAD_VIDEO)}; got {on_bad_video!r}")
    started = time.perf_counter()
    report = ShardReport()
    tasks = _tasks_to_do(extractor, jobs, segment_length, dtype, weights_file, report, stride, frame_step)
    with _progress(len(jobs), len(jobs) - len(tasks), extractor.name, progress) as bar:
        writer = _Writer(extractor, jobs, segment_length, dtype, on_bad_video, report, bar, stride, frame_step)
        _run(extractor, jobs, tasks, pool, writer, batch_size, report, bar)
    report.seconds = time.perf_counter() - started
    log.info(
        "%d videos: %d written, %d kept, %d bad; %d clips in %.1f s (%.1f clips/s), network %.1f s",
        len(jobs), len(report.written), len(report.kept), len(report.bad), report.clips, report.seconds,
        report.clips / max(report.seconds, 1e-9), report.network_seconds,
    )  # fmt: skip
    return report


def _tasks_to_do(
    extractor, jobs, segment_length, dtype, weights_file, report: ShardReport, stride, frame_step
) -> list[DecodeTask]:
    tasks = []
    for index, job in enumerate(jobs):
        for leftover in stale_temporaries(job.out_path):  # of a writer killed mid-write
            leftover.unlink(missing_ok=True)
        state = video_state(
            job.out_path,
            job.source,
            expected_file(extractor, job, segment_length, dtype, weights_file, stride, frame_step),
        )
        if state.state == DONE:
            report.kept.append(job.video)
        elif state.state == BAD:
            report.bad[job.video] = state.reason
            log.warning("%s: skipped, known to be bad: %s", job.source, state.reason)
        else:
            if job.out_path.exists():
                log.info("%s: extracting again, %s", job.source, state.reason)
            tasks.append(DecodeTask(index, job.source, extractor.preprocessing, segment_length, stride, frame_step))
    return tasks


def _run(extractor, jobs, tasks, pool, writer: _Writer, batch_size: int, report: ShardReport, bar) -> None:
    if not tasks:
        return
    pin_memory = extractor.device.type == "cuda"
    cancelled = threading.Event()
    clock = time.perf_counter()

    def batches():
        return gather_batches(pool.decode(tasks, cancelled), batch_size, pin_memory)

    with logging_redirect_tqdm(), BackgroundIterator(batches, max_queued=_STAGED_BATCHES) as staged:
        try:
            for batch in staged:
                if batch.clips is not None:
                    network_started = time.perf_counter()
                    features = extractor.extract(batch.clips)[: len(batch.owners)].numpy()
                    report.network_seconds += time.perf_counter() - network_started
                    writer.add(batch.owners, features)
                    report.clips += len(batch.owners)
                for event in batch.events:
                    writer.finish(event)
                bar.set_postfix_str(
                    f"{report.clips / max(time.perf_counter() - clock, 1e-9):.1f} clips/s", refresh=False
                )
        finally:
            cancelled.set()
    left = [jobs[task].video for task in writer.rows]
    if left:
        raise RuntimeError(f"videos without a finish message from their decoder: {', '.join(left)}")


def decoder_count(decoders: int | str, device: torch.device, threads: int | None) -> int:
    """Decoder processes for `decoders` ("auto" or a number). auto: on a GPU, one per thread of
    the job (the network leaves the CPU to them); on the CPU one, since the network takes the
    cores and decodes ~100 times slower than one decoder feeds it (benchmarks/shard_extract.py).
    On 2 cores, I3D fp32 on 4 small videos (shard_extract.py --sections split, 2026-12-02, load
    5-6): 1 decoder + 2 torch threads (this default with the job's threads) 1.60 clips/s, 2 + 1
    1.57, 1 + 1 1.27, 2 + 2 (oversubscribed) 1.12."""
    if decoders != "auto":
        if int(decoders) < 1:
            raise GclvadError(f"decoders must be 'auto' or at least 1, got {decoders!r}")
        return int(decoders)
    return max(1, threads or os.cpu_count() or 1) if device.type == "cuda" else 1


def extract_videos(
    jobs: Sequence[VideoJob],
    *,
    extractor: str,
    weights: str | Path,
    precision: str = "auto",
    device: str = "auto",
    segment_length: int = 16,
    batch_size: int = 4,
    dtype: str = "float16",
    decoders: int | str = "auto",
    threads: int | None = None,
    on_bad_video: str = "stop",
    progress: bool | None = None,
    crops: str = "centre",
    stride: int | None = None,
    frame_step: int = 1,
) -> ShardReport:
    """`extract_shard` with everything set up: the device resolved (asking for CUDA without it
    fails here, before any work), torch on `threads` threads on the CPU, the decoder processes
    started and then the extractor built, once."""
    resolved = resolve_device(device)
    workers = decoder_count(decoders, resolved, threads)
    if resolved.type == "cpu" and threads:
        torch.set_num_threads(int(threads))
    weights_file = None if is_marker(weights) else Path(weights)
    with DecoderPool(workers, max_queued=2 * batch_size + workers) as pool:
        network = build_extractor(extractor, weights, str(resolved), precision, crops)
        return extract_shard(
            network, jobs, pool, segment_length=segment_length, batch_size=batch_size, dtype=dtype,
            on_bad_video=on_bad_video, weights_file=weights_file, progress=progress, stride=stride,
            frame_step=frame_step,
        )  # fmt: skip
