"""Segments of a live stream: the decoding thread of `gclvad watch`.

It reads the source (`gclvad.live.source`, which reconnects when it drops), resizes every frame
as the run's extractor wants (`Preprocessing.resized_shape` of that frame's own size, so a
stream that changes resolution keeps working) and centre-crops it (an extractor of several crops
a segment gets the whole resized frame, and cuts its crops as `gclvad score` does; a segment's
frames then all take the size its first frame was resized to), gathers segments of the run's
segment length (of every frame_step-th frame, the run's, as `gclvad score` takes them: a segment
spans segment_length * frame_step frames of the stream) and hands complete segments to the
scorer through a queue. A live source never waits for the scorer: when `max_queued` segments are
already waiting at a segment boundary, the next segment's frames are dropped whole (never part
of a segment) and counted. A file read without `realtime` is scored in full instead: decoding
waits. Its last incomplete segment is padded by repeating its last frame, as `gclvad score` pads
it.
"""

from __future__ import annotations

import dataclasses
import queue
import threading
from dataclasses import dataclass

import numpy as np

from gclvad.decode.video import rgb_frame
from gclvad.errors import GclvadError
from gclvad.live.source import FILE, Arrival, Break, LiveSource


@dataclass
class LiveSegment:
    """segment_length resized, centre-cropped uint8 frames (L, h, w, 3) (whole resized frames for
    an extractor of several crops) and where they come from."""

    frames: np.ndarray
    index: int
    first_frame: int
    last_frame: int
    start_s: float
    end_s: float  # stream time just after its last frame
    first_arrival: float
    last_arrival: float
    real_frames: int


@dataclass
class Counters:
    """What the decoding thread counts (read by the scorer for the status line and summary)."""

    frames: int = 0  # decoded
    segments: int = 0  # complete segments formed (scored or dropped)
    dropped_segments: int = 0  # dropped whole because the scorer was behind
    dropped_frames: int = 0
    lost_frames: int = 0  # of incomplete segments when the stream broke


class Failed:
    """An error of the decoding thread, re-raised by the scorer."""

    def __init__(self, error: BaseException):
        self.error = error


# ---------------------------------------------------------------- decoding thread


class SegmentAssembler:
    """Frames -> segments of `segment_length` frames (every `frame_step`-th one of the
    stream), resized and cropped as `preprocessing` wants."""

    def __init__(self, preprocessing, segment_length: int, frame_step: int = 1):
        from av.video.reformatter import VideoReformatter

        self.preprocessing = preprocessing
        self.segment_length, self.frame_step = segment_length, frame_step
        self.span = segment_length * frame_step  # stream frames a segment spans
        crop = preprocessing.crop
        self.crop = (crop, crop) if isinstance(crop, int) else tuple(crop)
        self.whole_frames = preprocessing.crops != "centre"  # the extractor cuts several crops itself
        self._shape = self.crop  # (h, w) of the frames kept for the segment being gathered
        self._reformatter = VideoReformatter()
        self.filled = 0  # stream frames of the segment being gathered (taken or passed over)
        self._first: Arrival | None = None  # its first frame's arrival (the picture is not kept)
        self._frames: np.ndarray | None = None
        self.dropping = False

    def add(self, arrival: Arrival) -> bool:
        """Take one frame; whether it completes a segment (then call `take`)."""
        if self.filled == 0:
            if self.whole_frames:
                self._shape = self.preprocessing.resized_shape(arrival.frame.height, arrival.frame.width)
            self._frames = None if self.dropping else np.empty((self.segment_length, *self._shape, 3), np.uint8)
            self._first = dataclasses.replace(arrival, frame=None)
        if not self.dropping and self.filled % self.frame_step == 0:  # the frames `gclvad score` takes
            self._frames[self.filled // self.frame_step] = self._cropped(arrival.frame)
        self.filled += 1
        self._last = dataclasses.replace(arrival, frame=None)
        return self.filled == self.span

    def _cropped(self, frame) -> np.ndarray:
        if self.whole_frames:
            return rgb_frame(self._reformatter, frame, self._shape, self.preprocessing)
        # Resized as `gclvad score` resizes, but to the size this frame's own size gives.
        height, width = self.preprocessing.resized_shape(frame.height, frame.width)
        pixels = rgb_frame(self._reformatter, frame, (height, width), self.preprocessing)
        crop_h, crop_w = self.crop
        if height < crop_h or width < crop_w:
            raise GclvadError(
                f"frames resized to {height}x{width} are smaller than the extractor's crop {crop_h}x{crop_w}"
            )
        # The crop Preprocessing.normalize takes of the whole segment, taken frame by frame.
        top, left = self.preprocessing.crop_offsets(height, width)
        return pixels[top : top + crop_h, left : left + crop_w]

    def take(self, index: int, real_frames: int | None = None) -> LiveSegment:
        """The segment just completed (or padded; frames None when dropped), and a fresh start."""
        first, last = self._first, self._last
        step = 1.0 / last.fps if last.fps > 0 else 0.0
        segment = LiveSegment(
            self._frames,
            index,
            first.index,
            last.index,
            first.time_s,
            last.time_s + step,
            first.arrived,
            last.arrived,
            real_frames or self.filled,
        )
        self.discard()
        return segment

    def padded(self, index: int) -> LiveSegment | None:
        """The incomplete segment at the end of a file, its last frame repeated (as `gclvad score` does)."""
        if self.filled == 0 or self.dropping:
            return None
        real, taken = self.filled, -(-self.filled // self.frame_step)
        self._frames[taken:] = self._frames[taken - 1]
        return self.take(index, real)

    def discard(self) -> None:
        """Forget an incomplete segment (the stream broke)."""
        self.filled, self._frames = 0, None


class Decoding:
    """The decoding thread: source -> assembler -> bounded queue (dropping whole segments when live)."""

    def __init__(
        self,
        source: LiveSource,
        assembler: SegmentAssembler,
        max_queued: int,
        ring,
        stop: threading.Event,
        wake: threading.Event | None = None,
    ):
        self.source = source
        self.assembler = assembler
        self.live = source.kind != FILE or source.settings.realtime
        self.max_queued = max(1, max_queued)
        # Live: unbounded, but segments are dropped once max_queued wait (breaks always get in);
        # a file: decoding waits while max_queued wait.
        self.queue: queue.Queue = queue.Queue(maxsize=0 if self.live else self.max_queued)
        self.ring = ring
        self.stop = stop
        # Set after every item queued: a scorer of several cameras' queues sleeps on it.
        self.wake = wake or threading.Event()
        self.counters = Counters()
        self.thread = threading.Thread(target=self._run, name=f"gclvad-watch-decode {source.source}", daemon=True)

    def _put(self, item) -> None:
        if self.live:
            self.queue.put_nowait(item)
            self.wake.set()
            return
        while not self.stop.is_set():
            try:
                self.queue.put(item, timeout=0.1)
                self.wake.set()
                return
            except queue.Full:
                continue

    def _run(self) -> None:
        try:
            for item in self.source.arrivals():
                if isinstance(item, Break):
                    self._on_break(item)
                else:
                    self._on_frame(item)
        except Exception as error:
            self._put(Failed(error))

    def _on_frame(self, arrival: Arrival) -> None:
        counters, assembler = self.counters, self.assembler
        counters.frames += 1
        if self.ring is not None:
            self.ring.append(arrival.index, arrival.time_s, arrival.frame)
        if assembler.filled == 0:  # a segment boundary: the only place a segment may be dropped
            assembler.dropping = self.live and self.queue.qsize() >= self.max_queued
        if not assembler.add(arrival):
            return
        segment = assembler.take(counters.segments)
        counters.segments += 1
        if assembler.dropping:
            counters.dropped_segments += 1
            counters.dropped_frames += assembler.span
        else:
            self._put(segment)

    def _on_break(self, item: Break) -> None:
        if item.final and self.source.kind == FILE:
            segment = self.assembler.padded(self.counters.segments)
            if segment is not None:
                self.counters.segments += 1
                self._put(segment)
        if self.assembler.dropping:
            self.counters.dropped_frames += self.assembler.filled
        else:
            self.counters.lost_frames += self.assembler.filled
        self.assembler.discard()
        self._put(item)
