"""What a watch tells the world as it goes: the listener contract of `gclvad watch`.

The watcher writes its own files (scores.csv, events.jsonl, clips) and, beside them, calls
every listener it was given: event sinks (MQTT, webhooks, commands: gclvad.live.sinks) and
the web page (gclvad.live.web) are listeners. The watcher scores every camera in one loop,
so a listener must return at once: one that does I/O queues the call and does it on a
thread of its own, and one that fails logs the failure instead of raising (a sink that is
down never blocks scoring).

Every call names the camera (its name from the camera list, or "camera" for a single
source) and passes plain JSON-ready values:

    camera_started(camera, info)   info: run, source, threshold {value, origin, quantile},
                                   segment_length, fps (0 when the stream declares none),
                                   out_dir (the camera's output folder)
    segment_scored(camera, row)    row: segment, first_frame, last_frame, stream_start_s,
                                   stream_end_s, unix_time, latency_s, score, d, g,
                                   smoothed (when smoothing), alert (open event number, 0)
    event(camera, record)          record: an events.jsonl line, state "open" or "closed";
                                   closed ones carry plot/clip paths relative to out_dir
    status(camera, status)         about once a second: frames, fps_in, segments scored,
                                   dropped_segments, reconnects, latency_s, alerting
    camera_stopped(camera, summary)  the camera's summary.json
    close()                        the watch ended: flush and stop threads (bounded in time)
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

log = logging.getLogger(__name__)


class WatchListener:
    """A listener that ignores everything: subclass it and override what you need."""

    def camera_started(self, camera: str, info: dict) -> None:
        pass

    def segment_scored(self, camera: str, row: dict) -> None:
        pass

    def event(self, camera: str, record: dict) -> None:
        pass

    def status(self, camera: str, status: dict) -> None:
        pass

    def camera_stopped(self, camera: str, summary: dict) -> None:
        pass

    def close(self) -> None:
        pass


class Listeners(WatchListener):
    """Several listeners as one; a listener that raises is logged and never stops the others."""

    def __init__(self, listeners: Iterable[WatchListener] = ()):
        self.listeners = list(listeners)

    def _each(self, method: str, *arguments) -> None:
        for listener in self.listeners:
            try:
                getattr(listener, method)(*arguments)
            except Exception:  # a listener's failure must not stop scoring
                log.exception("watch listener %s failed in %s", type(listener).__name__, method)

    def camera_started(self, camera: str, info: dict) -> None:
        self._each("camera_started", camera, info)

    def segment_scored(self, camera: str, row: dict) -> None:
        self._each("segment_scored", camera, row)

    def event(self, camera: str, record: dict) -> None:
        self._each("event", camera, record)

    def status(self, camera: str, status: dict) -> None:
        self._each("status", camera, status)

    def camera_stopped(self, camera: str, summary: dict) -> None:
        self._each("camera_stopped", camera, summary)

    def close(self) -> None:
        self._each("close")
