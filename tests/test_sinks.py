"""Event sinks (gclvad.live.sinks, mqtt, outbox) against real receivers on 127.0.0.1: a
Mosquitto broker (tests/mosquitto_broker.py), an HTTP receiver in a subprocess, a command.
Receivers are killed between deliveries and brought back; every event must then arrive once,
in order. The sinks are driven as the watcher drives them: event(camera, record) with
Event.record() output, then close()."""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import threading
import time
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from mosquitto_broker import TEST_PASSWORD, TEST_USER, Broker, free_tcp_port, mosquitto_binary, port_open

from gclvad.cli.main import main
from gclvad.errors import GclvadError
from gclvad.live import outbox as outbox_module
from gclvad.live.alerts import Event, ScoredSegment
from gclvad.live.mqtt import MqttSink
from gclvad.live.outbox import BackOff, wait_until
from gclvad.live.sinks import WebhookSink, add_sink_options, sinks_from_args, sinks_from_config

CAMERA = "gate 1"  # a space: the topic level becomes gate_1
FAST = {"backoff": BackOff(first_s=0.05, most_s=0.2)}  # retries within a test's patience
T0 = 1_700_000_000.0


def event_records(first: int, last: int) -> list[dict]:
    """Open and closed records of events first..last, as the watcher makes them."""
    records = []
    for number in range(first, last + 1):
        start = ScoredSegment(
            number * 10, number * 160, number * 160 + 15, number * 6.4, number * 6.4 + 0.64, T0, T0 + number, 0.9
        )
        event = Event(number, 0.5, start, start, start)
        records.append(event.record())
        event.closed_at, event.closed_by = T0 + number + 3, "hold"
        event.extra["plot"] = f"events/event_{number:04d}.png"
        records.append(event.record())
    return records


def ids(records: list[dict], camera: str = CAMERA) -> list[str]:
    return [f"{camera}/{r['event']}/{r['state']}/{round(r['opened_at'] * 1000)}" for r in records]


# ---------------------------------------------------------------- MQTT

needs_mosquitto = pytest.mark.skipif(
    mosquitto_binary() is None, reason="mosquitto not installed (bash .ci/install-mosquitto.sh installs it)"
)


class Subscriber:
    """The test's MQTT client: every message under `prefix`, resubscribing after reconnections."""

    def __init__(self, port: int, topics: str):
        self.messages: list[tuple[str, bytes, bool]] = []
        self.subscribed = threading.Event()
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2)
        self.client.username_pw_set(TEST_USER, TEST_PASSWORD)  # let in by a gated broker too
        self.client.reconnect_delay_set(min_delay=1, max_delay=1)
        self.client.on_connect = lambda client, *_: client.subscribe(topics, qos=1)
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        self.client.on_disconnect = lambda *_: self.subscribed.clear()
        self.client.on_message = lambda _c, _u, message: self.messages.append(
            (message.topic, message.payload, message.retain)
        )
        self.client.connect_async("127.0.0.1", port)
        self.client.loop_start()
        assert self.subscribed.wait(10), "test subscriber could not subscribe"

    def payloads(self, topic: str) -> list:
        return [payload for name, payload, _ in self.messages if name == topic]

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def retained(port: int, topic: str) -> bytes | None:
    """What a client subscribing now gets as the retained message of `topic`."""
    late = Subscriber(port, topic)
    wait_until(lambda: late.messages, timeout_s=2.0)
    late.stop()
    return late.messages[0][1] if late.messages else None


@pytest.fixture
def broker(tmp_path):
    started = Broker(tmp_path / "broker", free_tcp_port())
    yield started
    started.stop()


@pytest.mark.mqtt
@needs_mosquitto
def test_mqtt_events_arrive_once_in_order_across_a_broker_restart(broker, tmp_path):
    broker.start()
    subscriber = Subscriber(broker.port, "cams/#")
    sink = MqttSink(f"mqtt://127.0.0.1:{broker.port}/cams", tmp_path / "out", **FAST).start()
    event_topic = "cams/gate_1/event"
    before, during, after = event_records(1, 2), event_records(3, 4), event_records(5, 5)[:1]

    for record in before:
        sink.event(CAMERA, record)
    assert wait_until(lambda: len(subscriber.payloads(event_topic)) == len(before), 10)
    assert wait_until(lambda: not sink.outbox.pending(), 5)

    # killed between deliveries: nothing is in flight, so nothing can arrive twice
    broker.stop()
    assert wait_until(lambda: not sink.connected, 5)
    for record in during:
        sink.event(CAMERA, record)
    assert wait_until(lambda: sink.delivery.backoff.failures >= 3, 5)
    assert len(sink.outbox.pending()) == len(during)

    # back on the same port, first for the test's subscriber only, then for the sink
    broker.gate()
    assert subscriber.subscribed.wait(10)
    broker.open()
    for record in after:
        sink.event(CAMERA, record)
    expected = before + during + after
    assert wait_until(lambda: len(subscriber.payloads(event_topic)) >= len(expected), 20)
    sink.close()
    time.sleep(0.3)  # a duplicate would come within this
    subscriber.stop()

    got = [json.loads(payload) for payload in subscriber.payloads(event_topic)]
    assert [message["id"] for message in got] == ids(expected)
    assert got[-1] == {**after[-1], "camera": CAMERA, "id": ids(after)[-1]}
    states = subscriber.payloads("cams/gate_1/state")
    assert states == [b"on" if r["state"] == "open" else b"off" for r in expected]
    assert retained(broker.port, "cams/gate_1/state") == b"on"  # event 5 is still open
    assert retained(broker.port, "cams/availability") == b"offline"  # the sink said goodbye
    discovery = json.loads(retained(broker.port, "homeassistant/binary_sensor/cams_gate_1/config"))
    assert discovery["state_topic"] == "cams/gate_1/state" and discovery["availability_topic"] == "cams/availability"
    assert not sink.outbox.pending()


@pytest.mark.mqtt
@needs_mosquitto
def test_an_unreachable_broker_is_a_warning_and_the_outbox_waits_for_it(broker, tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        sink = MqttSink(f"mqtt://127.0.0.1:{broker.port}/cams?discovery=off", tmp_path / "out", **FAST).start()
    assert f"MQTT broker 127.0.0.1:{broker.port} not reachable yet" in caplog.text
    records = event_records(1, 1)
    for record in records:
        sink.event(CAMERA, record)
    time.sleep(0.5)
    assert len(sink.outbox.pending()) == 2
    broker.start()
    subscriber = Subscriber(broker.port, "cams/#")
    assert wait_until(lambda: not sink.outbox.pending(), 15)  # paho reconnects within its 1 s delay
    sink.close()
    assert retained(broker.port, "cams/gate_1/state") == b"off"
    subscriber.stop()


# ---------------------------------------------------------------- webhook

RECEIVER = """
import http.server, json, sys
log, failures = sys.argv[2], [int(sys.argv[3])]
class Hook(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if failures[0] > 0:  # a receiver that is up but not well yet
            failures[0] -= 1
            self.send_response(503); self.end_headers(); return
        with open(log, "a") as out:
            out.write(json.dumps({"key": self.headers["Idempotency-Key"], "body": json.loads(body)}) + "\\n")
        self.send_response(204); self.end_headers()
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Hook).serve_forever()
"""


class Receiver:
    """An HTTP receiver in a subprocess, appending every POST it accepts to `log`."""

    def __init__(self, port: int, log: Path):
        self.port, self.log, self.process = port, log, None

    def start(self, failures: int = 0) -> Receiver:
        self.process = subprocess.Popen([sys.executable, "-c", RECEIVER, str(self.port), str(self.log), str(failures)])
        assert wait_until(lambda: port_open(self.port), 10), "receiver did not start"
        return self

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(timeout=10)

    def received(self) -> list[dict]:
        return [json.loads(line) for line in self.log.read_text().splitlines()] if self.log.exists() else []


@pytest.fixture
def receiver(tmp_path):
    started = Receiver(free_tcp_port(), tmp_path / "received.jsonl")
    yield started
    if started.process is not None and started.process.poll() is None:
        started.kill()


def test_webhook_events_arrive_once_in_order_after_the_receiver_returns(receiver, tmp_path):
    receiver.start()
    sink = WebhookSink(f"http://127.0.0.1:{receiver.port}/hook", tmp_path / "out", timeout_s=2, **FAST).start()
    before, during = event_records(1, 1), event_records(2, 3)
    for record in before:
        sink.event(CAMERA, record)
    assert wait_until(lambda: len(receiver.received()) == len(before) and not sink.outbox.pending(), 10)

    receiver.kill()
    for record in during:
        sink.event(CAMERA, record)
    assert wait_until(lambda: sink.delivery.backoff.failures >= 3, 5)
    receiver.start(failures=2)  # and it answers 503 twice before it takes them
    assert wait_until(lambda: len(receiver.received()) >= len(before + during) and not sink.outbox.pending(), 15)
    sink.close()

    got = receiver.received()
    assert [entry["body"]["id"] for entry in got] == ids(before + during)
    assert [entry["key"] for entry in got] == ids(before + during)
    assert got[1]["body"] == {**before[1], "camera": CAMERA, "id": ids(before)[1]}


def test_records_left_by_a_closed_sink_go_first_with_the_next_sink_on_the_folder(receiver, tmp_path, monkeypatch):
    monkeypatch.setattr(outbox_module, "CLOSE_TIMEOUT_S", 0.3)
    url, out = f"http://127.0.0.1:{receiver.port}/hook", tmp_path / "out"
    earlier, later = event_records(1, 2), event_records(3, 3)
    first = WebhookSink(url, out, timeout_s=1, **FAST).start()  # nobody listens yet
    for record in earlier:
        first.event(CAMERA, record)
    first.close()
    assert len(first.outbox.pending()) == len(earlier)

    receiver.start()
    second = WebhookSink(url, out, timeout_s=1, **FAST)
    assert second.outbox.folder == first.outbox.folder
    for record in later:  # before its thread starts: the earlier watch's records still go first
        second.event(CAMERA, record)
    second.start()
    assert wait_until(lambda: not second.outbox.pending(), 10)
    second.close()
    assert [entry["key"] for entry in receiver.received()] == ids(earlier + later)


# ---------------------------------------------------------------- command

FLAKY_COMMAND = (
    "import pathlib, sys, time; tries = pathlib.Path(sys.argv[1]); "
    "n = len(tries.read_text()) if tries.exists() else 0; "
    "tries.write_text('x' * (n + 1)); "
    "time.sleep(5) if n % 3 == 0 else None; sys.exit(7) if n % 3 == 1 else None; "  # a timeout, then an error
    "open(sys.argv[2], 'a').write(sys.stdin.read() + chr(10))"
)


def test_a_command_that_times_out_or_fails_is_retried_until_it_succeeds(tmp_path, caplog):
    tries, received = tmp_path / "tries", tmp_path / "received.jsonl"
    command = [sys.executable, "-c", FLAKY_COMMAND, str(tries), str(received)]
    (sink,) = sinks_from_config([{"command": command, "timeout_s": 0.5}], tmp_path / "out")
    sink.delivery.backoff = BackOff(first_s=0.05, most_s=0.1)
    records = event_records(1, 1)
    with caplog.at_level(logging.WARNING, logger="gclvad.live.outbox"):
        for record in records:
            sink.event(CAMERA, record)
        assert wait_until(lambda: not sink.outbox.pending(), 20)
        sink.close()
    got = [json.loads(line) for line in received.read_text().splitlines()]
    assert [message["id"] for message in got] == ids(records)
    assert len(tries.read_text()) == 6  # three tries for each record
    assert "still running after 0.5 s; killed" in caplog.text and "exited with status 7" in caplog.text


# ---------------------------------------------------------------- bad input


def parse(*options: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_sink_options(parser)
    return parser.parse_args(list(options))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (("--mqtt", "http://127.0.0.1/cams"), "expected mqtt://HOST[:PORT]/PREFIX, not scheme 'http'"),
        (("--mqtt", "mqtt://127.0.0.1:99999/cams"), "bad port"),
        (("--mqtt", "mqtt://127.0.0.1:port/cams"), "bad port"),
        (("--mqtt", "mqtt://127.0.0.1:1883"), "expected a topic prefix"),
        (("--mqtt", "mqtt://127.0.0.1/cams/#"), "expected a topic prefix"),
        (("--mqtt", "mqtt://127.0.0.1/cams?retain=1"), "unknown option retain"),
        (("--webhook", "ftp://127.0.0.1/hook"), "expected an http:// or https:// URL, not 'ftp'"),
        (("--webhook", "http://:8080/hook"), "no host name"),
        (("--webhook", "http://127.0.0.1:70000/hook"), "bad port"),
        (("--on-event", ""), "an event command is empty"),
        (("--on-event", "  "), "an event command is empty"),
        (("--on-event", "'unclosed"), "cannot be split"),
        (("--on-event", "no-such-program-gclvad --x"), "'no-such-program-gclvad' is no program found on PATH"),
    ],
)
def test_bad_sink_options_are_refused_with_what_is_wrong(options, message, tmp_path):
    good = ("--webhook", "http://127.0.0.1:9/hook")  # a good sink before the bad one starts nothing
    with pytest.raises(GclvadError) as caught:
        sinks_from_args(parse(*good, *options), tmp_path / "out")
    assert message in str(caught.value)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ({"webhook": "http://x/"}, "expected a list of sinks"),
        (["http://x/"], "sinks entry 1: expected a mapping"),
        ([{"webhook": "http://x/", "mqtt": "mqtt://x/t"}], "sinks entry 1: expected exactly one of"),
        ([{"command": "true"}, {"smtp": "x"}], "sinks entry 2: expected exactly one of"),
        ([{"webhook": "http://x/", "timeout_s": -1}], "timeout_s must be a positive number"),
        ([{"webhook": 5}], "webhook must be a string"),
    ],
)
def test_bad_sinks_in_a_camera_file_are_refused(entries, message, tmp_path):
    with pytest.raises(GclvadError) as caught:
        sinks_from_config(entries, tmp_path / "out")
    assert message in str(caught.value)


def test_watch_refuses_a_bad_sink_before_it_opens_the_run(tmp_path, capsys):
    status = main(
        ["watch", str(tmp_path / "no-run"), "udp://@:5000", "-o", str(tmp_path / "w"), "--mqtt", "http://h/t"]
    )
    assert status == 2
    assert "--mqtt 'http://h/t': expected mqtt://" in capsys.readouterr().err
