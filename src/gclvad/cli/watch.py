"""The `gclvad watch` and `gclvad calibrate` commands: arguments, signals, exit status.

Exit status of watch: 0 when it ended cleanly (end of a file, Ctrl-C or SIGTERM: the current
event is closed and every file is complete), 2 for bad input (a bad camera file included),
3 when a stream stayed lost longer than --give-up-after (with several cameras: any camera's,
the others watched on), 1 when a camera's decoding failed while others watched on (its
summary says why; a single source's failure is an error of the watch, exit 2).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import threading
from pathlib import Path

from gclvad.errors import GclvadError
from gclvad.live.cameras import WatchSettings, camera_file_sinks, cameras_of_sources, read_camera_file
from gclvad.live.listeners import Listeners
from gclvad.live.sinks import add_sink_options, sinks_from_args, sinks_from_config
from gclvad.live.source import SourceSettings
from gclvad.live.threshold import CALIBRATION_FILE, DEFAULT_RULE
from gclvad.live.web import add_http_option, page_from_args
from gclvad.scoring.quantiles import QUANTILE_LEVELS

log = logging.getLogger(__name__)

CAMERA_FAILED, GAVE_UP = 1, 3
# watch's plain options: flag, type, default, help.
_WATCH_OPTIONS = (
    ("--hold", float, 2.0, "seconds below the threshold before an alert closes"),
    (
        "--smooth-segments",
        int,
        0,
        "alert on a causal exponentially weighted mean of the scores over about N segments (0: off)",
    ),
    ("--clip-seconds", float, 3.0, "clip seconds before an event and after it closed"),
    ("--clip-buffer-mb", int, 256, "most decoded video kept in memory for clips"),
    (
        "--max-queued",
        int,
        None,
        "segments waiting for scoring before a live source drops whole ones (default 2 batches)",
    ),
    ("--batch-size", int, None, "segments per extractor call when several wait (default: the run's)"),
    ("--read-timeout", float, 5.0, "seconds without data before a stream counts as lost"),
    ("--max-backoff", float, 30.0, "longest wait between reconnections, seconds"),
    ("--give-up-after", float, None, "stop (exit 3) after a stream has been lost this many seconds (default never)"),
)


def add_run_input_options(parser: argparse.ArgumentParser) -> None:
    """How new footage is turned into the run's features: the run's own settings by default."""
    parser.add_argument(
        "--precision",
        choices=["auto", "fp32", "bf16"],
        help="arithmetic of the extractor (default: the precision the run's features had); another is "
        "allowed only where it changes the features by at most the measured tolerance, else refused",
    )
    parser.add_argument(
        "--frame-step",
        type=int,
        help="every k-th frame feeds a segment: must be the run's (default: the run's; another is refused)",
    )


def _option(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def add_parsers(commands) -> None:
    """Add `watch` and `calibrate` to the `gclvad` subcommands."""
    watch = commands.add_parser(
        "watch",
        help="score a live stream, camera or file as it plays, with alerts",
        description="Score every segment of a live source with a trained run as it arrives; write "
        "OUT/scores.csv (one row per segment), OUT/events.jsonl (alerts opening and closing), "
        "OUT/events/event_NNNN.png (and .mp4 with --clips) and OUT/summary.json. Several sources, "
        "or a camera file (--cameras), are watched by one process and one network, their segments "
        "scored in shared batches, each camera with its own alerts and files in OUT/NAME/ (sources "
        "given here are named camera1, camera2, ...) and OUT/summary.json listing them. Stops cleanly "
        "on Ctrl-C or SIGTERM (exit 0), at the end of every file, or (exit 3) when a stream stays lost "
        "longer than --give-up-after. Bad input (a source that cannot be opened: not found, a folder, not "
        "a video, no video stream; a bad camera file or sink) stops before watching with exit 2 and an "
        "error naming it; a stream that drops is reconnected.",
    )
    watch.add_argument("run", type=Path, help="a trained run folder (holds models.pt)")
    watch.add_argument(
        "source",
        nargs="*",
        metavar="SOURCE",
        help="what FFmpeg opens: rtsp://..., udp://@:5000, http(s)://.../x.m3u8, /dev/video0, or a video file",
    )
    watch.add_argument(
        "--cameras",
        type=Path,
        metavar="FILE",
        help="a YAML camera list (name, source and the camera's own options for each; see the README) "
        "instead of SOURCE",
    )
    watch.add_argument("-o", "--out", type=Path, default=Path("watch"), help="output folder (default: watch)")
    watch.add_argument("--realtime", action="store_true", help="play a file at its own frame rate, like a camera")
    watch.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    watch.add_argument(
        "--weights", help="extractor weights file (or 'random' / 'package'), if not where the run recorded them"
    )
    add_run_input_options(watch)
    level = watch.add_mutually_exclusive_group()
    level.add_argument(
        "--quantile",
        type=float,
        help=f"alert threshold = this quantile of the run's scores on its training segments (recorded: "
        f"{', '.join(f'{q:g}' for q in QUANTILE_LEVELS)}); default: the label-free rule {DEFAULT_RULE} "
        "(median + 2.5 robust standard deviations of the upper half of those scores; README, 'Alerts "
        "without labels')",
    )
    level.add_argument("--threshold", type=float, help="alert threshold as a score value instead")
    for flag, kind, default, text in _WATCH_OPTIONS:
        shown = "" if default is None else f" (default {default:g})"
        watch.add_argument(flag, type=kind, default=default, help=text + shown)
    watch.add_argument("--clips", action="store_true", help="save each event as OUT/events/event_NNNN.mp4")
    watch.add_argument("--format", help="FFmpeg input format (demuxer), e.g. v4l2, mpegts; default: guessed")
    watch.add_argument(
        "-O",
        "--input-option",
        type=_option,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="FFmpeg input option (repeatable), e.g. -O rtsp_transport=udp -O fifo_size=100000",
    )
    add_sink_options(watch)
    add_http_option(watch)

    calibrate = commands.add_parser(
        "calibrate",
        help="record a run's training score distribution (alert threshold), for runs trained before it was recorded",
        description=f"Score the run's training features with its final model and write RUN/{CALIBRATION_FILE} "
        "(quantiles of the scores) for `gclvad watch`; the models file is not changed.",
    )
    calibrate.add_argument("run", type=Path, help="a trained run folder (holds models.pt)")
    calibrate.add_argument(
        "--features", type=Path, help="merged feature file (default: results/{dataset}/features/{extractor}.h5)"
    )
    calibrate.add_argument("--index", type=Path, help="segment index (default: results/{dataset}/segments.tsv)")
    calibrate.add_argument(
        "--train-on", nargs="+", default=["train"], help="the dataset's training splits (default: train)"
    )
    calibrate.add_argument("--device", default="cpu", help="auto | cpu | cuda | cuda:N")


def _settings(args):
    source = SourceSettings(
        realtime=args.realtime,
        input_format=args.format,
        options=dict(args.input_option),
        read_timeout_s=args.read_timeout,
        max_backoff_s=args.max_backoff,
        give_up_after_s=args.give_up_after,
    )
    return WatchSettings(
        quantile=args.quantile,
        threshold=args.threshold,
        hold_s=args.hold,
        smooth_segments=args.smooth_segments,
        clips=args.clips,
        clip_margin_s=args.clip_seconds,
        clip_buffer_mb=args.clip_buffer_mb,
        max_queued=args.max_queued,
        batch_size=args.batch_size,
        source=source,
    )


@contextlib.contextmanager
def stop_on_signals(stop: threading.Event):
    """While in the block, the first Ctrl-C or SIGTERM sets `stop` (a clean stop); a second one
    acts as it would without. The handlers before are put back after the block."""
    previous = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}

    def request_stop(signum, _frame):
        name = signal.Signals(signum).name
        log.warning("%s: closing the current event and stopping (send it again to stop at once)", name)
        stop.set()
        signal.signal(signum, previous[signum])

    for signum in previous:
        signal.signal(signum, request_stop)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _sources(args, settings):
    """One source (watched alone), or the cameras of the sources or of the camera file."""
    if args.cameras is not None and args.source:
        raise GclvadError("watch: give sources or --cameras FILE, not both")
    if args.cameras is not None:
        return read_camera_file(args.cameras, settings)
    if not args.source:
        raise GclvadError("watch: no source given: give one or more sources, or --cameras FILE")
    return args.source[0] if len(args.source) == 1 else cameras_of_sources(args.source)


def _sinks(args) -> list:
    """The event sinks of the options and of the camera file, started; none started on bad input."""
    sinks = []
    if args.cameras is not None:
        try:
            sinks = sinks_from_config(camera_file_sinks(args.cameras), args.out)
        except GclvadError as error:
            raise GclvadError(f"{args.cameras}: {error}") from None
    try:
        return sinks + sinks_from_args(args, args.out)
    except GclvadError:
        for sink in sinks:
            sink.close()
        raise


def exit_status(summary: dict) -> int:
    """GAVE_UP if a camera's stream was given up, CAMERA_FAILED if one failed, else 0."""
    summaries = list(summary["cameras"].values()) if "cameras" in summary else [summary]
    if any(camera["stopped_by"] == "gave up" for camera in summaries):
        return GAVE_UP
    return CAMERA_FAILED if any(camera["stopped_by"] == "error" for camera in summaries) else 0


def run_watch(args) -> int:
    from gclvad.live.watcher import watch

    settings = _settings(args)
    sources = _sources(args, settings)  # a bad camera file is refused before anything starts
    stop = threading.Event()
    # sinks and the page first: bad input is refused before the slow start; closing them flushes the
    # sinks' outboxes and stops the page
    listeners = Listeners([*_sinks(args), page_from_args(args)])
    with contextlib.closing(listeners), stop_on_signals(stop):
        summary = watch(
            args.run, sources, args.out, settings, weights=args.weights, device=args.device, stop=stop,
            listeners=listeners, precision=args.precision, frame_step=args.frame_step,
        )  # fmt: skip
    print(args.out / "summary.json")
    return exit_status(summary)


def run_calibrate(args) -> int:
    from gclvad.live.calibration import calibrate_run

    print(calibrate_run(args.run, args.features, args.index, tuple(args.train_on), device=args.device))
    return 0
