"""Turning a video into its feature file: decode segments, batch them, run the extractor, write.

Decoding runs in a background thread that fills a small bounded queue while the network
computes, so the (usually slower) network never waits for frames and memory holds only a few
segments, however long the video. The feature file appears only when complete, so a killed
run leaves nothing that a resumed run would take for finished.

Every forward pass holds exactly `batch_size` clips: a short last batch is filled up with
copies of its last clip, whose rows are dropped. On CPU (oneDNN) and GPU (cuDNN) the kernels
chosen, and so the rounding, depend on the batch size but not on what the other clips are, so
a segment's features then depend only on the segment, never on which clips shared its batch
(`gclvad.extract.shards` batches clips of several videos together and writes the same bits).
"""

from __future__ import annotations

import functools
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import av
import numpy as np
import torch

from gclvad.decode.crops import crop_count
from gclvad.decode.video import iter_segments
from gclvad.errors import BadVideoError, GclvadError
from gclvad.extract.facts import EXTRACTOR_FACTS, segment_length_problem
from gclvad.extract.networks.base import Extractor
from gclvad.features.files import write_video_features

log = logging.getLogger(__name__)

_END = object()


class _DecodeFailed:
    def __init__(self, error: BaseException):
        self.error = error


class BackgroundIterator:
    """Runs an iterator in a daemon thread, handing its items over through a bounded queue.

    Errors raised by the iterator are re-raised in the consumer; leaving the `with` block early
    (an error in the network, Ctrl-C) stops the producer at its next item.
    """

    def __init__(self, make_iterator: Callable[[], Iterable], max_queued: int, torch_threads: int | None = 1):
        self._make_iterator = make_iterator
        self._torch_threads = torch_threads
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, max_queued))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._produce, name="gclvad-decode", daemon=True)

    def __enter__(self) -> BackgroundIterator:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join()

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self) -> None:
        if self._torch_threads is not None:
            # The producer's tensor work (normalising frames) is small. Left at the default, it
            # starts a second OpenMP team whose threads spin-wait between operations and take
            # the cores from the network's convolutions: on 2 cores that cost a third of the
            # end-to-end speed (benchmarks/extract.py). The setting is per thread.
            torch.set_num_threads(self._torch_threads)
        try:
            for item in self._make_iterator():
                if not self._put(item):
                    return
            self._put(_END)
        except BaseException as error:  # handed to the consumer, which re-raises it
            self._put(_DecodeFailed(error))

    def __iter__(self) -> Iterator:
        while True:
            item = self._queue.get()
            if item is _END:
                return
            if isinstance(item, _DecodeFailed):
                raise item.error
            yield item


def full_batch(clips: list[torch.Tensor], batch_size: int) -> list[torch.Tensor]:
    """`clips` filled up to `batch_size` with copies of the last one (see the module docstring)."""
    return clips + [clips[-1]] * (batch_size - len(clips))


def run_batch(extractor: Extractor, clips: list[torch.Tensor], batch_size: int) -> np.ndarray:
    """Features (len(clips), dim) of up to `batch_size` clips, from one forward pass of exactly `batch_size`."""
    return extractor.extract(torch.stack(full_batch(clips, batch_size)))[: len(clips)].numpy()


def crop_clips(clip: torch.Tensor) -> list[torch.Tensor]:
    """A segment's network inputs: its one clip (3, T, H, W), or its C crops' (C, 3, T, H, W)."""
    return [clip] if clip.ndim == 4 else list(clip)


def extraction_attrs(
    extractor: Extractor,
    segment_length: int,
    frames: int,
    fps: float,
    padded_tail: int,
    extra: dict | None = None,
    stride: int | None = None,
    frame_step: int = 1,
) -> dict:
    """The attributes of a per-video feature file: what produced the features and what they cover.

    segment_stride is recorded only for overlapping windows (stride < segment_length) and
    frame_step only for sampled frames (above 1), so that files of the paper's consecutive
    segments of every frame keep the attributes they always had."""
    windows = {"segment_stride": int(stride)} if stride and stride != segment_length else {}
    if frame_step != 1:
        windows["frame_step"] = int(frame_step)
    return {
        "extractor": extractor.name,
        "weights_sha256": extractor.weights_sha256,
        "weights_random": bool(extractor.weights_random),
        "precision": extractor.precision,
        "segment_length": int(segment_length),
        "frames": int(frames),
        "fps": float(fps),
        "preprocessing": extractor.preprocessing.describe(),
        "padded_tail": int(padded_tail),
        **windows,
        **(extra or {}),
    }


def check_segment_length(extractor: Extractor, segment_length: int) -> None:
    required = getattr(extractor, "required_frames", None)
    if segment_length < 1:
        raise GclvadError(f"segment_length must be at least 1, got {segment_length}")
    if required is not None and segment_length != required:
        raise GclvadError(
            f"extractor {extractor.name!r} only accepts {required}-frame segments, "
            f"but segment_length is {segment_length}"
        )
    # The shortest segment each network takes (the table the workflow checks before any job runs).
    problem = segment_length_problem(extractor.name, segment_length) if extractor.name in EXTRACTOR_FACTS else ""
    if problem:
        raise GclvadError(problem)


def compute_features(
    extractor: Extractor,
    source: Path,
    segment_length: int = 16,
    batch_size: int = 4,
    stride: int | None = None,
    frame_step: int = 1,
) -> tuple[np.ndarray, int, int]:
    """(features (S, dim) float32, or (S, C, dim) for C crops a segment; real frames; padded
    frames of the last segment's span) of a video, in windows every `stride` frames (default:
    consecutive segments) of every `frame_step`-th frame."""
    rows: list[np.ndarray] = []
    last, pending = None, []
    if batch_size < 1:
        raise GclvadError(f"batch_size must be at least 1, got {batch_size}")
    decoding = functools.partial(iter_segments, source, extractor.preprocessing, segment_length, stride, frame_step)
    with BackgroundIterator(decoding, max_queued=2 * batch_size) as segments:
        for last in segments:
            for clip in crop_clips(last.clip):  # every crop is one clip of a batch
                pending.append(clip)
                if len(pending) == batch_size:
                    rows.append(run_batch(extractor, pending, batch_size))
                    pending = []
    if pending:
        rows.append(run_batch(extractor, pending, batch_size))
    if not rows:
        raise BadVideoError(source, "no frames could be decoded, so there are no segments to extract")
    features = np.concatenate(rows)
    crops = crop_count(extractor.preprocessing.crops)
    if crops > 1:
        features = features.reshape(-1, crops, features.shape[-1])
    return features, last.first_frame + last.real_frames, segment_length * frame_step - last.real_frames


def header_fps(source: Path) -> float:
    """Frame rate the container declares (0.0 for a frame folder), read without decoding.

    `gclvad.decode.video.probe_video` gives the same number but decodes the whole video, which would
    double the decoding work of an extraction.
    """
    if source.is_dir():
        return 0.0
    try:
        with av.open(str(source)) as container:
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate
    except (av.FFmpegError, IndexError) as error:
        raise BadVideoError(source, f"cannot read the frame rate from the container header ({error})") from error
    return float(rate) if rate else 0.0


def extract_video(
    extractor: Extractor,
    source: str | Path,
    out_path: str | Path,
    segment_length: int = 16,
    batch_size: int = 4,
    dtype: str = "float16",
    fps: float | None = None,
    extra_attrs: dict | None = None,
    stride: int | None = None,
    frame_step: int = 1,
) -> dict:
    """Write the features of `source` to `out_path`; returns the attributes written plus
    "segments" (rows written) and "seconds" (wall time). stride: windows every `stride`
    frames (default: consecutive segments); frame_step: every frame_step-th frame feeds them.

    `fps` defaults to the container's declared frame rate; `extra_attrs` are stored beside the
    extraction's own attributes (e.g. where the source was). The file appears only when complete
    (`write_video_features` writes atomically), so an interrupted run never leaves a truncated
    feature file that a resumed run would skip.
    """
    source, out_path = Path(source), Path(out_path)
    check_segment_length(extractor, segment_length)
    started = time.perf_counter()
    features, frames, padded_tail = compute_features(extractor, source, segment_length, batch_size, stride, frame_step)
    if fps is None:
        fps = header_fps(source)
    attrs = extraction_attrs(extractor, segment_length, frames, fps, padded_tail, extra_attrs, stride, frame_step)
    write_video_features(out_path, features, attrs, dtype)
    seconds = time.perf_counter() - started
    log.info(
        "%s: %d segments (%d frames) in %.1f s, %.1f clips/s",
        source,
        len(features),
        frames,
        seconds,
        len(features) / max(seconds, 1e-9),
    )
    return {**attrs, "segments": len(features), "seconds": seconds}
