"""The `gclvad view` command: a web page of finished results, until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path

from gclvad.cli.watch import stop_on_signals
from gclvad.live.web import add_http_option, http_token
from gclvad.live.web_results import playable_codec, results_page
from gclvad.live.web_server import parse_address

DEFAULT_ADDRESS = "127.0.0.1:8080"
CACHE_FOLDER = "view-cache"


def add_parser(commands) -> None:
    """Add `view` to the `gclvad` subcommands."""
    codec = playable_codec()[0]
    view = commands.add_parser(
        "view",
        help="a web page of finished results: each video played above its frame scores",
        description="Serve a page listing the videos of a workflow run folder (scores.h5), a `gclvad score` "
        "output folder (<video>.csv), or every such folder below a results folder; the chosen video plays "
        "above its frame scores, a cursor at the current frame, ground truth shaded where the dataset's "
        f"annotations are known. Browsers cannot play MPEG-4 Part 2 (the demo's videos) or frame folders: each "
        f"video is transcoded once ({codec}), when first played, into the cache folder. Runs until Ctrl-C.",
    )
    view.add_argument(
        "results", type=Path, metavar="RESULTS_OR_RUN", help="a run folder, score folder or results folder"
    )
    add_http_option(view, default=DEFAULT_ADDRESS, shows="the results")
    view.add_argument(
        "--cache", type=Path, help=f"folder for the transcoded videos (default: RESULTS_OR_RUN/{CACHE_FOLDER})"
    )
    view.add_argument(
        "--config",
        type=Path,
        default=Path("config/config.yaml"),
        help="the workflow config naming the datasets' annotations (default: config/config.yaml, when present)",
    )


def run(args: argparse.Namespace) -> int:
    host, port = parse_address(args.http)
    cache = args.cache or args.results / CACHE_FOLDER
    server = results_page(args.results, cache, host, port, http_token(args), args.config).start()
    print(server.url + ("?token=..." if server.token else ""), flush=True)
    stop = threading.Event()
    with stop_on_signals(stop):
        try:
            while not stop.wait(0.5):  # a bounded wait: signals are handled between waits
                pass
        finally:
            server.stop()
    print("gclvad view: stopped", file=sys.stderr)
    return 0
