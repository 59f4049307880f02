"""Event clips of a live stream: a bounded ring buffer of recent decoded frames and a writer
that encodes an event's frames, with some seconds before and after, into an .mp4.

An alert is known only once its segment is scored, a segment or more after its first frame
arrived, so the frames before it must still be at hand: the decoding thread puts every frame
into a `FrameRing`, which keeps the last `keep_s` seconds but never more than `max_bytes`
(oldest dropped first; a shorter pre-roll is then reported, memory never grows). A
`ClipWriter` takes frames from the ring as they become due: while the event is open, up to
the last scored frame; after it closed, up to `after_s` seconds past the segment that closed
it. It encodes H.264 (FFmpeg's MPEG-4 Part 2 where libx264 is missing) with the stream's own
timestamps, at the size of the clip's first frame, into a temporary file renamed into place
when the clip is complete.
"""

from __future__ import annotations

import collections
import logging
import threading
from contextlib import ExitStack
from fractions import Fraction
from pathlib import Path

import av
from av.video.reformatter import VideoReformatter

from gclvad.atomic import atomic_path

log = logging.getLogger(__name__)

_MILLISECONDS = Fraction(1, 1000)


def frame_bytes(frame: av.VideoFrame) -> int:
    return sum(plane.buffer_size for plane in frame.planes)


class FrameRing:
    """The last `keep_s` seconds of decoded frames (at most `max_bytes`), shared between the
    decoding thread (append) and the scoring thread (read)."""

    def __init__(self, keep_s: float, max_bytes: int):
        self.keep_s = float(keep_s)
        self.max_bytes = int(max_bytes)
        self._frames: collections.deque = collections.deque()  # (index, time_s, frame, bytes)
        self._bytes = 0
        self._lock = threading.Lock()
        self.capped = False  # whether max_bytes ever cut the buffer below keep_s

    def append(self, index: int, time_s: float, frame: av.VideoFrame) -> None:
        size = frame_bytes(frame)
        with self._lock:
            self._frames.append((index, time_s, frame, size))
            self._bytes += size
            while len(self._frames) > 1 and (time_s - self._frames[0][1] > self.keep_s or self._bytes > self.max_bytes):
                self.capped |= time_s - self._frames[0][1] <= self.keep_s
                self._bytes -= self._frames.popleft()[3]

    def after(self, index: int, from_s: float, until_index: int | None, until_s: float | None) -> list[tuple]:
        """(index, time_s, frame) of the frames after frame `index`, at or after `from_s`, and
        not past `until_index` / `until_s` (None: no such limit)."""
        with self._lock:
            return [
                (i, t, frame)
                for i, t, frame, _ in self._frames
                if i > index
                and t >= from_s
                and (until_index is None or i <= until_index)
                and (until_s is None or t <= until_s)
            ]

    def newest_time(self) -> float | None:
        with self._lock:
            return self._frames[-1][1] if self._frames else None

    def __len__(self) -> int:
        return len(self._frames)

    @property
    def bytes(self) -> int:
        return self._bytes


def clip_codec() -> str:
    return "libx264" if "libx264" in av.codecs_available else "mpeg4"


class ClipWriter:
    """One event's clip: frames from `from_s` (stream seconds) on, until `finish`."""

    def __init__(self, path: str | Path, from_s: float, fps: float):
        self.path = Path(path)
        self.from_s = float(from_s)
        self.fps = fps
        self.until_s: float | None = None  # set when the event closes
        self.frames = 0
        self.first_s: float | None = None
        self.last_s: float | None = None
        self.gaps = 0  # frames lost between writes (ring too small for the lag)
        self._last_index = -1
        self._last_pts = -1
        self._seen_until: float | None = None  # stream time of the newest frame in the ring at the last pump
        self._files = ExitStack()
        self._container = None
        self._stream = None
        self._reformatter = VideoReformatter()

    def _start(self, frame: av.VideoFrame) -> None:
        temporary = self._files.enter_context(atomic_path(self.path))
        self._container = self._files.enter_context(av.open(str(temporary), "w", format="mp4"))
        codec = clip_codec()
        options = {"preset": "veryfast", "crf": "23"} if codec == "libx264" else {"qscale": "4"}
        stream = self._container.add_stream(codec, rate=max(1, round(self.fps)), options=options)
        stream.width, stream.height = frame.width // 2 * 2, frame.height // 2 * 2  # yuv420p: even sizes
        stream.pix_fmt = "yuv420p"
        stream.codec_context.time_base = _MILLISECONDS  # the stream's own times: rate changes stay right
        stream.thread_count = 1  # the cores are the network's
        self._stream = stream

    def pump(self, ring: FrameRing, until_index: int | None = None) -> None:
        """Encode the frames that became due: up to frame `until_index` while the event is
        open, up to `until_s` once it closed."""
        newest = ring.newest_time()  # before reading: frames arrive in order, so all up to it are read
        due = ring.after(self._last_index, self.from_s, until_index if self.until_s is None else None, self.until_s)
        for index, time_s, frame in due:
            if self._last_index >= 0 and index != self._last_index + 1:
                self.gaps += index - self._last_index - 1
            self._write(frame, time_s)
            self._last_index = index
        self._seen_until = newest

    def complete(self) -> bool:
        """Whether the last `pump` saw every frame up to `until_s` (so the clip can be finished)."""
        return self.until_s is not None and self._seen_until is not None and self._seen_until > self.until_s

    def _write(self, frame: av.VideoFrame, time_s: float) -> None:
        if self._stream is None:
            self._start(frame)
            self.first_s = time_s
        picture = self._reformatter.reformat(
            frame, width=self._stream.width, height=self._stream.height, format="yuv420p"
        )
        pts = max(round((time_s - self.first_s) * 1000), self._last_pts + 1)
        picture.pts, picture.time_base = pts, _MILLISECONDS
        self._last_pts = pts
        self._container.mux(self._stream.encode(picture))
        self.frames += 1
        self.last_s = time_s

    def finish(self) -> Path | None:
        """Flush the encoder and move the clip into place; None when no frame was written."""
        if self._stream is None:
            self._files.close()
            return None
        try:
            self._container.mux(self._stream.encode(None))
        except BaseException:
            self.abort()
            raise
        self._files.close()  # closes the container, then renames the temporary file
        return self.path

    def abort(self) -> None:
        """Drop the clip (its temporary file is removed)."""
        error = RuntimeError(f"clip {self.path} aborted")
        self._files.__exit__(type(error), error, None)
