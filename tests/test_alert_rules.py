"""Label-free alert thresholds, alerts replayed on recorded scores, and event-level metrics."""

import numpy as np
import pytest

from gclvad.errors import GclvadError
from gclvad.evaluation.events import Alert, event_metrics, truth_events
from gclvad.live.alerts import replay_alerts
from gclvad.live.threshold import mixture_split, otsu_split, rule_threshold
from gclvad.scoring.quantiles import score_quantiles


def test_truth_events_are_the_runs_of_anomalous_frames():
    truth = np.zeros(30, bool)
    truth[3:7] = truth[20:30] = True
    assert truth_events(truth) == [(3, 6), (20, 29)]
    assert truth_events(np.zeros(5, bool)) == []


def test_event_metrics_count_recall_false_alarms_per_normal_hour_and_latency():
    truth = np.zeros(100, bool)
    truth[10:20] = truth[50:60] = True  # two events in 100 frames at 10 fps: 8 s of normal footage
    alerts = {
        "a": [Alert(14, 25, raised_frame=15), Alert(80, 90, raised_frame=81)],
        "b": [Alert(0, 4, raised_frame=4)],  # an all-normal video: a false alarm
    }
    metrics = event_metrics(alerts, {"a": truth, "b": np.zeros(40, bool)}, {"a": 10.0, "b": 10.0})
    assert metrics["events"] == 2 and metrics["alerted_events"] == 1 and metrics["event_recall"] == 0.5
    assert metrics["false_alarms"] == 2
    assert metrics["false_alarms_per_hour"] == pytest.approx(2 / ((80 + 40) / 10 / 3600))
    assert metrics["latency_s_median"] == pytest.approx((15 + 1 - 10) / 10)  # raised once frame 15 arrived
    with pytest.raises(GclvadError, match="frame rate"):
        event_metrics(alerts, {"a": truth}, {"a": 0.0})


def test_replayed_alerts_open_above_the_threshold_and_close_after_the_hold():
    scores = [0, 0, 5, 6, 0, 0, 0, 0, 7]  # segments of 16 frames at 16 fps: one second each
    events = replay_alerts(scores, segment_length=16, frames=9 * 16 - 4, fps=16.0, threshold=1.0, hold_s=2.0)
    first, last = events
    assert (first.start.first_frame, first.last_above.last_frame, first.start.last_frame) == (32, 63, 47)
    assert first.closed_by == "hold" and first.closed.index == 5  # 2 s after segment 3 ended
    assert (last.start.index, last.closed_by, last.last_above.last_frame) == (8, "end of stream", 9 * 16 - 5)


def test_robust_rules_stay_below_the_contaminated_tail():
    rng = np.random.default_rng(0)
    normal = rng.normal(0.0, 1.0, 9500)
    scores = np.concatenate([normal, rng.normal(8.0, 0.5, 500)])  # 5 % anomalies among the training segments
    record = score_quantiles(scores, "d")
    assert rule_threshold(record, "quantile:0.99", "test").value > 7  # lands among the anomalies
    mad = rule_threshold(record, "mad:3", "test")
    assert 3.0 < mad.value < 3.6 and "robust standard deviations" in mad.origin
    assert 3.0 < otsu_split(np.asarray(record["distribution"])) < 6.5
    assert 2.5 < mixture_split(np.asarray(record["distribution"])) < 6.5
    with pytest.raises(GclvadError, match="no distribution"):
        rule_threshold({k: v for k, v in record.items() if k != "distribution"}, "mad:3", "old run")
    with pytest.raises(GclvadError, match="unknown threshold rule"):
        rule_threshold(record, "median", "test")
