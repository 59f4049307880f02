"""Decoder processes: videos in, ready network input (normalised segments) out.

K worker processes each take the next video from a task queue, decode and preprocess it with
`gclvad.decode.video.iter_segments` and put its segments, in order, on one bounded result queue,
followed by a message that says the video is finished (or why it failed). Segments travel as
torch tensors in shared memory, so the main process receives them without copying them
through a pipe. Memory holds at most the queue's segments plus one in the making per worker,
whatever the videos' lengths.

The workers are forked when the pool starts: start it before the network is built, so that
they inherit neither its weights nor a CUDA context. Each worker runs torch on one thread, dies
with the main process (PR_SET_PDEATHSIG on Linux; otherwise it notices its parent is gone at
its next segment), and ignores Ctrl-C, which the main process handles by stopping the pool.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import queue
import signal
import threading
import traceback
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.multiprocessing as mp

from gclvad.decode.preprocessing import Preprocessing
from gclvad.decode.video import iter_segments
from gclvad.errors import BadVideoError, GclvadError
from gclvad.extract.one_video import header_fps

_POLL_S = 0.2  # how often a waiting process checks whether it should give up
_JOIN_S = 5.0
_PR_SET_PDEATHSIG = 1
_M_MMAP_THRESHOLD = -3


@dataclass(frozen=True)
class DecodeTask:
    index: int  # the caller's number for the video
    source: Path
    preprocessing: Preprocessing
    segment_length: int
    stride: int | None = None  # windows every `stride` frames (None: consecutive segments)
    frame_step: int = 1  # every frame_step-th frame feeds a segment


@dataclass
class Segment:
    task: int
    index: int  # 0-based position of the segment in its video
    clip: torch.Tensor


@dataclass
class Finished:
    task: int
    segments: int
    frames: int
    padded_tail: int
    fps: float


@dataclass
class Failed:
    task: int
    problem: str
    bad_video: bool  # BadVideoError (the video's fault); else an unexpected error, with its traceback


@dataclass
class _Started:
    task: int
    worker: int


class _Stopped(Exception):
    """The pool is closing or the main process is gone: the worker gives up its video."""


class DecoderPool:
    """K decoder processes; `decode(tasks)` yields their Segment, Finished and Failed messages.

    max_queued bounds the segments waiting in the result queue. Use as a context manager;
    leaving it stops the workers.
    """

    def __init__(self, workers: int, max_queued: int):
        if workers < 1:
            raise GclvadError(f"decoders must be at least 1, got {workers}")
        context = mp.get_context("fork")
        self.workers = workers
        self._tasks = context.Queue()
        self._results = context.Queue(maxsize=max(1, max_queued))
        self._stop = context.Event()
        self._processes = [
            context.Process(target=_worker_main, args=(i, self._tasks, self._results, self._stop, os.getpid()),
                            name=f"gclvad-decoder-{i}", daemon=True)
            for i in range(workers)
        ]  # fmt: skip

    def __enter__(self) -> DecoderPool:
        for process in self._processes:
            process.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        for _ in self._processes:
            self._tasks.put(None)
        for process in self._processes:
            process.join(_JOIN_S)
            if process.is_alive():
                process.kill()
                process.join()
        self._results.cancel_join_thread()
        self._tasks.cancel_join_thread()

    def decode(self, tasks: Sequence[DecodeTask], cancelled: threading.Event | None = None) -> Iterator:
        """Messages about `tasks`, in arrival order, until each task has Finished or Failed.

        Segments of one video arrive in order; videos interleave. A worker that dies (killed,
        crashed in FFmpeg) raises GclvadError naming the video it was decoding. Setting
        `cancelled` ends the iteration at the next poll.
        """
        for task in tasks:
            self._tasks.put(task)
        sources = {task.index: task.source for task in tasks}
        current: dict[int, int] = {}  # worker -> task it decodes
        open_tasks = set(sources)
        while open_tasks:
            if cancelled is not None and cancelled.is_set():
                return
            try:
                message = self._results.get(timeout=_POLL_S)
            except queue.Empty:
                self._check_workers(current, sources)
                continue
            if isinstance(message, _Started):
                current[message.worker] = message.task
                continue
            if isinstance(message, (Finished, Failed)):
                open_tasks.discard(message.task)
            yield message

    def _check_workers(self, current: dict[int, int], sources: dict[int, Path]) -> None:
        for worker, process in enumerate(self._processes):
            if not process.is_alive():
                task = current.get(worker)
                where = f" while decoding {sources[task]}" if task is not None else ""
                raise GclvadError(
                    f"decoder process {process.name} ended unexpectedly (exit code {process.exitcode}){where}; "
                    "if the machine ran out of memory, use fewer decoders"
                )


def _return_freed_memory() -> None:
    """Serve every allocation of 1 MiB or more from its own mapping, given back when freed.

    glibc raises its mmap threshold to the largest block freed so far (up to 32 MiB), after which
    a decoder's frames and segments (several MiB each, every segment) come from the heap and its
    per-thread arenas (FFmpeg decodes on several threads), whose freed holes stay resident:
    measured at 224 px, a decoder grew from 0.3 to 1.0-1.5 GiB over a few dozen videos before
    levelling off; with the threshold fixed it stays at 0.4 GiB, decoding 10-25 % slower (the
    fresh pages of each segment), which more decoders make up for where decoding is the limit.
    """
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to set
        ctypes.CDLL("libc.so.6").mallopt(_M_MMAP_THRESHOLD, 1 << 20)


def _die_with_parent() -> None:
    with contextlib.suppress(OSError, AttributeError):  # not Linux: _put notices the parent's end instead
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _worker_main(worker: int, tasks, results, stop, parent: int) -> None:
    _die_with_parent()
    _return_freed_memory()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Normalising a segment is a few element-wise operations: one thread does them, and more
    # would take cores from the other decoders and the network (benchmarks/extract.py).
    torch.set_num_threads(1)
    try:
        while not stop.is_set():
            task = tasks.get()
            if task is None:
                break
            _decode(worker, task, results, stop, parent)
        # Stay until the pool closes: the main process fetches each segment's shared memory
        # from this process when it unpickles the segment, so it must still be here.
        while not stop.wait(_POLL_S):
            if os.getppid() != parent:
                break
    except _Stopped:
        pass
    finally:
        results.cancel_join_thread()  # never block at exit on segments nobody will read


def _put(results, message, stop, parent: int) -> None:
    while True:
        if stop.is_set() or os.getppid() != parent:
            raise _Stopped
        try:
            results.put(message, timeout=_POLL_S)
            return
        except queue.Full:
            continue


def _decode(worker: int, task: DecodeTask, results, stop, parent: int) -> None:
    _put(results, _Started(task.index, worker), stop, parent)
    segments = frames = 0
    span = task.segment_length * task.frame_step
    last_real = span
    try:
        for segment in iter_segments(
            task.source, task.preprocessing, task.segment_length, task.stride, task.frame_step
        ):
            _put(results, Segment(task.index, segments, segment.clip), stop, parent)
            segments += 1
            frames, last_real = segment.first_frame + segment.real_frames, segment.real_frames
        fps = header_fps(task.source)
    except _Stopped:
        raise
    except BadVideoError as error:
        _put(results, Failed(task.index, str(error), bad_video=True), stop, parent)
        return
    except Exception:  # a bug, not the video's fault: the main process stops with this traceback
        _put(results, Failed(task.index, traceback.format_exc(), bad_video=False), stop, parent)
        return
    _put(results, Finished(task.index, segments, frames, span - last_real, fps), stop, parent)
