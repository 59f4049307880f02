"""Live scoring (`gclvad watch`): a trained run watching one or many cameras or network streams,
segment by segment, raising alerts without labels.

Every camera has its own decoding thread (`gclvad.live.segments`), which turns its stream into
segments as the run's extractor wants them and queues them. This module's scoring loop takes
segments from the cameras' queues in turn (round-robin, one a camera at a time, so that a fast
camera cannot starve a slow one), extracts their features in one extractor call with the
run's extractor (built once and checked by sha256 exactly as `gclvad score` does), rounds them
to the dtype the run's features were stored in and scores them with the run's networks: for
the same frames, the same numbers `gclvad score` writes. Each camera has its own alerts
(threshold, smoothing, events) and its own folder, where it appends as they come

    scores.csv    one row per scored segment: frames, stream and wall time, latency, score, d, g
                  (and the causal smoothed score with smooth_segments), the open alert
    events.jsonl  one line when an alert opens, one when it closes (start, end, peak)

(both flushed line by line) and, per event, events/event_NNNN.png (its score curve) and with
`clips` events/event_NNNN.mp4; when it ends, summary.json (counts, drops, reconnections,
latency percentiles). Those are written whole, atomically. One source watched alone writes
these into the output folder itself; several cameras each write into OUT/<name>/, and OUT/
summary.json lists their summaries. Alerts follow `gclvad.live.alerts`: the threshold is a
quantile of the run's own training scores unless given. Listeners (`gclvad.live.listeners`)
hear every camera's start, scored segments, events, status and end.

A camera's lost stream, reconnection or end touches only its own state: a camera whose
stream ends or is given up (or whose decoding fails) ends alone, with its summary, and the
others go on until all have ended or a stop is requested. Memory is bounded per camera by its
decoding queue, its clip ring buffer and a fixed-length score history, whatever the streams'
length. A stop request (Ctrl-C, SIGTERM, or the `stop` event of `watch`) ends watching at the
current batch: open events are closed and written, clips are finished, summaries written.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import queue
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch

from gclvad.atomic import write_json_atomic
from gclvad.errors import GclvadError
from gclvad.features.feature_set import single_video, use_crops
from gclvad.gcl.store import read_models_metadata
from gclvad.live.alerts import CausalSmoother, EventDetector, ScoredSegment
from gclvad.live.cameras import SINGLE_CAMERA, Camera, WatchSettings, cameras_of_sources, check_names
from gclvad.live.clips import FrameRing
from gclvad.live.events import EventOutputs
from gclvad.live.listeners import Listeners, WatchListener
from gclvad.live.outputs import (
    SCORES_FILE,
    SUMMARY_FILE,
    ScoreLog,
    StatusLine,
    StatusMeter,
    percentiles,
    refuse_earlier_watch,
    wall_text,
)
from gclvad.live.segments import Decoding, Failed, LiveSegment, SegmentAssembler
from gclvad.live.source import Break, LiveSource, source_kind
from gclvad.live.threshold import Threshold, run_threshold
from gclvad.scoring.run import open_run, read_run

log = logging.getLogger(__name__)

_LATENCY_SAMPLES = 10000  # latencies kept for the summary's percentiles
_IDLE_WAIT_S = 0.2  # how often an idle scorer looks at stop requests, clips and the status line
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

    def start(self, record, preprocessing, wake: threading.Event) -> None:
        settings = self.settings
        self.record = record
        self.source = LiveSource(self.source_text, settings.source, self.halt)
        self.ring = FrameRing(self._ring_seconds(), settings.clip_buffer_mb << 20) if settings.clips else None
        assembler = SegmentAssembler(preprocessing, record.segment_length)
        self.decoding = Decoding(self.source, assembler, self.max_queued, self.ring, self.halt, wake)
        self.events = EventOutputs(
            self.out_dir, settings.clip_margin_s, self.ring, tell=lambda record: self.listeners.event(self.name, record)
        )
        self.scores_log = ScoreLog(self.out_dir / SCORES_FILE, smoothed=self.smoother is not None)
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
            "fps": 0.0,  # not known before the stream is opened (by its decoding thread); status has it
            "out_dir": str(self.out_dir),
        }

    def _ring_seconds(self) -> float:
        """Clip buffer length: the pre-roll, plus the lag of the scorer behind its decoder (bounded
        by its own queue, however many cameras share the scorer)."""
        fps = self.source.fps
        lag_segments = self.max_queued + self.batch_size + _LAG_SEGMENTS
        return self.settings.clip_margin_s + lag_segments * self.record.segment_length / max(fps, 1.0)

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


# ---------------------------------------------------------------- the scoring loop


class Watcher:
    """One watch of one or several cameras by one run (see the module docstring); `run` does it.
    `single`: one source watched alone, its files in `out_dir` itself (else in out_dir/<name>/)."""

    def __init__(
        self,
        run: str | Path,
        cameras: Sequence[Camera],
        out_dir: str | Path,
        settings: WatchSettings,
        *,
        single: bool = False,
        weights: str | Path | None = None,
        device: str = "auto",
        extractor=None,
        stop: threading.Event | None = None,
        listeners: Listeners | None = None,
    ):
        if not cameras:
            raise GclvadError("watch: no camera given")
        check_names(cameras, "watch")
        record = read_run(run)
        metadata = read_models_metadata(record.models_path)
        self.out_dir, self.single = Path(out_dir), single
        if not single:
            refuse_earlier_watch(self.out_dir)  # the top-level summary.json of an earlier watch
        self.batch_size = max(1, int(settings.batch_size or record.extractor.get("batch_size", 4)))
        self.listeners = listeners if listeners is not None else Listeners()
        self.cameras = []
        for camera in cameras:  # every camera's problems are found before the slow work
            camera_settings = camera.settings or settings
            threshold = run_threshold(
                record.models_path, metadata, camera_settings.quantile, camera_settings.threshold, record.scoring
            )
            camera_out = self.out_dir if single else self.out_dir / camera.name
            refuse_earlier_watch(camera_out)
            source_kind(camera.source)  # a missing file fails before the slow work
            label = "" if single else camera.name
            self.cameras.append(
                CameraWatch(camera, camera_settings, camera_out, threshold, self.batch_size, self.listeners, label)
            )
        opened = open_run(record, weights=weights, device=device, extractor=extractor)  # one network for all
        self.record, self.extractor, self.scorer = opened.record, opened.extractor, opened.scorer
        self.stored_dtype = np.dtype(self.record.extractor.get("dtype", "float16"))
        self.user_stop = stop or threading.Event()
        self.wake = threading.Event()  # set by any camera's decoding thread when it queued something
        self.active: list[CameraWatch] = []
        self._turn = 0  # the camera the next batch starts with

    def run(self) -> dict:
        """Watch until every camera has ended or a stop is requested; the summary."""
        self.started = time.time()
        stopped_by = "error"
        try:
            for camera in self.cameras:
                camera.out_dir.mkdir(parents=True, exist_ok=True)
                camera.start(self.record, self.extractor.preprocessing, self.wake)
                self.active.append(camera)
            stopped_by = self._loop()
        finally:
            try:
                for camera in list(self.active):
                    camera.finish(stopped_by)
                self.active.clear()
            finally:
                self.listeners.close()
        failed = [camera for camera in self.cameras if camera.error is not None]
        if self.single and failed:
            raise failed[0].error  # one source watched alone: its failure is the watch's
        return self._summary()

    # ------------------------------------------------------------ the loop

    def _loop(self) -> str:
        while self.active and not self.user_stop.is_set():
            self.wake.clear()  # before looking at the queues: an item queued after the look sets it again
            batch = self._gather()
            if batch:
                self._score(batch)
            self._handle_pending()
            for camera in self.active:
                camera.tick()
            if not batch and self.active:
                self.wake.wait(_IDLE_WAIT_S)
        return "stop requested" if self.active else "all cameras ended"

    def _gather(self) -> list[tuple[CameraWatch, LiveSegment]]:
        """Up to batch_size queued segments, one a camera in turn, starting each batch with the
        next camera (round-robin: a camera with many waiting cannot starve one with few)."""
        count = len(self.active)
        order = [self.active[(self._turn + offset) % count] for offset in range(count)]
        self._turn = (self._turn + 1) % count
        batch: list[tuple[CameraWatch, LiveSegment]] = []
        while order and len(batch) < self.batch_size:
            waiting = []
            for camera in order:
                if len(batch) == self.batch_size:
                    break
                segment = camera.take()
                if segment is not None:
                    batch.append((camera, segment))
                    waiting.append(camera)
            order = waiting  # the next round asks only the cameras that gave a segment in this one
        return batch

    def _handle_pending(self) -> None:
        """Breaks and failures taken from the queues, now that the segments before them are scored."""
        for camera in [camera for camera in self.active if camera.pending is not None]:
            if camera.handle_pending():
                self.active.remove(camera)
        if self.active:
            self._turn %= len(self.active)

    def _score(self, batch: list[tuple[CameraWatch, LiveSegment]]) -> None:
        preprocessing = self.extractor.preprocessing
        clips = torch.stack([preprocessing.normalize(segment.frames) for _, segment in batch])
        if clips.ndim == 5 and len(clips) == 1:
            # A lone clip is computed by other kernels than two or more (on CPU its features and
            # scores differ in the last bits): it goes with a copy of itself, so that how segments
            # happen to be batched (by timing, by other cameras) never changes a score.
            clips = clips.expand(2, *clips.shape[1:])
        # (B, 3, T, h, w), or (B, C, 3, T, h, w) for C crops a segment: one extractor call for all
        # cameras' clips; the features (B, C, d) of C crops are then used as the run used them.
        features = self.extractor.extract(clips.reshape(-1, *clips.shape[-4:])).numpy()
        # Rounded to the stored dtype, as the run's own features and `gclvad score`'s were.
        features = features.astype(self.stored_dtype).astype(np.float32)
        if clips.ndim == 6:
            features = use_crops(features.reshape(len(clips), -1, features.shape[-1]), self.record.crops)
        # Every segment is scored on its own (no smoothing across rows): mixing cameras is safe.
        values = self.scorer.segment_scores(single_video(features))
        now = time.time()
        for row, (camera, segment) in enumerate(batch):
            camera.scored_segment(segment, {name: float(column[row]) for name, column in values.items()}, now)

    # ------------------------------------------------------------ the end

    def _summary(self) -> dict:
        """One source alone: its summary (also its summary.json); several: the watch's, listing theirs."""
        if self.single:
            return self.cameras[0].summary
        summary = {
            "run": str(self.record.folder),
            "started": wall_text(self.started),
            "seconds": round(time.time() - self.started, 3),
            "batch_size": self.batch_size,
            "cameras": {camera.name: camera.summary for camera in self.cameras if camera.summary is not None},
        }
        write_json_atomic(self.out_dir / SUMMARY_FILE, summary)
        return summary


def _as_listeners(listeners: WatchListener | Iterable[WatchListener] | None) -> Listeners:
    """Always a Listeners: it is what keeps one listener's failure from reaching the scoring loop."""
    if listeners is None:
        return Listeners()
    if isinstance(listeners, Listeners):
        return listeners
    if isinstance(listeners, WatchListener):
        return Listeners([listeners])
    return Listeners(listeners)


def watch(
    run: str | Path,
    source: str | Path | Sequence[str | Camera],
    out_dir: str | Path,
    settings: WatchSettings | None = None,
    *,
    weights: str | Path | None = None,
    device: str = "auto",
    extractor=None,
    stop: threading.Event | None = None,
    listeners: WatchListener | Iterable[WatchListener] | None = None,
) -> dict:
    """Watch `source` with the trained `run`, writing into `out_dir` (see the module docstring);
    returns the summary (also in out_dir/summary.json).

    source: one stream URL, camera or file, watched alone (files in out_dir itself, the camera
    named "camera"); or a list of cameras (`Camera`s, or sources named camera1, camera2, ...),
    each with its own folder out_dir/<name>/, the summary then listing each camera's.
    settings: every camera's, unless a Camera has its own (batch_size is always the watch's).
    weights: the extractor weights if not where the run recorded them (sha256 checked).
    extractor: an already built extractor (its weights' sha256 and preprocessing must be the
    run's), instead of building the run's. stop: set it to end watching cleanly.
    listeners: told of every camera's start, scores, events, status and end (gclvad.live.listeners).
    """
    single = isinstance(source, str | Path)
    if single:
        cameras = [Camera(SINGLE_CAMERA, str(source))]
    else:
        texts = [item for item in source if not isinstance(item, Camera)]
        named = iter(cameras_of_sources(texts))
        cameras = [item if isinstance(item, Camera) else next(named) for item in source]
    watcher = Watcher(
        run,
        cameras,
        out_dir,
        settings or WatchSettings(),
        single=single,
        weights=weights,
        device=device,
        extractor=extractor,
        stop=stop,
        listeners=_as_listeners(listeners),
    )
    return watcher.run()
