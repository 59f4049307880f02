"""A live video source: whatever FFmpeg opens (RTSP, RTP/UDP, HTTP/HLS, a V4L2 camera, a file),
decoded frame by frame, reconnected with bounded exponential back-off when it drops.

`LiveSource.arrivals()` yields an `Arrival` for every decoded frame, with a frame number
counted from the start of watching and a stream clock that never goes backwards (each
reconnection continues it by the wall time the outage lasted, and a timestamp that jumps or
goes back re-anchors it), and a `Break` whenever the connection is lost. A network stream or
camera that fails to open or stops delivering frames (FFmpeg's read times out) is reopened
after 0.5 s, 1 s, 2 s, ... up to `max_backoff_s`; it is given up only after `give_up_after_s`
of continuous outage, if set. A file ends at its end; with `realtime` it is delivered at its
own frame rate, as a camera would.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import av

from gclvad.errors import BadVideoError, GclvadError

log = logging.getLogger(__name__)

FILE, CAMERA, NETWORK = "file", "camera", "network"
# FFmpeg input options by URL scheme, under the user's own (-O KEY=VALUE). UDP: a large
# receive FIFO (in 188-byte packets) filled by FFmpeg's own thread, and no fatal error when it
# overflows; RTSP over TCP: no packet loss inside the network, at the price of some latency.
_SCHEME_OPTIONS = {
    "udp": {"fifo_size": "50000", "overrun_nonfatal": "1", "buffer_size": "4194304"},
    "rtp": {"fifo_size": "50000", "overrun_nonfatal": "1", "buffer_size": "4194304"},
    "rtsp": {"rtsp_transport": "tcp"},
}
_CLOCK_JUMP_S = 10.0  # a timestamp further than this from the expected one re-anchors the clock
_FALLBACK_FPS = 25.0  # until a stream says or shows its frame rate


@dataclass(frozen=True)
class SourceSettings:
    """How to open and keep a source (times in seconds)."""

    realtime: bool = False  # deliver a file at its own frame rate
    input_format: str | None = None  # FFmpeg demuxer (e.g. "v4l2"); None: FFmpeg guesses
    options: dict[str, str] = field(default_factory=dict)  # FFmpeg input options
    open_timeout_s: float = 10.0
    read_timeout_s: float = 5.0  # no frame for this long: the stream is lost
    backoff_start_s: float = 0.5
    max_backoff_s: float = 30.0
    give_up_after_s: float | None = None  # None: reconnect for ever


@dataclass
class Arrival:
    """One decoded frame: its number since watching started, stream time and wall arrival time."""

    frame: av.VideoFrame
    index: int
    time_s: float
    arrived: float  # time.time() when decoded
    fps: float  # the stream's frame rate as known now


@dataclass(frozen=True)
class Break:
    """The connection was lost (or a file ended): frames before it and after it are not contiguous."""

    reason: str
    final: bool  # no more frames will come (end of file, gave up, stopped)


def source_kind(source: str) -> str:
    """ "file" for an existing file, "camera" for /dev/video*, else "network"."""
    if source.startswith("/dev/video"):
        return CAMERA
    if "://" not in source:
        path = Path(source)
        if path.is_dir():
            raise BadVideoError(path, "is a folder; watch reads one stream, camera or video file")
        if not path.is_file():
            raise BadVideoError(path, "not found: expected a video file, a camera (/dev/videoN) or a stream URL")
        return FILE
    return FILE if source.startswith("file:") else NETWORK


class _Clock:
    """Stream seconds that never go back, anchored per connection."""

    def __init__(self):
        self.last: float | None = None  # stream time of the last frame
        self._last_wall = 0.0
        self._anchor: tuple[float, float] | None = None  # (frame timestamp, stream time) of the anchor

    def new_connection(self) -> None:
        self._anchor = None

    def time_of(self, timestamp: float | None, fps: float, now: float) -> float:
        expected = 0.0 if self.last is None else self.last + 1.0 / fps
        if self._anchor is None:
            # A reconnection continues the clock by the wall time the outage lasted.
            start = expected if self.last is None else max(expected, self.last + now - self._last_wall)
            self._anchor = (timestamp, start) if timestamp is not None else None
            value = start
        elif timestamp is None or self._anchor[0] is None:
            value = expected
        else:
            value = self._anchor[1] + timestamp - self._anchor[0]
            if self.last is not None and not (self.last < value <= expected + _CLOCK_JUMP_S):
                self._anchor = (timestamp, expected)  # timestamps wrapped, jumped or went back
                value = expected
        self.last, self._last_wall = value, now
        return value


class LiveSource:
    """Frames of one source, across reconnections, until `stop` is set or the source ends."""

    def __init__(self, source: str, settings: SourceSettings, stop: threading.Event):
        self.source = str(source)
        self.kind = source_kind(self.source)
        self.settings = settings
        self.stop = stop
        self.reconnects = 0
        self.connected = False
        self.gave_up = False
        self.fps = _FALLBACK_FPS
        self._clock = _Clock()
        self._count = 0
        self._size: tuple[int, int] | None = None
        self._lost_reason = ""
        self._last_timestamp: float | None = None
        self._frame_interval = 1.0 / self.fps  # running mean of timestamp steps

    # ------------------------------------------------------------ opening

    def _options(self) -> dict[str, str]:
        scheme = self.source.split("://", 1)[0].lower() if "://" in self.source else ""
        return {**_SCHEME_OPTIONS.get(scheme, {}), **self.settings.options}

    def _open(self) -> av.container.InputContainer:
        input_format = self.settings.input_format or ("v4l2" if self.kind == CAMERA else None)
        log.info("opening %s", self.source)
        timeouts = None if self.kind == FILE else (self.settings.open_timeout_s, self.settings.read_timeout_s)
        container = av.open(self.source, format=input_format, options=self._options(), timeout=timeouts)
        if not container.streams.video:
            kinds = sorted({s.type for s in container.streams}) or ["none"]
            container.close()
            raise GclvadError(f"{self.source}: has no video stream (streams found: {', '.join(kinds)})")
        return container

    # ------------------------------------------------------------ frames

    def arrivals(self) -> Iterator[Arrival | Break]:
        """Arrivals and breaks; the last item is always a final Break."""
        outage_since: float | None = None
        delay = self.settings.backoff_start_s
        while not self.stop.is_set():
            try:
                container = self._open()
            except av.FFmpegError as error:
                if self.kind == FILE:
                    raise BadVideoError(Path(self.source), f"cannot be opened by FFmpeg: {error}") from error
                reason = f"cannot open: {error}"
            else:
                delivered = yield from self._connection(container)
                if self.kind == FILE or self.stop.is_set():
                    break
                reason = self._lost_reason
                if delivered:
                    outage_since, delay = None, self.settings.backoff_start_s
            now = time.monotonic()
            outage_since = now if outage_since is None else outage_since
            give_up = self.settings.give_up_after_s
            if give_up is not None and now - outage_since >= give_up:
                log.error("%s: no frames for %.1f s (%s); giving up", self.source, now - outage_since, reason)
                self.gave_up = True
                break
            log.warning("%s: stream lost (%s); reconnecting in %.1f s", self.source, reason, delay)
            self.reconnects += 1  # attempts to reopen, counted as they start
            yield Break(reason, final=False)
            if self.stop.wait(delay):
                break
            delay = min(2 * delay, self.settings.max_backoff_s)
        yield Break("stopped" if self.stop.is_set() else "gave up" if self.gave_up else "end of file", final=True)

    def _connection(self, container) -> Iterator[Arrival]:
        """Frames of one open container; returns whether any frame came. Sets `_lost_reason`."""
        self._lost_reason = "end of stream"
        delivered = False
        with container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            rate = stream.average_rate or stream.guessed_rate
            if rate:
                self.fps = float(rate)
                self._frame_interval = 1.0 / self.fps
            self._clock.new_connection()
            self._last_timestamp = None
            if self.reconnects:
                log.info("%s: stream reconnected (reconnection %d)", self.source, self.reconnects)
            pacing = _Pacing() if self.settings.realtime else None
            try:
                for packet in container.demux(stream):
                    for frame in packet.decode():
                        delivered = True
                        yield self._arrival(frame, pacing)
                    if self.stop.is_set():
                        return delivered
            except av.FFmpegError as error:
                self._lost_reason = f"read failed: {error}"
            try:  # frames the decoder still holds (its delay): the stream's last ones
                for frame in stream.codec_context.decode(None):
                    delivered = True
                    yield self._arrival(frame, pacing)
            except av.FFmpegError:
                pass
        return delivered

    def _arrival(self, frame: av.VideoFrame, pacing: _Pacing | None) -> Arrival:
        self.connected = True
        size = (frame.width, frame.height)
        if self._size is not None and size != self._size:
            log.info("%s: frame size changed from %dx%d to %dx%d", self.source, *self._size, *size)
        self._size = size
        timestamp = frame.time
        self._measure_rate(timestamp)
        if pacing is not None and timestamp is not None:
            pacing.wait_for(timestamp, self.stop)
        now = time.time()
        arrival = Arrival(frame, self._count, self._clock.time_of(timestamp, self.fps, now), now, self.fps)
        self._count += 1
        return arrival

    def _measure_rate(self, timestamp: float | None) -> None:
        # The frame rate a stream declares can be a guess and a stream can change it; the
        # timestamps say what it is (clips and buffers are sized by it).
        previous, self._last_timestamp = self._last_timestamp, timestamp
        if timestamp is None or previous is None or not 0 < timestamp - previous < 1.0:
            return
        self._frame_interval = 0.9 * self._frame_interval + 0.1 * (timestamp - previous)
        self.fps = 1.0 / self._frame_interval


class _Pacing:
    """Sleeps so that frame timestamps are delivered at the rate they were recorded."""

    def __init__(self):
        self._origin: tuple[float, float] | None = None  # (timestamp, monotonic time)

    def wait_for(self, timestamp: float, stop: threading.Event) -> None:
        now = time.monotonic()
        if self._origin is None or timestamp < self._origin[0]:
            self._origin = (timestamp, now)
            return
        delay = self._origin[1] + (timestamp - self._origin[0]) - now
        if delay > 0:
            stop.wait(delay)
