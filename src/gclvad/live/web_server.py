"""The web pages' server: an aiohttp application on a thread of its own, with its own event loop.

`PageServer` starts the application (the watch's loop or `gclvad view` goes on at once) and
stops it within a bounded time. Binding anything but a loopback address needs a token: a
request then carries it once as ?token=... (answered with a cookie, so the page's own requests,
its event stream and its video elements carry it from then on), as that cookie, or as an
`Authorization: Bearer` header; without it the answer is 401. The pages' HTML, JavaScript and
CSS are the package's files in web_static/: nothing is fetched from outside.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging
import threading
from pathlib import Path

from aiohttp import web

from gclvad.errors import GclvadError

log = logging.getLogger(__name__)

STATIC = Path(__file__).with_name("web_static")
TOKEN_ENV = "GCLVAD_HTTP_TOKEN"
TOKEN_COOKIE = "gclvad_token"
_START_TIMEOUT_S, _STOP_TIMEOUT_S = 10.0, 5.0


def parse_address(text: str) -> tuple[str, int]:
    """HOST:PORT (or :PORT, or PORT: host 127.0.0.1) as (host, port)."""
    host, sep, port = str(text).rpartition(":")
    if not sep:
        host, port = "", text
    host = host.strip("[]") or "127.0.0.1"
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise GclvadError(f"expected HOST:PORT for the web page, e.g. 127.0.0.1:8080; got {text!r}")
    return host, int(port)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


def check_bind(host: str, token: str | None) -> None:
    """Refuse to serve beyond this machine without a token: the pages show camera footage."""
    if not is_loopback(host) and not token:
        raise GclvadError(
            f"the web page would listen on {host}, beyond this machine, without a token; pass --http-token "
            f"or set {TOKEN_ENV} (or bind 127.0.0.1)"
        )


def token_middleware(token: str):
    @web.middleware
    async def check_token(request: web.Request, handler):
        given = request.query.get("token")
        header = request.headers.get("Authorization", "")
        offered = given or request.cookies.get(TOKEN_COOKIE) or header.removeprefix("Bearer ").strip()
        if not offered or not hmac.compare_digest(offered.encode(), token.encode()):
            raise web.HTTPUnauthorized(text="a token is needed: open the page's address with ?token=...\n")
        response = await handler(request)
        if given:  # once in the address, then a cookie
            response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="Strict")
        return response

    return check_token


def new_app(token: str | None) -> web.Application:
    """An application with the token check (when a token is given) and the static files."""
    app = web.Application(middlewares=[token_middleware(token)] if token else [])
    app.router.add_static("/static", STATIC)
    return app


def page_response(name: str) -> web.FileResponse:
    return web.FileResponse(STATIC / name, headers={"Cache-Control": "no-store"})


class PageServer:
    """`app` served on host:port (port 0: a free one) from a thread with its own event loop."""

    def __init__(self, app: web.Application, host: str, port: int, token: str | None = None):
        check_bind(host, token)
        self.app, self.host, self.port, self.token = app, host, port, token
        self.loop = asyncio.new_event_loop()
        self.closing = asyncio.Event()  # tells open event streams to end (set on the loop)
        self._runner: web.AppRunner | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._serve, name="gclvad-web", daemon=True)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    def start(self) -> PageServer:
        self._thread.start()
        if not self._started.wait(_START_TIMEOUT_S):
            raise GclvadError(f"the web page did not start on {self.host}:{self.port} within {_START_TIMEOUT_S} s")
        if self._error is not None:
            raise GclvadError(f"the web page cannot listen on {self.host}:{self.port}: {self._error}")
        log.info("web page: %s%s", self.url, "?token=..." if self.token else "")
        return self

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._open())
        except BaseException as error:  # reported by start()
            self._error = error
            self._started.set()
            return
        self._started.set()
        self.loop.run_forever()
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()

    async def _open(self) -> None:
        # A short shutdown wait: the event streams end themselves when `closing` is set.
        self._runner = web.AppRunner(self.app, shutdown_timeout=1.0, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def _close(self) -> None:
        self.closing.set()
        await self._runner.cleanup()

    def stop(self) -> None:
        """Stop serving (bounded in time); safe to call twice or after a failed start."""
        if not self._thread.is_alive():
            return
        try:
            asyncio.run_coroutine_threadsafe(self._close(), self.loop).result(_STOP_TIMEOUT_S)
        except Exception:  # the server is going away anyway
            log.exception("web page: stopping the server failed")
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(_STOP_TIMEOUT_S)
