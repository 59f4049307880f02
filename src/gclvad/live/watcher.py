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

import logging
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
from gclvad.live.camera_watch import CameraWatch
from gclvad.live.cameras import SINGLE_CAMERA, Camera, WatchSettings, cameras_of_sources, check_names
from gclvad.live.listeners import Listeners, WatchListener
from gclvad.live.outputs import (
    SUMMARY_FILE,
    refuse_earlier_watch,
    wall_text,
)
from gclvad.live.segments import LiveSegment
from gclvad.live.source import source_kind
from gclvad.live.threshold import run_threshold
from gclvad.scoring.run import open_run, read_run

log = logging.getLogger(__name__)

_IDLE_WAIT_S = 0.2  # how often an idle scorer looks at stop requests, clips and the status line
LIVE_ROWS = "<live>"  # the video name of the segments a watch scores


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
        precision: str | None = None,
        frame_step: int | None = None,
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
        self.score_rows = max(2, self.batch_size)  # segments in every scorer call (see _score)
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
        # one network for all cameras
        opened = open_run(
            record, weights=weights, device=device, extractor=extractor, precision=precision, frame_step=frame_step
        )
        self.record, self.extractor, self.scorer = opened.record, opened.extractor, opened.scorer
        self.has_density = getattr(self.scorer, "density", None) is not None  # its scores.csv then has a column more
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
                camera.start(self.record, self.extractor.preprocessing, self.wake, self.has_density)
                self.active.append(camera)
            stopped_by = self._loop()
        finally:
            try:
                for camera in self.active:  # all threads told at once: each finish waits for its own
                    camera.halt.set()
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
        # How segments happen to be batched (by timing, by other cameras) must never change a
        # score, yet on CPU a lone clip is computed by other kernels than two or more (its
        # features differ in the last bits), and the scorer's matrix products sum in an order
        # that depends on their row count. So a lone clip goes with a copy of itself, and the
        # scorer always gets `score_rows` segments (the batch, its last one repeated): the
        # networks are the cheap part. A segment's numbers are then its own, bit for bit.
        preprocessing = self.extractor.preprocessing
        clips = torch.stack([preprocessing.normalize(segment.frames) for _, segment in batch])
        if clips.ndim == 5 and len(clips) == 1:
            clips = clips.repeat(2, 1, 1, 1, 1)  # a real copy: a stride-0 batch takes other kernels again
        # (B, 3, T, h, w), or (B, C, 3, T, h, w) for C crops a segment: one extractor call for all
        # cameras' clips; the features (B, C, d) of C crops are then used as the run used them.
        features = self.extractor.extract(clips.reshape(-1, *clips.shape[-4:])).numpy()
        # Rounded to the stored dtype, as the run's own features and `gclvad score`'s were.
        features = features.astype(self.stored_dtype).astype(np.float32)
        if clips.ndim == 6:
            features = use_crops(features.reshape(len(clips), -1, features.shape[-1]), self.record.crops)
        padding = np.repeat(features[-1:], self.score_rows - len(features), axis=0)
        # Every segment is scored on its own (no smoothing across rows): mixing cameras is safe.
        # Named as no video can be (gclvad.datasets.base.VIDEO_ID_PATTERN): a camera is never one
        # of the training videos whose own segments an ensemble's density leaves out.
        values = self.scorer.segment_scores(single_video(np.concatenate([features, padding]), video=LIVE_ROWS))
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
    precision: str | None = None,
    frame_step: int | None = None,
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
    precision, frame_step: see gclvad.scoring.run.open_run (default: the run's).
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
        precision=precision,
        frame_step=frame_step,
    )
    return watcher.run()
