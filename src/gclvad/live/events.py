"""What the alerts of `gclvad watch` leave behind: events.jsonl, and each event's plot and clip.

events.jsonl gets one JSON line when an alert opens (so a reader tailing the file learns of
it at once) and one when it is closed (start, end, peak; stream and wall times), appended and
flushed. The closed line is written once the event's files are complete: its score curve
events/event_NNNN.png (drawn from a bounded history of recent segment scores) and, when
clips are on, events/event_NNNN.mp4, which needs the frames up to `margin_s` seconds after
the closing and so is finished a little later (`gclvad.live.clips`).
"""

from __future__ import annotations

import collections
import json
import logging
from collections.abc import Callable
from pathlib import Path

from gclvad.evaluation.plots import plot_event_scores
from gclvad.live.alerts import Event, ScoredSegment
from gclvad.live.clips import ClipWriter

log = logging.getLogger(__name__)

EVENTS_FILE, EVENTS_FOLDER = "events.jsonl", "events"
_HISTORY_SEGMENTS = 4096  # scores kept for event plots (about 45 min of 16-frame segments at 25 fps)


class EventLog:
    """events.jsonl: one JSON object a line, flushed as written; each record is also handed to
    `tell` (the watch's listeners), once it is in the file."""

    def __init__(self, path: Path, tell: Callable[[dict], None] | None = None):
        self._file = open(path, "x")  # noqa: SIM115 (open while watching; see close)
        self._tell = tell

    def write(self, record: dict) -> None:
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()
        if self._tell is not None:
            self._tell(record)

    def close(self) -> None:
        self._file.close()


class EventOutputs:
    """The events log, plots and clips of one camera in `out_dir`; `ring` (a FrameRing, None
    without clips) holds the recent frames clips are cut from; `tell` hears every record."""

    def __init__(self, out_dir: Path, margin_s: float, ring=None, tell: Callable[[dict], None] | None = None):
        self.out_dir = Path(out_dir)
        self.margin_s = margin_s
        self.ring = ring
        (self.out_dir / EVENTS_FOLDER).mkdir(parents=True, exist_ok=True)
        self.log = EventLog(self.out_dir / EVENTS_FILE, tell)
        self.history: collections.deque = collections.deque(maxlen=_HISTORY_SEGMENTS)  # (start_s, end_s, value)
        self.clips: dict[int, tuple[Event, object]] = {}  # event number -> (event, ClipWriter) being written

    def _path(self, event: Event, suffix: str) -> Path:
        return self.out_dir / EVENTS_FOLDER / f"event_{event.number:04d}{suffix}"

    def scored(self, segment: ScoredSegment) -> None:
        self.history.append((segment.start_s, segment.end_s, segment.value))

    def opened(self, event: Event, fps: float) -> None:
        log.warning(
            "alert %d opened at frame %d (stream %.2f s): score %.4g above the threshold %.4g",
            event.number,
            event.start.first_frame,
            event.start.start_s,
            event.start.value,
            event.threshold,
        )
        self.log.write(event.record())
        if self.ring is not None:
            writer = ClipWriter(self._path(event, ".mp4"), event.start.start_s - self.margin_s, fps)
            self.clips[event.number] = (event, writer)

    def closed(self, event: Event, last: ScoredSegment) -> None:
        """An event was closed; `last`: the last segment scored (where a clip ends when the event
        was closed early)."""
        log.warning(
            "alert %d closed (%s): frames %d-%d, peak score %.4g",
            event.number,
            event.closed_by,
            event.start.first_frame,
            event.last_above.last_frame,
            event.peak.value,
        )
        entry = self.clips.get(event.number)
        if entry is None:
            self._write_closed(event, None)
            return
        closing = event.closed if event.closed is not None else last
        entry[1].until_s = closing.end_s + self.margin_s

    def pump(self, last: ScoredSegment | None, final: bool = False) -> None:
        """Encode the clip frames that became due (up to the last scored frame while an event is
        open); finish the clips that are complete (all of them when `final`)."""
        until = last.last_frame if last is not None else -1
        for number, (event, writer) in list(self.clips.items()):
            writer.pump(self.ring, until_index=None if final else until)
            if not event.is_open and (final or writer.complete()):
                del self.clips[number]
                self._write_closed(event, writer)

    def _write_closed(self, event: Event, writer) -> None:
        """The closed event's plot (and finished clip), then its line in the events log."""
        begin, end = event.start.start_s - self.margin_s, event.last_above.end_s + self.margin_s
        curve = [(start, stop, value) for start, stop, value in self.history if stop >= begin and start <= end]
        plot = self._path(event, ".png")
        span = (event.start.start_s, event.last_above.end_s)
        plot_event_scores(curve, event.threshold, span, plot, f"alert {event.number}")
        event.extra["plot"] = str(plot.relative_to(self.out_dir))
        if writer is not None:
            clip = writer.finish()
            event.extra.update(
                clip=str(clip.relative_to(self.out_dir)) if clip is not None else None,
                clip_frames=writer.frames,
                clip_start_s=None if writer.first_s is None else round(writer.first_s, 3),
                clip_end_s=None if writer.last_s is None else round(writer.last_s, 3),
                clip_missing_frames=writer.gaps,
            )
        self.log.write(event.record())

    def close(self) -> None:
        """Close the log; clips still unfinished (only after an error) are dropped."""
        for _, writer in self.clips.values():
            writer.abort()
        self.clips.clear()
        self.log.close()
