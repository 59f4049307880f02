"""Where a watch's events go besides events.jsonl: MQTT, webhooks, commands (any combination).

A sink is a WatchListener (gclvad.live.listeners) that hears `event(camera, record)` for each
alert opening and closing, and sends one message per record:

    --mqtt mqtt://HOST[:PORT]/PREFIX   JSON on PREFIX/<camera>/event, retained on/off state
                                       (gclvad.live.mqtt has the topics); QoS 1
    --webhook http(s)://HOST/PATH      a JSON POST; header Idempotency-Key: the record's id
    --on-event 'CMD ARG ...'           CMD run (no shell) with the record as JSON on stdin

In a camera YAML file the same is a list: `sinks: [{mqtt: URL}, {webhook: URL}, {command: CMD}]`,
each entry with optional `timeout_s` (see sinks_from_config).

What is sent: the events.jsonl record plus `camera` and `id`, "<camera>/<event>/<state>/<ms>"
(ms: the event's opened_at in Unix milliseconds, so event numbers that start again at 1 in
a later watch give new ids). A 2xx answer, exit status 0 or an MQTT PUBACK confirms a record;
anything else (an error, a timeout) is retried with exponential back-off, in order.

Delivery guarantee: at-least-once, in order per sink. Each record is written to the sink's
outbox (OUT/outbox/<sink name>/, gclvad.live.outbox) before it is sent and deleted only
once confirmed, so a receiver that is down loses nothing and never holds up scoring; a
record whose confirmation was lost (a broker killed between PUBLISH and PUBACK, a webhook
that answered after the timeout, a crash before the delete) is sent again: receivers that
must see each event once drop repeated ids. With the receiver up, each record is sent once.

The outbox and the refusal to overwrite an earlier watch: gclvad.live.outputs refuses an
output folder that holds scores.csv, events.jsonl or summary.json. The outbox is none of
them, on purpose: it is a queue, not a log. A watch started on a folder whose logs were
moved away (what the refusal tells one to do) or whose watch crashed before writing them
delivers the earlier watch's undelivered records first. A sink's folder is named after its
kind and a hash of its target, so the same option on the next run finds the same outbox.
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import shutil
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from gclvad.errors import GclvadError
from gclvad.live.mqtt import MqttSink, mqtt_target
from gclvad.live.outbox import Sink

log = logging.getLogger(__name__)


class WebhookSink(Sink):
    """A JSON POST per record; a 2xx answer confirms it."""

    kind = "webhook"

    def __init__(self, target: str, out_dir: Path, **settings):
        super().__init__(webhook_url(target), out_dir, **settings)

    def send(self, message: dict) -> None:
        request = urllib.request.Request(
            self.target,
            data=json.dumps(message).encode(),
            method="POST",
            headers={"Content-Type": "application/json", "Idempotency-Key": message["id"]},
        )
        with urllib.request.urlopen(request, timeout=self.timeout_s) as answer:  # non-2xx raise HTTPError
            answer.read()
            if not 200 <= answer.status < 300:
                raise ConnectionError(f"{self.target} answered HTTP {answer.status}")


class CommandSink(Sink):
    """A command run per record, with the record as JSON on stdin; exit status 0 confirms it."""

    kind = "command"

    def __init__(self, target: str, out_dir: Path, **settings):
        self.argv = command_words(target)
        super().__init__(target, out_dir, **settings)

    def send(self, message: dict) -> None:
        try:
            done = subprocess.run(
                self.argv, input=json.dumps(message), text=True, capture_output=True, timeout=self.timeout_s
            )
        except subprocess.TimeoutExpired as error:  # run() killed it
            raise TimeoutError(f"{self.argv[0]} still running after {self.timeout_s:g} s; killed") from error
        if done.returncode != 0:
            raise RuntimeError(f"{self.argv[0]} exited with status {done.returncode}: {done.stderr.strip()[-300:]}")


# ---------------------------------------------------------------- checking what the user gave


def command_words(text) -> list[str]:
    """The argument list of an --on-event command (a string, split like a shell would, or a list)."""
    try:
        words = shlex.split(text) if isinstance(text, str) else [str(word) for word in text]
    except ValueError as error:
        raise GclvadError(f"event command {text!r} cannot be split into arguments: {error}") from error
    if not words:
        raise GclvadError("an event command is empty; give the program to run, e.g. --on-event 'notify-send alert'")
    if shutil.which(words[0]) is None:
        raise GclvadError(f"event command {text!r}: {words[0]!r} is no program found on PATH")
    return words


def webhook_url(text: str) -> str:
    parts = urllib.parse.urlsplit(text)
    if parts.scheme not in ("http", "https"):
        raise GclvadError(f"webhook {text!r}: expected an http:// or https:// URL, not {parts.scheme or 'none'!r}")
    if not parts.hostname:
        raise GclvadError(f"webhook {text!r}: no host name")
    try:
        parts.port  # noqa: B018 (urllib checks the port only when asked)
    except ValueError as error:
        raise GclvadError(f"webhook {text!r}: bad port ({error})") from error
    return text


# kind -> (the check of its target, raising GclvadError; its class)
SINK_KINDS = {
    "mqtt": (mqtt_target, MqttSink),
    "webhook": (webhook_url, WebhookSink),
    "command": (command_words, CommandSink),
}


def build_sinks(wanted: list[tuple[str, str, dict]], out_dir: Path) -> list[Sink]:
    """Sinks for (kind, target, settings) triples, started. Every target is checked before any
    sink is made, so a bad one fails before a good one has made its outbox or sent anything."""
    for kind, target, _ in wanted:
        SINK_KINDS[kind][0](target)
    sinks = [SINK_KINDS[kind][1](target, Path(out_dir), **settings) for kind, target, settings in wanted]
    return [sink.start() for sink in sinks]


# ---------------------------------------------------------------- the command line and camera files


def add_sink_options(parser: argparse.ArgumentParser) -> None:
    """Add --mqtt, --webhook and --on-event (each repeatable) to `gclvad watch`."""
    group = parser.add_argument_group("event sinks", "where events go besides OUT/events.jsonl (any combination)")
    group.add_argument(
        "--mqtt",
        action="append",
        default=[],
        metavar="mqtt://HOST[:PORT]/PREFIX",
        help="publish events (QoS 1) to PREFIX/<camera>/event and a retained on/off PREFIX/<camera>/state, with "
        "Home Assistant discovery; add ?discovery=off to leave it out (repeatable)",
    )
    group.add_argument(
        "--webhook",
        action="append",
        default=[],
        metavar="URL",
        help="POST each event as JSON (header Idempotency-Key: the event's id) to this http(s) URL (repeatable)",
    )
    group.add_argument(
        "--on-event",
        action="append",
        default=[],
        metavar="CMD",
        help="run this command (split like a shell would, run without one) with each event as JSON on stdin; "
        "a non-zero exit is retried (repeatable)",
    )


def sinks_from_args(args: argparse.Namespace, out_dir: Path) -> list[Sink]:
    """The sinks `gclvad watch`'s options ask for, started; GclvadError for bad input."""
    wanted = [("mqtt", url, {}) for url in args.mqtt]
    wanted += [("webhook", url, {}) for url in args.webhook]
    wanted += [("command", command, {}) for command in args.on_event]
    return build_sinks(wanted, out_dir)


def sinks_from_config(entries, out_dir: Path) -> list[Sink]:
    """The sinks of a camera file's `sinks:` list, started. Each entry is a mapping with one of
    mqtt / webhook / command (URL, URL, command string or argument list) and optionally
    timeout_s, e.g. `- {webhook: "https://example.org/hook", timeout_s: 5}`."""
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise GclvadError(f"sinks: expected a list of sinks, got {type(entries).__name__}")
    return build_sinks([_config_entry(number, entry) for number, entry in enumerate(entries, 1)], out_dir)


def _config_entry(number: int, entry) -> tuple[str, str, dict]:
    where = f"sinks entry {number}"
    if not isinstance(entry, dict):
        raise GclvadError(f"{where}: expected a mapping like {{webhook: URL}}, got {entry!r}")
    kinds = [key for key in entry if key in SINK_KINDS]
    unknown = sorted(set(entry) - set(SINK_KINDS) - {"timeout_s"})
    if len(kinds) != 1 or unknown:
        raise GclvadError(
            f"{where}: expected exactly one of {', '.join(SINK_KINDS)} (and optionally timeout_s), got {sorted(entry)}"
        )
    kind = kinds[0]
    target = entry[kind]
    if kind == "command" and isinstance(target, list):
        target = shlex.join(str(word) for word in target)
    if not isinstance(target, str):
        raise GclvadError(f"{where}: {kind} must be a string, got {target!r}")
    settings = {}
    if "timeout_s" in entry:
        timeout = entry["timeout_s"]
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
            raise GclvadError(f"{where}: timeout_s must be a positive number of seconds, got {timeout!r}")
        settings["timeout_s"] = float(timeout)
    return kind, target, settings
