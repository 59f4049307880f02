"""Alerts on a stream of segment scores: causal smoothing, and events opened and closed with hysteresis.

The threshold they compare with comes from gclvad.live.calibration.

Smoothing. Live scoring may only look back: `CausalSmoother` is an exponentially weighted
mean over past segments. The raw segment scores are always kept beside it.

Events. An event opens on the first segment whose score is above the threshold and closes
once the score has stayed at or below it for `hold_s` seconds of stream time; its end is the
last segment above the threshold.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from gclvad.errors import GclvadError
from gclvad.evaluation.events import Alert

# ---------------------------------------------------------------- causal smoothing


class CausalSmoother:
    """Exponentially weighted mean of the scores so far, spanning about `span` segments
    (weight (1 - a)^k for the score k segments back, a = 2 / (span + 1)), normalised by the
    weights so far, so the first values are not pulled towards 0 (pandas'
    `ewm(span=span, adjust=True).mean()`). span 1 returns the scores unchanged."""

    def __init__(self, span: int):
        if span < 1:
            raise GclvadError(f"smoothing span must be at least 1 segment; got {span}")
        self.decay = 1.0 - 2.0 / (span + 1.0)
        self._weighted_sum = 0.0
        self._weights = 0.0

    def __call__(self, value: float) -> float:
        self._weighted_sum = value + self.decay * self._weighted_sum
        self._weights = 1.0 + self.decay * self._weights
        return self._weighted_sum / self._weights


# ---------------------------------------------------------------- events


@dataclass(frozen=True)
class ScoredSegment:
    """One scored segment as the event detector sees it (times: stream seconds and Unix seconds)."""

    index: int
    first_frame: int
    last_frame: int
    start_s: float
    end_s: float
    first_arrival: float  # when its first frame was decoded
    scored: float  # when its score was known
    value: float  # the score alerts look at (smoothed when smoothing is on)


@dataclass
class Event:
    """An alert: opened on `start`, last above the threshold on `last_above`."""

    number: int
    threshold: float
    start: ScoredSegment
    last_above: ScoredSegment
    peak: ScoredSegment
    closed: ScoredSegment | None = None  # the segment that closed it (None: open, or closed by `closed_by`)
    closed_at: float | None = None  # Unix time of the closing
    closed_by: str | None = None  # "hold", or why it was closed early ("stop", "stream lost", ...)
    extra: dict = field(default_factory=dict)  # what the watcher adds (clip, plot paths)

    @property
    def is_open(self) -> bool:
        return self.closed_by is None

    def record(self) -> dict:
        """One line of the events log."""
        out = {
            "event": self.number,
            "state": "open" if self.is_open else "closed",
            "threshold": self.threshold,
            "start_frame": self.start.first_frame,
            "start_s": round(self.start.start_s, 3),
            "start_arrival": round(self.start.first_arrival, 3),
            "opened_at": round(self.start.scored, 3),
            "peak_score": self.peak.value,
            "peak_frame": self.peak.first_frame,
        }
        if not self.is_open:
            out.update(
                end_frame=self.last_above.last_frame,
                end_s=round(self.last_above.end_s, 3),
                closed_at=round(self.closed_at, 3),
                closed_by=self.closed_by,
            )
        return {**out, **self.extra}


class EventDetector:
    """Hysteresis on segment scores: open above `threshold`, close after `hold_s` seconds of
    stream time at or below it."""

    def __init__(self, threshold: float, hold_s: float, first_number: int = 1):
        if hold_s < 0:
            raise GclvadError(f"the alert hold time must be >= 0 seconds; got {hold_s}")
        self.threshold = float(threshold)
        self.hold_s = float(hold_s)
        self.current: Event | None = None
        self.count = 0  # events opened so far
        self._next_number = first_number

    def update(self, segment: ScoredSegment) -> tuple[Event | None, Event | None]:
        """(event opened by this segment, event closed by it); either may be None."""
        event = self.current
        above = segment.value > self.threshold
        if event is None:
            if not above:
                return None, None
            self.current = Event(self._next_number, self.threshold, segment, segment, segment)
            self._next_number += 1
            self.count += 1
            return self.current, None
        if above:
            event.last_above = segment
            if segment.value > event.peak.value:
                event.peak = segment
            return None, None
        if segment.end_s - event.last_above.end_s >= self.hold_s:
            return None, self._close(segment, segment.scored, "hold")
        return None, None

    def close(self, reason: str, when: float) -> Event | None:
        """Close the open event early (stop, stream lost, end of stream); None if none is open."""
        if self.current is None:
            return None
        return self._close(None, when, reason)

    def _close(self, segment: ScoredSegment | None, when: float, reason: str) -> Event:
        event = self.current
        event.closed, event.closed_at, event.closed_by = segment, when, reason
        self.current = None
        return event


# ---------------------------------------------------------------- alerts of a recorded video


def replay_alerts(
    segment_scores, segment_length: int, frames: int, fps: float, threshold: float, hold_s: float, smooth_segments=0
) -> list[Event]:
    """The events `gclvad watch` would raise on a video whose consecutive segments scored
    `segment_scores`: the same smoother and detector, stream time from the frame rate, and
    the event still open at the video's end closed there ("end of stream")."""
    if fps <= 0:
        raise GclvadError(f"replaying alerts needs the video's frame rate; got {fps}")
    detector = EventDetector(threshold, hold_s)
    smoother = CausalSmoother(smooth_segments) if smooth_segments > 1 else None
    events, segment = [], None
    for index, value in enumerate(np.asarray(segment_scores, dtype=np.float64).reshape(-1)):
        first = index * segment_length
        last = min(first + segment_length, frames) - 1
        alerting = smoother(float(value)) if smoother is not None else float(value)
        segment = ScoredSegment(
            index, first, last, first / fps, (last + 1) / fps, (last + 1) / fps, (last + 1) / fps, alerting
        )
        _, closed = detector.update(segment)
        events += [closed] if closed is not None else []
    final = detector.close("end of stream", segment.scored if segment is not None else 0.0)
    return events + ([final] if final is not None else [])


def alert_of(event: Event) -> Alert:
    """The span an event alerted, and the frame that had arrived when it was raised."""
    return Alert(event.start.first_frame, event.last_above.last_frame, event.start.last_frame)
