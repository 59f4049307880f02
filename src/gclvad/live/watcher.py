"""Live scoring (`gclvad watch`): a trained run watching a camera or network stream, segment by
segment, raising alerts without labels.

The decoding thread (`gclvad.live.segments`) turns the stream into segments as the run's
extractor wants them; this module's scoring loop takes them, extracts their features with the
run's extractor (built and checked by sha256 exactly as `gclvad score` does), rounds them to
the dtype the run's features were stored in and scores them with the run's networks: for the
same frames, the same numbers `gclvad score` writes. As they come, it appends

    scores.csv    one row per scored segment: frames, stream and wall time, latency, score, d, g
                  (and the causal smoothed score with smooth_segments), the open alert
    events.jsonl  one line when an alert opens, one when it closes (start, end, peak)

(both flushed line by line) and, per event, events/event_NNNN.png (its score curve) and with
`clips` events/event_NNNN.mp4; at the end summary.json (counts, drops, reconnections,
latency percentiles). Those are written whole, atomically. Alerts follow `gclvad.live.alerts`:
the threshold is a quantile of the run's own training scores unless given.

Memory is bounded by the decoding queue, the clip ring buffer and a fixed-length score
history, whatever the stream's length. A stop request (Ctrl-C, SIGTERM, or the `stop` event
of `watch`) ends watching at the current segment: an open event is closed and written,
clips are finished, the summary is written.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from gclvad.atomic import write_json_atomic
from gclvad.features.feature_set import single_video, use_crops
from gclvad.gcl.store import read_models_metadata
from gclvad.live.alerts import CausalSmoother, EventDetector, ScoredSegment
from gclvad.live.clips import FrameRing
from gclvad.live.events import EventOutputs
from gclvad.live.outputs import (
    SCORES_FILE,
    SUMMARY_FILE,
    ScoreLog,
    StatusLine,
    percentiles,
    refuse_earlier_watch,
    wall_text,
)
from gclvad.live.segments import Decoding, Failed, LiveSegment, SegmentAssembler
from gclvad.live.source import Break, LiveSource, SourceSettings, source_kind
from gclvad.live.threshold import DEFAULT_QUANTILE, Threshold, run_threshold
from gclvad.scoring.run import open_run, read_run

log = logging.getLogger(__name__)

_LATENCY_SAMPLES = 10000  # latencies kept for the summary's percentiles
_IDLE_WAIT_S = 0.2  # how often an idle scorer looks at stop requests, clips and the status line
# Extra segments of lag the clip buffer covers beyond the queue: one being gathered, one being
# scored, and a margin for a slow batch.
_LAG_SEGMENTS = 3


@dataclass(frozen=True)
class WatchSettings:
    """What `gclvad watch` can be told (times in seconds)."""

    quantile: float = DEFAULT_QUANTILE  # alert threshold: this quantile of the run's training scores
    threshold: float | None = None  # or this value
    hold_s: float = 2.0  # an event closes after this long at or below the threshold
    smooth_segments: int = 0  # > 1: alert on the causal smoothed score (span in segments)
    clips: bool = False  # save every event as an .mp4
    clip_margin_s: float = 3.0  # seconds of clip before the event starts and after it closes
    clip_buffer_mb: int = 256  # at most this much decoded video is kept for clips
    max_queued: int | None = None  # segments waiting before a live source drops (None: 2 batches)
    batch_size: int | None = None  # segments per extractor call when several wait (None: the run's)
    source: SourceSettings = field(default_factory=SourceSettings)


def threshold_text(threshold: Threshold) -> str:
    return f"alert threshold {threshold.value:.6g}: {threshold.origin}"


# ---------------------------------------------------------------- the scoring loop


class Watcher:
    """One watch of one source by one run (see the module docstring); `run` does it."""

    def __init__(
        self,
        run: str | Path,
        source: str,
        out_dir: str | Path,
        settings: WatchSettings,
        *,
        weights: str | Path | None = None,
        device: str = "auto",
        extractor=None,
        stop: threading.Event | None = None,
    ):
        self.settings = settings
        record = read_run(run)
        self.threshold = run_threshold(
            record.models_path,
            read_models_metadata(record.models_path),
            settings.quantile,
            settings.threshold,
            record.scoring,
        )
        self.out_dir = Path(out_dir)
        refuse_earlier_watch(self.out_dir)
        self.source_text = str(source)
        source_kind(self.source_text)  # a missing file fails before the slow work
        opened = open_run(record, weights=weights, device=device, extractor=extractor)
        self.record, self.extractor, self.scorer = opened.record, opened.extractor, opened.scorer
        self.stored_dtype = np.dtype(self.record.extractor.get("dtype", "float16"))
        self.batch_size = max(1, int(settings.batch_size or self.record.extractor.get("batch_size", 4)))
        # Room for two batches: a scorer behind real time then works in whole batches, which
        # extractors compute several times faster per segment than one at a time.
        self.max_queued = settings.max_queued or 2 * self.batch_size
        self.user_stop = stop or threading.Event()
        self.halt = threading.Event()  # tells the decoding thread to stop
        self.detector = EventDetector(self.threshold.value, settings.hold_s)
        self.smoother = CausalSmoother(settings.smooth_segments) if settings.smooth_segments > 1 else None
        self.latencies: collections.deque = collections.deque(maxlen=_LATENCY_SAMPLES)
        self.scored = 0
        self.last: ScoredSegment | None = None

    # ------------------------------------------------------------ setting up

    def _start(self) -> None:
        settings = self.settings
        self.source = LiveSource(self.source_text, settings.source, self.halt)
        self.ring = FrameRing(self._ring_seconds(), settings.clip_buffer_mb << 20) if settings.clips else None
        assembler = SegmentAssembler(self.extractor.preprocessing, self.record.segment_length)
        self.decoding = Decoding(self.source, assembler, self.max_queued, self.ring, self.halt)
        self.events = EventOutputs(self.out_dir, settings.clip_margin_s, self.ring)
        self.scores_log = ScoreLog(self.out_dir / SCORES_FILE, smoothed=self.smoother is not None)
        self.status = StatusLine()
        self.started = time.time()
        log.info("watching %s with run %s; %s", self.source_text, self.record.folder, threshold_text(self.threshold))
        self.decoding.thread.start()

    def _ring_seconds(self) -> float:
        """Clip buffer length: the pre-roll, plus the lag of the scorer behind the decoder."""
        fps = self.source.fps
        lag_segments = self.max_queued + self.batch_size + _LAG_SEGMENTS
        return self.settings.clip_margin_s + lag_segments * self.record.segment_length / max(fps, 1.0)

    def run(self) -> dict:
        """Watch until the source ends, is given up, or a stop is requested; the summary."""
        self._start()
        stopped_by = "error"
        try:
            stopped_by = self._loop()
        finally:
            summary = self._finish(stopped_by)
        return summary

    # ------------------------------------------------------------ the loop

    def _loop(self) -> str:
        pending = None
        while not self.user_stop.is_set():
            item, pending = pending, None
            if item is None:
                try:
                    item = self.decoding.queue.get(timeout=_IDLE_WAIT_S)
                except queue.Empty:
                    self._tick()
                    continue
            if isinstance(item, Failed):
                raise item.error
            if isinstance(item, Break):
                if item.final:
                    return item.reason
                self._close_event("stream lost", time.time())
                continue
            batch = [item]
            while len(batch) < self.batch_size:
                try:
                    more = self.decoding.queue.get_nowait()
                except queue.Empty:
                    break
                if not isinstance(more, LiveSegment):
                    pending = more
                    break
                batch.append(more)
            self._score(batch)
            self._tick()
        return "stop requested"

    def _score(self, batch: list[LiveSegment]) -> None:
        clips = torch.stack([self.extractor.preprocessing.normalize(segment.frames) for segment in batch])
        # (B, 3, T, h, w), or (B, C, 3, T, h, w) for C crops a segment: one extractor call for all
        # clips; the features (B, C, d) of C crops are then used as the run used them.
        features = self.extractor.extract(clips.reshape(-1, *clips.shape[-4:])).numpy()
        # Rounded to the stored dtype, as the run's own features and `gclvad score`'s were.
        features = features.astype(self.stored_dtype).astype(np.float32)
        if clips.ndim == 6:
            features = use_crops(features.reshape(len(batch), -1, features.shape[-1]), self.record.crops)
        values = self.scorer.segment_scores(single_video(features))
        now = time.time()
        for row, segment in enumerate(batch):
            named = {name: float(column[row]) for name, column in values.items()}
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
            current = self.detector.current
            self.scores_log.write(segment, now, named, current.number if current is not None else 0)
            self.latencies.append(now - segment.last_arrival)
        self.scored += len(batch)

    def _tick(self, final: bool = False) -> None:
        """Clips: encode the frames that became due, finish those that are complete; the status line."""
        if self.ring is not None:
            self.ring.keep_s = self._ring_seconds()
            self.events.pump(self.last, final)
        latency = self.latencies[-1] if self.latencies else None
        self.status.update(self.decoding.counters, self.scored, latency, self.detector.count, self.source.reconnects)

    # ------------------------------------------------------------ events

    def _close_event(self, reason: str, when: float) -> None:
        event = self.detector.close(reason, when)
        if event is not None:
            self.events.closed(event, self.last)

    # ------------------------------------------------------------ the end

    def _finish(self, stopped_by: str) -> dict:
        self.halt.set()
        try:
            self._close_event({"end of file": "end of stream"}.get(stopped_by, stopped_by), time.time())
            self._tick(final=True)
        finally:
            self.scores_log.close()
            self.events.close()
            self.status.end()
        self.decoding.thread.join(timeout=self.settings.source.read_timeout_s + 2.0)
        summary = self._summary(stopped_by)
        write_json_atomic(self.out_dir / SUMMARY_FILE, summary)
        log.info(
            "watch ended (%s): %d frames, %d segments scored, %d dropped (%d frames), %d reconnections, %d alerts",
            stopped_by,
            summary["frames"],
            self.scored,
            summary["dropped_segments"],
            summary["dropped_frames"],
            self.source.reconnects,
            self.detector.count,
        )
        return summary

    def _summary(self, stopped_by: str) -> dict:
        counters = self.decoding.counters
        unscored = 0
        while True:  # segments still queued when a stop was requested
            try:
                unscored += isinstance(self.decoding.queue.get_nowait(), LiveSegment)
            except queue.Empty:
                break
        elapsed = time.time() - self.started
        return {
            "run": str(self.record.folder),
            "source": self.source_text,
            "stopped_by": stopped_by,
            "started": wall_text(self.started),
            "seconds": round(elapsed, 3),
            "threshold": dataclasses.asdict(self.threshold),
            "settings": dataclasses.asdict(self.settings),
            "batch_size": self.batch_size,
            "max_queued": self.max_queued,
            **dataclasses.asdict(counters),
            "scored_segments": self.scored,
            "unscored_at_stop": unscored,
            "reconnects": self.source.reconnects,
            "events": self.detector.count,
            "latency_s": percentiles(self.latencies),
            "segments_per_s": round(self.scored / elapsed, 3) if elapsed > 0 else None,
            "clip_buffer_capped": bool(self.ring is not None and self.ring.capped),
        }


def watch(
    run: str | Path,
    source: str,
    out_dir: str | Path,
    settings: WatchSettings | None = None,
    *,
    weights: str | Path | None = None,
    device: str = "auto",
    extractor=None,
    stop: threading.Event | None = None,
) -> dict:
    """Watch `source` (stream URL, camera, file) with the trained `run`, writing into `out_dir`
    (see the module docstring); returns the summary (also in out_dir/summary.json).

    weights: the extractor weights if not where the run recorded them (sha256 checked).
    extractor: an already built extractor (its weights' sha256 and preprocessing must be the
    run's), instead of building the run's. stop: set it to end watching cleanly.
    """
    watcher = Watcher(
        run,
        source,
        out_dir,
        settings or WatchSettings(),
        weights=weights,
        device=device,
        extractor=extractor,
        stop=stop,
    )
    return watcher.run()
