"""A sink's on-disk outbox, the thread that empties it in order with back-off, and Sink, the
listener base class of gclvad.live.sinks that uses them.

Every record a sink is given is first written to its outbox folder, one file a record
(`000000000042.json`, numbered in arrival order): written to a hidden temporary file,
fsync'd, renamed into place and the folder fsync'd, so a record is either whole on disk or
absent, also after a crash or a power cut. Only then is delivery tried. The delivery thread
takes the lowest-numbered file, sends it, and deletes it once the receiver confirmed it;
until then it retries the same record with exponential back-off, so records arrive in order
and a sink that is down loses nothing: its outbox fills until the receiver is back. A new
Outbox on a folder that still holds records (an earlier watch stopped before they were
delivered) numbers on after them, so they are sent first.

The files are deleted only after the confirmation: a crash between the two sends that
record again (at-least-once; records carry ids so receivers can drop the duplicate).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from gclvad.atomic import write_json_atomic
from gclvad.live.listeners import WatchListener

log = logging.getLogger(__name__)

OUTBOX_FOLDER = "outbox"
DEFAULT_TIMEOUT_S = 10.0
CLOSE_TIMEOUT_S = 5.0  # how long a closing watch waits for its sinks to catch up
_DIGITS = 12
_TEMPORARY = ".writing"


def _fsync_folder(folder: Path) -> None:
    # a rename or an unlink is only durable once the folder entry is on disk too
    handle = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


class Outbox:
    """The records of one sink not yet confirmed by its receiver, one file each, in order."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        for stray in self.folder.glob(f"*{_TEMPORARY}"):  # a write cut short by a crash: never renamed, never due
            stray.unlink()
        waiting = self.pending()
        self._next_number = int(waiting[-1].stem) + 1 if waiting else 1
        self._lock = threading.Lock()

    def pending(self) -> list[Path]:
        """The records waiting, oldest first."""
        return sorted(self.folder.glob("[0-9]" * _DIGITS + ".json"))

    def put(self, record: dict) -> Path:
        """Write `record` durably; its file."""
        text = json.dumps(record)
        with self._lock:
            number, self._next_number = self._next_number, self._next_number + 1
        final = self.folder / f"{number:0{_DIGITS}d}.json"
        temporary = final.with_name(final.name + _TEMPORARY)
        with open(temporary, "w") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, final)
        _fsync_folder(self.folder)
        return final

    def acknowledge(self, path: Path) -> None:
        """The receiver confirmed the record in `path`: it is never sent again."""
        path.unlink()
        _fsync_folder(self.folder)


class BackOff:
    """Waits between failed attempts: `first_s`, doubled after each failure, at most `most_s`."""

    def __init__(self, first_s: float = 0.5, most_s: float = 30.0):
        self.first_s, self.most_s = first_s, most_s
        self.failures = 0

    def next_wait(self) -> float:
        self.failures += 1
        return min(self.most_s, self.first_s * 2 ** (self.failures - 1))

    def reset(self) -> None:
        self.failures = 0


class Delivery:
    """The thread that sends an outbox's records one by one with `send(record)`, which returns
    once the receiver confirmed it and raises otherwise."""

    def __init__(self, name: str, outbox: Outbox, send: Callable[[dict], None], backoff: BackOff):
        self.name, self.outbox, self.send, self.backoff = name, outbox, send, backoff
        self.delivered = 0
        self._wake = threading.Event()  # a record was put, or close() was called
        self._closing = threading.Event()  # deliver what is there, then stop
        self._abort = threading.Event()  # stop now: the close deadline passed
        # daemon: a receiver that hangs past every timeout must not keep the process alive
        self.thread = threading.Thread(target=self._run, name=f"sink {name}", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def wake(self) -> None:
        self._wake.set()

    def _run(self) -> None:
        while not self._abort.is_set():
            waiting = self.outbox.pending()
            if not waiting:
                if self._closing.is_set():
                    return
                self._wake.wait(timeout=1.0)
                self._wake.clear()
                continue
            self._deliver(waiting[0])

    def _deliver(self, path: Path) -> None:
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError) as error:  # not ours or damaged by hand: set aside, never block the rest
            log.error("sink %s: %s is no record (%s); renamed to %s.bad", self.name, path, error, path.name)
            path.rename(path.with_name(path.name + ".bad"))
            return
        try:
            self.send(record)
        except Exception as error:  # any failure of the receiver: retried, never raised into the watch
            wait = self.backoff.next_wait()
            # the first failure and then ever rarer ones: a long outage must not flood the log
            if self.backoff.failures & (self.backoff.failures - 1) == 0:
                log.warning(
                    "sink %s: delivering %s failed (attempt %d: %s); retrying in %.1f s, later records wait",
                    self.name,
                    record.get("id", path.name),
                    self.backoff.failures,
                    error,
                    wait,
                )
            self._abort.wait(wait)
            return
        if self.backoff.failures:
            log.warning("sink %s: delivering again after %d failed attempts", self.name, self.backoff.failures)
        self.backoff.reset()
        self.outbox.acknowledge(path)
        self.delivered += 1

    def close(self, timeout_s: float) -> int:
        """Deliver what is waiting for at most `timeout_s`, then stop; the records left (they
        stay in the outbox for the next watch on this folder)."""
        self._closing.set()
        self._wake.set()
        if self.thread.is_alive():
            self.thread.join(timeout=timeout_s)
        self._abort.set()
        self.thread.join(timeout=1.0)  # a send under way finishes within its own timeout or is left
        left = len(self.outbox.pending())
        if left:
            log.warning(
                "sink %s: %d records not delivered yet stay in %s; a watch with the same output folder "
                "delivers them first",
                self.name,
                left,
                self.outbox.folder,
            )
        return left


def record_id(camera: str, record: dict) -> str:
    """A record's id: the same for a record sent again, new for every other record."""
    opened_ms = round(float(record["opened_at"]) * 1000)
    return f"{camera}/{record['event']}/{record['state']}/{opened_ms}"


class Sink(WatchListener):
    """A listener that puts each event record into its outbox and sends it on its own thread.

    Subclasses set `kind` and implement `send(message)`: return once the receiver confirmed
    the message, raise otherwise."""

    kind = "sink"

    def __init__(
        self, target: str, out_dir: Path, timeout_s: float = DEFAULT_TIMEOUT_S, backoff: BackOff | None = None
    ):
        self.target, self.timeout_s = target, timeout_s
        self.name = f"{self.kind}-{hashlib.sha256(target.encode()).hexdigest()[:10]}"
        self.outbox = Outbox(Path(out_dir) / OUTBOX_FOLDER / self.name)
        write_json_atomic(self.outbox.folder.with_suffix(".json"), {"kind": self.kind, "target": target})
        earlier = len(self.outbox.pending())
        if earlier:
            log.warning("sink %s (%s): %d records of an earlier watch are delivered first", self.name, target, earlier)
        self.delivery = Delivery(self.name, self.outbox, self.send, backoff or BackOff())

    def start(self) -> Sink:
        self.delivery.start()
        return self

    def send(self, message: dict) -> None:
        raise NotImplementedError

    def event(self, camera: str, record: dict) -> None:
        # written (fsync'd) here, on the scoring thread: events are rare and a record must be on
        # disk before the watch moves on; the sending is the delivery thread's
        self.outbox.put({**record, "camera": camera, "id": record_id(camera, record)})
        self.delivery.wake()

    def close(self) -> None:
        self.delivery.close(CLOSE_TIMEOUT_S)


def wait_until(condition: Callable[[], bool], timeout_s: float, step_s: float = 0.05) -> bool:
    """Poll `condition` until it holds or `timeout_s` passed; whether it held."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(step_s)
    return True
