"""Event-level evaluation of alerts against frame ground truth: what a monitor is judged by.

Frame AUC ranks frames; a monitor raises alerts, and a person asks of it whether every
event was alerted, how often it alerts on nothing, and how late. On labelled data (for
development and reporting only: nothing is tuned on a labelled test set):

    events            ground-truth events: maximal runs of anomalous frames of a video
    event_recall      share of events overlapped by at least one alert
    false_alarms      alerts that overlap no event
    false_alarms_per_hour   false alarms per hour of normal footage (frames outside events)
    latency_s         per alerted event, from its first frame to the moment the first alert
                      overlapping it was raised (`raised_frame`: the alert can only be raised
                      once the segment that crossed the threshold has arrived), 0 when that
                      alert was already open; reported as median and max

An alert is (first_frame, last_frame, raised_frame), frames of its video, inclusive.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from gclvad.errors import GclvadError


@dataclass(frozen=True)
class Alert:
    first_frame: int
    last_frame: int
    raised_frame: int  # the last frame that had arrived when the alert was raised


def truth_events(truth) -> list[tuple[int, int]]:
    """(first, last) frames, inclusive, of every maximal run of anomalous frames."""
    truth = np.asarray(truth, dtype=bool).reshape(-1)
    edges = np.diff(np.concatenate([[False], truth, [False]]).astype(np.int8))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1
    return [(int(s), int(e)) for s, e in zip(starts, ends, strict=True)]


def _overlaps(alert: Alert, event: tuple[int, int]) -> bool:
    return alert.first_frame <= event[1] and alert.last_frame >= event[0]


def event_metrics(
    alerts: Mapping[str, Sequence[Alert]], truths: Mapping[str, np.ndarray | None], fps: Mapping[str, float]
) -> dict:
    """Event recall, false alarms (per hour of normal footage) and latency of `alerts` on the
    videos that have ground truth (see the module docstring); fps: each video's frame rate."""
    videos = sorted(v for v in alerts if truths.get(v) is not None)
    if not videos:
        raise GclvadError("event metrics need videos with frame ground truth; none of the alerted videos has any")
    events = alerted = false_alarms = 0
    normal_seconds, latencies = 0.0, []
    for video in videos:
        rate = float(fps.get(video) or 0.0)
        if rate <= 0:
            raise GclvadError(f"video {video}: event metrics need its frame rate, found {fps.get(video)!r}")
        truth = np.asarray(truths[video], dtype=bool).reshape(-1)
        video_events = truth_events(truth)
        events += len(video_events)
        normal_seconds += float((~truth).sum()) / rate
        for event in video_events:
            hits = [alert for alert in alerts[video] if _overlaps(alert, event)]
            if hits:
                alerted += 1
                first = min(hits, key=lambda alert: alert.raised_frame)
                latencies.append(max(0, first.raised_frame + 1 - event[0]) / rate)
        false_alarms += sum(not any(_overlaps(alert, e) for e in video_events) for alert in alerts[video])
    hours = normal_seconds / 3600.0
    return {
        "videos": len(videos),
        "events": events,
        "alerted_events": alerted,
        "event_recall": alerted / events if events else None,
        "alerts": sum(len(alerts[video]) for video in videos),
        "false_alarms": false_alarms,
        "normal_hours": round(hours, 6),
        "false_alarms_per_hour": false_alarms / hours if hours > 0 else None,
        "latency_s_median": float(np.median(latencies)) if latencies else None,
        "latency_s_max": float(np.max(latencies)) if latencies else None,
    }
