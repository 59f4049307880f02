"""Logging set-up shared by workflow jobs and the command line."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

from gclvad.errors import GclvadError


@contextlib.contextmanager
def job_log(path: str | Path | None) -> Iterator[logging.Logger]:
    """Send log records and warnings to `path` (and stderr) for the duration of one workflow job.

    A job that fails says why once. Snakemake prints a failed job's log file (the profiles set
    `show-failed-logs`), so the failure goes to the log file only, not also to stderr, and the
    job then exits with status 1 instead of letting Python print the traceback again. A
    GclvadError (bad input, a message for the user) is written without a traceback; any
    other exception is a bug and keeps its traceback. Without a log file the failure goes to
    stderr.
    """
    to_stderr = logging.StreamHandler(sys.stderr)
    handlers: list[logging.Handler] = [to_stderr]
    to_file = None
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        to_file = logging.FileHandler(path, mode="w")
        handlers.append(to_file)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=handlers,
        force=True,
    )
    logging.captureWarnings(True)
    logger = logging.getLogger("gclvad")
    try:
        yield logger
    except GclvadError as error:
        _report_failure(logger, to_file or to_stderr, f"job failed: {error}", with_traceback=False)
        raise SystemExit(1) from None
    except Exception:
        _report_failure(logger, to_file or to_stderr, "job failed with an unexpected error", with_traceback=True)
        raise SystemExit(1) from None


@contextlib.contextmanager
def command_log() -> Iterator[None]:
    """INFO records and warnings to stderr while one command-line command runs.

    The handler is removed afterwards: a process that calls the command line more than once
    (the tests, a notebook) must not keep handlers on streams that are closed by then.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def _report_failure(logger: logging.Logger, handler: logging.Handler, message: str, with_traceback: bool) -> None:
    """One ERROR record, through `handler` alone."""
    record = logger.makeRecord(
        logger.name, logging.ERROR, __file__, 0, message, None, sys.exc_info() if with_traceback else None
    )
    handler.handle(record)
    handler.flush()
