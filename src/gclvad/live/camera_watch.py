"""One camera of a watch (`gclvad.live.watcher`): its source and decoding thread, its alerts,
its files (scores.csv, events.jsonl and events/, summary.json), its status and what its
listeners hear. The watch's scoring loop, shared by all cameras, hands it its scored
segments and the breaks of its stream; nothing here touches another camera.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import queue
import threading
import time
from pathlib import Path

from gclvad.atomic import write_json_atomic
from gclvad.live.alerts import CausalSmoother, EventDetector, ScoredSegment
from gclvad.live.cameras import Camera, WatchSettings
from gclvad.live.clips import FrameRing
from gclvad.live.events import EventOutputs
from gclvad.live.listeners import Listeners
from gclvad.live.outputs import (
    SCORES_FILE,
    SUMMARY_FILE,
    ScoreLog,
    StatusLine,
    StatusMeter,
    percentiles,
    wall_text,
)
from gclvad.live.segments import Decoding, Failed, LiveSegment, SegmentAssembler
from gclvad.live.source import Break, LiveSource
from gclvad.live.threshold import Threshold

log = logging.getLogger(__name__)

_LATENCY_SAMPLES = 10000  # latencies kept for the summary's percentiles
# Extra segments of lag the clip buffer covers beyond the queue: one being gathered, one being
# scored, and a margin for a slow batch.
_LAG_SEGMENTS = 3


def threshold_text(threshold: Threshold) -> str:
    return f"alert threshold {threshold.value:.6g}: {threshold.origin}"


# ---------------------------------------------------------------- one camera


class CameraWatch:
    """One camera of a watch: its source and decoding thread, its alerts, its files, its summary.
    The watch's scoring loop hands it its scored segments and its breaks."""

    def __init__(
        self,
        camera: Camera,
        settings: WatchSettings,
        out_dir: Path,
        threshold: Threshold,
        batch_size: int,
        listeners: Listeners,
        label: str,
    ):
        self.name, self.source_text, self.settings = camera.name, camera.source, settings
        self.out_dir, self.threshold, self.batch_size = out_dir, threshold, batch_size
        self.listeners, self.label = listeners, label
        # Room for two batches: a scorer behind real time then works in whole batches, which
        # extractors compute several times faster per segment than one at a time.
        self.max_queued = settings.max_queued or 2 * batch_size
        self.halt = threading.Event()  # tells its decoding thread to stop
        self.detector = EventDetector(threshold.value, settings.hold_s)
        self.smoother = CausalSmoother(settings.smooth_segments) if settings.smooth_segments > 1 else None
        self.latencies: collections.deque = collections.deque(maxlen=_LATENCY_SAMPLES)
        self.scored = 0
        self.last: ScoredSegment | None = None
        self.pending = None  # a Break or Failed taken from its queue, handled once the batch in flight is scored
        self.error: BaseException | None = None  # what made its decoding fail
        self.summary: dict | None = None  # once it has ended

    # ------------------------------------------------------------ starting

    def start(self, record, preprocessing, wake: threading.Event, density: bool = False) -> None:
        settings = self.settings
        self.record = record
        self.source = LiveSource(self.source_text, settings.source, self.halt)
        self.ring = FrameRing(self._ring_seconds(), settings.clip_buffer_mb << 20) if settings.clips else None
        assembler = SegmentAssembler(preprocessing, record.segment_length, record.frame_step)
        self.decoding = Decoding(self.source, assembler, self.max_queued, self.ring, self.halt, wake)
        self.events = EventOutputs(
            self.out_dir, settings.clip_margin_s, self.ring, tell=lambda record: self.listeners.event(self.name, record)
        )
        self.scores_log = ScoreLog(self.out_dir / SCORES_FILE, self.smoother is not None, density)
        self.meter, self.status_line = StatusMeter(), StatusLine(label=self.label)
        self.started = time.time()
        log.info(
            "watching %s%s with run %s; %s",
            self.source_text,
            f" as {self.name}" if self.label else "",
            record.folder,
            threshold_text(self.threshold),
        )
        self.listeners.camera_started(self.name, self._info())
        self.decoding.thread.start()

    def _info(self) -> dict:
        return {
            "run": str(self.record.folder),
            "source": self.source_text,
            "threshold": dataclasses.asdict(self.threshold),
            "segment_length": self.record.segment_length,
            "frame_step": self.record.frame_step,
            "fps": 0.0,  # not known before the stream is opened (by its decoding thread); status has it
            "out_dir": str(self.out_dir),
        }

    def _ring_seconds(self) -> float:
        """Clip buffer length: the pre-roll, plus the lag of the scorer behind its decoder (bounded
        by its own queue, however many cameras share the scorer)."""
        fps = self.source.fps
        lag_segments = self.max_queued + self.batch_size + _LAG_SEGMENTS
        return self.settings.clip_margin_s + lag_segments * self.record.span / max(fps, 1.0)

    # ------------------------------------------------------------ its queue

    def take(self) -> LiveSegment | None:
        """Its next queued segment, if one waits; a break or failure waiting is kept as `pending`
        (its segments before it go first)."""
        if self.pending is not None:
            return None
        try:
            item = self.decoding.queue.get_nowait()
        except queue.Empty:
            return None
        if isinstance(item, LiveSegment):
            return item
        self.pending = item
        return None

    def handle_pending(self) -> bool:
        """Act on its waiting break or failure; whether the camera has ended."""
        item, self.pending = self.pending, None
        if isinstance(item, Failed):
            self.error = item.error
            log.error("%s: decoding failed: %s", self.name, item.error)
            self.finish("error")
            return True
        if isinstance(item, Break):
            if item.final:
                self.finish(item.reason)
                return True
            self._close_event("stream lost", time.time())
        return False

    # ------------------------------------------------------------ scores

    def scored_segment(self, segment: LiveSegment, named: dict, now: float) -> None:
        """One of its segments was scored (`named`: score, d, g): its alerts, files and listeners."""
        alerting = named["score"]
        if self.smoother is not None:
            alerting = named["smoothed"] = self.smoother(named["score"])
        scored = ScoredSegment(
            segment.index,
            segment.first_frame,
            segment.last_frame,
            segment.start_s,
            segment.end_s,
            segment.first_arrival,
            now,
            alerting,
        )
        self.last = scored
        self.events.scored(scored)
        opened, closed = self.detector.update(scored)
        if opened is not None:
            self.events.opened(opened, self.source.fps)
        if closed is not None:
            self.events.closed(closed, scored)
        alert = self._alert()
        self.scores_log.write(segment, now, named, alert)
        self.latencies.append(now - segment.last_arrival)
        self.scored += 1
        self.listeners.segment_scored(self.name, self._row(segment, now, named, alert))

    def _alert(self) -> int:
        current = self.detector.current
        return current.number if current is not None else 0

    @staticmethod
    def _row(segment: LiveSegment, now: float, named: dict, alert: int) -> dict:
        return {
            "segment": segment.index,
            "first_frame": segment.first_frame,
            "last_frame": segment.last_frame,
            "stream_start_s": round(segment.start_s, 3),
            "stream_end_s": round(segment.end_s, 3),
            "unix_time": round(now, 3),
            "latency_s": round(now - segment.last_arrival, 3),
            **named,
            "alert": alert,
        }

    def tick(self, final: bool = False) -> None:
        """Clips: encode the frames that became due, finish those that are complete; its status."""
        if self.ring is not None:
            self.ring.keep_s = self._ring_seconds()
            self.events.pump(self.last, final)
        latency = self.latencies[-1] if self.latencies else None
        status = self.meter.measure(
            self.decoding.counters,
            self.scored,
            latency,
            self._alert(),
            self.detector.count,
            self.source.reconnects,
            self.source.fps,
        )
        if status is not None:
            self.status_line.show(status)
            self.listeners.status(self.name, status)

    def _close_event(self, reason: str, when: float) -> None:
        event = self.detector.close(reason, when)
        if event is not None:
            self.events.closed(event, self.last)

    # ------------------------------------------------------------ the end

    def finish(self, stopped_by: str) -> dict:
        """End this camera: close its event and files, stop its thread, write its summary."""
        self.halt.set()
        try:
            self._close_event({"end of file": "end of stream"}.get(stopped_by, stopped_by), time.time())
            self.tick(final=True)
        finally:
            self.scores_log.close()
            self.events.close()
            self.status_line.end()
        self.decoding.thread.join(timeout=self.settings.source.read_timeout_s + 2.0)
        self.summary = self._summary(stopped_by)
        write_json_atomic(self.out_dir / SUMMARY_FILE, self.summary)
        log.info(
            "%s ended (%s): %d frames, %d segments scored, %d dropped (%d frames), %d reconnections, %d alerts",
            f"camera {self.name}" if self.label else "watch",
            stopped_by,
            self.summary["frames"],
            self.scored,
            self.summary["dropped_segments"],
            self.summary["dropped_frames"],
            self.source.reconnects,
            self.detector.count,
        )
        self.listeners.camera_stopped(self.name, self.summary)
        return self.summary

    def _unscored(self) -> int:
        """Segments still queued (a stop was requested), taken out of the queue."""
        count = 0
        while True:
            try:
                count += isinstance(self.decoding.queue.get_nowait(), LiveSegment)
            except queue.Empty:
                return count

    def _summary(self, stopped_by: str) -> dict:
        elapsed = time.time() - self.started
        return {
            "camera": self.name,
            "run": str(self.record.folder),
            "source": self.source_text,
            "stopped_by": stopped_by,
            **({"error": str(self.error)} if self.error is not None else {}),
            "started": wall_text(self.started),
            "seconds": round(elapsed, 3),
            "threshold": dataclasses.asdict(self.threshold),
            "settings": dataclasses.asdict(self.settings),
            "batch_size": self.batch_size,
            "max_queued": self.max_queued,
            **dataclasses.asdict(self.decoding.counters),
            "scored_segments": self.scored,
            "unscored_at_stop": self._unscored(),
            "reconnects": self.source.reconnects,
            "events": self.detector.count,
            "latency_s": percentiles(self.latencies),
            "segments_per_s": round(self.scored / elapsed, 3) if elapsed > 0 else None,
            "clip_buffer_capped": bool(self.ring is not None and self.ring.capped),
        }
