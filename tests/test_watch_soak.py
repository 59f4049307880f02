"""The soak benchmark (benchmarks/watch_soak.py) in its quick mode: two UDP cameras on 127.0.0.1
watched for a minute by one watch process delivering to a webhook receiver, with one stream
drop and one receiver outage. Every segment must be accounted for, every event delivered, the
outbox empty at the end and the memory not growing beyond a generous bound."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARK = Path(__file__).resolve().parents[1] / "benchmarks" / "watch_soak.py"


@pytest.mark.slow
def test_a_short_soak_accounts_for_every_segment_and_delivers_every_event(tmp_path):
    command = [sys.executable, str(BENCHMARK), "--minutes", "1", "--cameras", "2", "--work", str(tmp_path)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    results = list(tmp_path.glob("soak-*/result.json"))
    assert results, f"no result.json (exit {done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    result = json.loads(results[0].read_text())
    failed = [text for text, held in result["checks"].items() if not held]
    assert done.returncode == 0 and result["passed"] and not failed, f"{failed}\n{done.stdout[-4000:]}"

    cameras = {row["camera"]: row for row in result["cameras"]}
    assert set(cameras) == {"cam1", "cam2"}
    for row in cameras.values():
        assert row["segments"] == row["scored"] + row["dropped"] + row["unscored_at_stop"] > 0
        assert row["events_opened"] == row["events_closed"] > 0
        assert 0 <= row["frames_sent"] - row["frames_decoded"] < 100  # a few frames at each kill and at the stop
    assert cameras["cam1"]["drops_caused"] == 1 <= cameras["cam1"]["reconnects"]  # its sender was killed once
    assert cameras["cam2"]["drops_caused"] == 0

    # every record of events.jsonl reached the webhook, across its outage; the outbox filled and emptied
    assert result["records"] == sum(2 * row["events_opened"] for row in cameras.values())
    assert not result["missing"] and not result["unexpected"]
    assert result["received"] == result["records"] + sum(count - 1 for count in result["duplicates"].values())
    assert result["outbox_peak"] > 0 and result["outbox_left"] == 0
    assert result["rss_max_mib"] - result["rss_start_mib"] < 64
