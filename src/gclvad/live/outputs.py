"""What `gclvad watch` writes for every segment, and the status line it shows.

scores.csv (one row per scored segment), like events.jsonl (`gclvad.live.events`), is the log
of a stream without end: it is appended and flushed line by line, so a reader (or a crash)
sees every line written so far, whole. Both are opened in exclusive mode: an earlier watch's
logs are never written over. The status line goes to stderr: a carriage-return line on a
terminal, a log line every few seconds otherwise.
"""

from __future__ import annotations

import csv
import datetime
import logging
import sys
import time
from pathlib import Path

import numpy as np

from gclvad.errors import GclvadError
from gclvad.live.events import EVENTS_FILE
from gclvad.live.segments import Counters, LiveSegment

log = logging.getLogger(__name__)

SCORES_FILE, SUMMARY_FILE = "scores.csv", "summary.json"


def wall_text(unix: float) -> str:
    return datetime.datetime.fromtimestamp(unix, datetime.UTC).isoformat(timespec="milliseconds")


class ScoreLog:
    """scores.csv, one row per scored segment, flushed as written (with a column "density" for
    an ensemble with a second opinion, gclvad.scoring.density)."""

    def __init__(self, path: Path, smoothed: bool, density: bool = False):
        self.columns = [
            "segment",
            "first_frame",
            "last_frame",
            "stream_start_s",
            "stream_end_s",
            "wall_time",
            "unix_time",
            "latency_s",
            "score",
            "d",
            "g",
            *(["density"] if density else []),
            *(["smoothed"] if smoothed else []),
            "alert",
        ]
        self._file = open(path, "x", newline="")  # noqa: SIM115 (open while watching; see close)
        self._writer = csv.writer(self._file)
        self._writer.writerow(self.columns)
        self._file.flush()

    def write(self, segment: LiveSegment, scored: float, scores: dict, alert: int) -> None:
        # 9 significant digits: a float32 score reads back exactly.
        values = [f"{scores[name]:.9g}" if name in scores else "" for name in self.columns[8:-1]]
        self._writer.writerow(
            [
                segment.index,
                segment.first_frame,
                segment.last_frame,
                f"{segment.start_s:.3f}",
                f"{segment.end_s:.3f}",
                wall_text(scored),
                f"{scored:.3f}",
                f"{scored - segment.last_arrival:.3f}",
                *values,
                alert,
            ]
        )
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def refuse_earlier_watch(out_dir: Path) -> None:
    """Never write over an earlier watch's logs."""
    earlier = [name for name in (SCORES_FILE, EVENTS_FILE, SUMMARY_FILE) if (out_dir / name).exists()]
    if earlier:
        raise GclvadError(
            f"{out_dir} already holds {', '.join(earlier)} of an earlier watch; pass another -o folder "
            "(or move those files away) so they are not overwritten"
        )


def percentiles(values) -> dict:
    if not len(values):
        return {}
    p50, p95 = np.percentile(np.asarray(values), [50, 95])
    return {"p50": round(float(p50), 3), "p95": round(float(p95), 3), "max": round(float(max(values)), 3)}


class StatusMeter:
    """A camera's status, about once a second: what listeners hear and the status line shows."""

    def __init__(self, interval_s: float = 1.0):
        self.interval_s = interval_s
        self._last = (time.monotonic(), 0, 0)  # (when, frames, scored segments) at the last status

    def measure(
        self,
        counters: Counters,
        scored: int,
        latency: float | None,
        alert: int,
        events: int,
        reconnects: int,
        fps: float,
    ) -> dict | None:
        """The status if `interval_s` has passed since the last one, else None."""
        now = time.monotonic()
        then, frames, segments = self._last
        if now - then < self.interval_s:
            return None
        self._last = (now, counters.frames, scored)
        return {
            "frames": counters.frames,
            "fps_in": round((counters.frames - frames) / (now - then), 2),
            "fps": round(fps, 3),
            "scored_segments": scored,
            "segments_per_s": round((scored - segments) / (now - then), 3),
            "dropped_segments": counters.dropped_segments,
            "dropped_frames": counters.dropped_frames,
            "reconnects": reconnects,
            "latency_s": None if latency is None else round(latency, 3),
            "alerting": alert > 0,
            "alert": alert,  # the open event's number, 0 when none is open
            "events": events,
        }


class StatusLine:
    """fps in, segments/s scored, latency, drops, alerts: a carriage-return line on a terminal
    for a single camera, a log line every `log_every_s` otherwise (and for each camera of several,
    named by `label`, whose lines would overwrite each other)."""

    def __init__(self, stream=None, label: str = "", log_every_s: float = 10.0):
        self.stream = stream or sys.stderr
        self.label = label
        self.tty = not label and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.log_every_s = log_every_s
        self._logged = time.monotonic()
        self._shown = False

    def show(self, status: dict) -> None:
        latency = status["latency_s"] if status["latency_s"] is not None else float("nan")
        text = (
            f"in {status['fps_in']:5.1f} fps | scored {status['segments_per_s']:4.2f} seg/s | latency "
            f"{latency:5.2f} s | dropped {status['dropped_frames']} frames ({status['dropped_segments']} "
            f"segments) | alerts {status['events']} | reconnects {status['reconnects']}"
        )
        if self.tty:
            self.stream.write("\r" + text + " " * 4)
            self.stream.flush()
            self._shown = True
            return
        now = time.monotonic()
        if now - self._logged >= self.log_every_s:
            self._logged = now
            log.info("watch%s: %s", f" {self.label}" if self.label else "", text)

    def end(self) -> None:
        if self._shown:
            self.stream.write("\n")
            self.stream.flush()
