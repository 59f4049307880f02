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
    """scores.csv, one row per scored segment, flushed as written."""

    def __init__(self, path: Path, smoothed: bool):
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


class StatusLine:
    """fps in, segments/s scored, latency, drops, alerts: a carriage-return line on a terminal,
    a log line every `log_every_s` otherwise."""

    def __init__(self, stream=None, interval_s: float = 1.0, log_every_s: float = 10.0):
        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.interval_s = interval_s if self.tty else log_every_s
        self._last = (time.monotonic(), 0, 0)
        self._shown = False

    def update(self, counters: Counters, scored: int, latency: float | None, alerts: int, reconnects: int) -> None:
        now = time.monotonic()
        then, frames, segments = self._last
        if now - then < self.interval_s:
            return
        self._last = (now, counters.frames, scored)
        shown_latency = latency if latency is not None else float("nan")
        text = (
            f"in {(counters.frames - frames) / (now - then):5.1f} fps | "
            f"scored {(scored - segments) / (now - then):4.2f} seg/s | latency {shown_latency:5.2f} s | dropped "
            f"{counters.dropped_frames} frames ({counters.dropped_segments} segments) | alerts {alerts} | "
            f"reconnects {reconnects}"
        )
        if self.tty:
            self.stream.write("\r" + text + " " * 4)
            self.stream.flush()
            self._shown = True
        else:
            log.info("watch: %s", text)

    def end(self) -> None:
        if self._shown:
            self.stream.write("\n")
            self.stream.flush()
