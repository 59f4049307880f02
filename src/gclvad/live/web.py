"""The live web page of `gclvad watch --http HOST:PORT`: a watch listener that serves a page.

Per camera the page shows the recent score curve against the threshold, the open alert and
the status (fps in, latency, drops, reconnections), and a list of events with their score
curves and clips, playable in the page. The listener methods only put plain values into a
`LiveState` under a lock (recent scores bounded per camera, events and updates bounded) and
never block; the server (`gclvad.live.web_server`) runs on its own thread and loop, and every
open page learns of updates through server-sent events (/api/stream) a few times a second.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import logging
import math
import os
import threading
from pathlib import Path

from aiohttp import web

from gclvad.live.listeners import WatchListener
from gclvad.live.web_server import TOKEN_ENV, PageServer, new_app, page_response, parse_address

log = logging.getLogger(__name__)

RECENT_SEGMENTS = 600  # scores kept per camera for the curve (4 min of 16-frame segments at 40 fps)
EVENTS_KEPT = 200  # events kept per camera for the list
UPDATES_KEPT = 4096  # updates kept for pages that are behind; one further behind gets a snapshot
EVENT_CURVE_POINTS = 2000  # points of one event's curve
EVENT_CURVE_BEFORE, EVENT_CURVE_AFTER = 10, 10  # segments of curve around an event
_PUSH_INTERVAL_S = 0.25  # how often an event stream looks for updates


def curve_point(row: dict) -> list:
    """[stream end seconds, score, smoothed or None, open alert] of a scored segment."""
    return [row.get("stream_end_s"), row.get("score"), row.get("smoothed"), row.get("alert", 0)]


class CameraState:
    """What the page shows of one camera (changed only under LiveState's lock)."""

    def __init__(self, info: dict):
        self.info = info
        self.recent: collections.deque = collections.deque(maxlen=RECENT_SEGMENTS)
        self.status: dict = {}
        self.events: collections.OrderedDict[int, dict] = collections.OrderedDict()  # number -> {record, curve}
        self.after_close: dict[int, int] = {}  # closed event -> segments of curve still to add
        self.stopped: dict | None = None

    def add_point(self, point: list) -> None:
        self.recent.append(point)
        open_event = point[3]
        if open_event and open_event not in self.events:  # its "open" line has not come yet
            self.events[open_event] = {"record": {"event": open_event, "state": "open"}, "curve": self._before()}
        for number, entry in self.events.items():
            if number == open_event or self.after_close.get(number, 0) > 0:
                if len(entry["curve"]) < EVENT_CURVE_POINTS:
                    entry["curve"].append(point)
                if number != open_event:
                    self.after_close[number] -= 1
        self.after_close = {n: left for n, left in self.after_close.items() if left > 0}

    def _before(self) -> list:
        return list(self.recent)[-EVENT_CURVE_BEFORE - 1 : -1]

    def add_event(self, record: dict) -> dict:
        number = int(record["event"])
        entry = self.events.setdefault(number, {"record": record, "curve": self._before()})
        entry["record"] = record
        if record.get("state") == "closed":
            self.after_close[number] = EVENT_CURVE_AFTER
        while len(self.events) > EVENTS_KEPT:
            self.events.popitem(last=False)
        return entry

    def snapshot(self) -> dict:
        return {
            "info": self.info,
            "recent": list(self.recent),
            "status": self.status,
            "events": [{"record": e["record"], "curve": list(e["curve"])} for e in self.events.values()],
            "stopped": self.stopped,
        }


class LiveState:
    """Every camera's state and a numbered, bounded log of updates, shared by the watch's
    thread (writes) and the server's loop (reads); each call holds the lock only briefly."""

    def __init__(self):
        self._lock = threading.Lock()
        self.cameras: dict[str, CameraState] = {}
        self.updates: collections.deque = collections.deque(maxlen=UPDATES_KEPT)  # (number, message)
        self.number = 0

    def _publish(self, message: dict) -> None:
        self.number += 1
        self.updates.append((self.number, message))

    def _camera(self, camera: str) -> CameraState:
        if camera not in self.cameras:
            self.cameras[camera] = CameraState({})
        return self.cameras[camera]

    def started(self, camera: str, info: dict) -> None:
        with self._lock:
            self.cameras[camera] = CameraState(dict(info))
            self._publish({"type": "camera", "camera": camera, "state": self.cameras[camera].snapshot()})

    def scored(self, camera: str, row: dict) -> None:
        point = curve_point(row)
        with self._lock:
            self._camera(camera).add_point(point)
            self._publish({"type": "point", "camera": camera, "point": point})

    def event(self, camera: str, record: dict) -> None:
        with self._lock:
            entry = self._camera(camera).add_event(dict(record))
            self._publish({"type": "event", "camera": camera, "record": entry["record"], "curve": entry["curve"]})

    def status(self, camera: str, status: dict) -> None:
        with self._lock:
            self._camera(camera).status = dict(status)
            self._publish({"type": "status", "camera": camera, "status": dict(status)})

    def stopped(self, camera: str, summary: dict) -> None:
        with self._lock:
            self._camera(camera).stopped = dict(summary)
            self._publish({"type": "stopped", "camera": camera, "summary": dict(summary)})

    def snapshot(self) -> dict:
        with self._lock:
            return {
                "type": "snapshot",
                "number": self.number,
                "cameras": {name: state.snapshot() for name, state in self.cameras.items()},
            }

    def since(self, number: int) -> list[tuple[int, dict]] | None:
        """Updates after `number`; None when some of them are no longer kept."""
        with self._lock:
            if self.number == number:
                return []
            if not self.updates or self.updates[0][0] > number + 1:
                return None
            return [(n, message) for n, message in self.updates if n > number]

    def clip_path(self, camera: str, event: int) -> Path | None:
        """The clip file of a closed event (only files the watch named are served)."""
        with self._lock:
            state = self.cameras.get(camera)
            entry = state.events.get(event) if state is not None else None
            if entry is None or not entry["record"].get("clip") or not state.info.get("out_dir"):
                return None
            return Path(state.info["out_dir"]) / entry["record"]["clip"]


# ---------------------------------------------------------------- the application


def json_ready(value):
    """`value` with NaN and infinities as None: JSON has no such numbers, browsers refuse them."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: json_ready(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(item) for item in value]
    return value


def sse_data(message: dict) -> bytes:
    return f"data: {json.dumps(json_ready(message), default=str)}\n\n".encode()


async def event_stream(request: web.Request, state: LiveState, closing: asyncio.Event) -> web.StreamResponse:
    """A snapshot, then every update as it comes (a fresh snapshot for a page that fell behind)."""
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"})
    await response.prepare(request)
    snapshot = state.snapshot()
    await response.write(sse_data(snapshot))
    seen = snapshot["number"]
    while not closing.is_set():
        with contextlib.suppress(TimeoutError):  # a wait that ends early when the server closes
            await asyncio.wait_for(closing.wait(), _PUSH_INTERVAL_S)
        updates = state.since(seen)
        if updates is None:
            snapshot = state.snapshot()
            updates = [(snapshot["number"], snapshot)]
        for number, message in updates:
            await response.write(sse_data(message))
            seen = number
    return response


def live_app(state: LiveState, token: str | None, closing_of) -> web.Application:
    """The live page's routes; `closing_of()`: the server's closing event (known once it exists)."""
    app = new_app(token)

    async def index(_request):
        return page_response("live.html")

    async def snapshot(_request):
        return web.json_response(json_ready(state.snapshot()))

    async def stream(request):
        return await event_stream(request, state, closing_of())

    async def clip(request):
        path = state.clip_path(request.match_info["camera"], int(request.match_info["event"]))
        if path is None or not path.is_file():
            raise web.HTTPNotFound(text="no such clip (yet)\n")
        return web.FileResponse(path)

    app.router.add_get("/", index)
    app.router.add_get("/api/state", snapshot)
    app.router.add_get("/api/stream", stream)
    app.router.add_get(r"/clip/{camera}/{event:\d+}", clip)
    return app


class LivePage(WatchListener):
    """The live page as a watch listener: `start()` serves it, the watch's calls feed it."""

    def __init__(self, host: str = "127.0.0.1", port: int = 8080, token: str | None = None):
        self.state = LiveState()
        self.server = PageServer(live_app(self.state, token, lambda: self.server.closing), host, port, token)

    def start(self) -> LivePage:
        self.server.start()
        return self

    @property
    def url(self) -> str:
        return self.server.url

    def camera_started(self, camera: str, info: dict) -> None:
        self.state.started(camera, info)

    def segment_scored(self, camera: str, row: dict) -> None:
        self.state.scored(camera, row)

    def event(self, camera: str, record: dict) -> None:
        self.state.event(camera, record)

    def status(self, camera: str, status: dict) -> None:
        self.state.status(camera, status)

    def camera_stopped(self, camera: str, summary: dict) -> None:
        self.state.stopped(camera, summary)

    def close(self) -> None:
        self.server.stop()


# ---------------------------------------------------------------- the command's options


def add_http_option(parser: argparse.ArgumentParser, default: str | None = None, shows: str | None = None) -> None:
    """--http HOST:PORT and --http-token, for `gclvad watch` and `gclvad view`."""
    shown = f"default {default}" if default else "e.g. 127.0.0.1:8080"
    parser.add_argument(
        "--http",
        metavar="HOST:PORT",
        default=default,
        help=f"serve a web page of {shows or 'the scores, alerts, events and clips'} at HOST:PORT ({shown}; "
        "port 0: a free one); any address but a loopback one needs --http-token",
    )
    parser.add_argument(
        "--http-token",
        help=f"token the page asks for (open it as http://HOST:PORT/?token=...; default: ${TOKEN_ENV})",
    )


def http_token(args) -> str | None:
    return args.http_token or os.environ.get(TOKEN_ENV) or None


def page_from_args(args) -> WatchListener:
    """The started live page `--http` asks for (without it a listener that ignores everything);
    a refused address or a busy port fails here, before the watch's slow start."""
    if not getattr(args, "http", None):
        return WatchListener()
    host, port = parse_address(args.http)
    page = LivePage(host, port, http_token(args)).start()
    log.warning("watch page: %s", page.url)
    return page
