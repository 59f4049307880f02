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
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    for handler in handlers:
        handler.setFormatter(formatter)
    logger = logging.getLogger("gclvad")
    with _root_handlers(handlers):
        try:
            yield logger
        except GclvadError as error:
            _report_failure(logger, to_file or to_stderr, f"job failed: {error}", with_traceback=False)
            raise SystemExit(1) from None
        except Exception:
            _report_failure(logger, to_file or to_stderr, "job failed with an unexpected error", with_traceback=True)
            raise SystemExit(1) from None


@contextlib.contextmanager
def _root_handlers(handlers: list[logging.Handler]) -> Iterator[None]:
    """The root logger writes INFO records and warnings to `handlers` alone, until the block
    ends; then its handlers and level are as they were (a process that runs several jobs or
    commands, like the tests, must not keep handlers on streams closed by then)."""
    root = logging.getLogger()
    before, level = root.handlers[:], root.level
    root.handlers, root.level = list(handlers), logging.INFO
    logging.captureWarnings(True)
    try:
        yield
    finally:
        logging.captureWarnings(False)
        root.handlers, root.level = before, level
        for handler in handlers:
            handler.close()


def command_log() -> contextlib.AbstractContextManager[None]:
    """INFO records and warnings to stderr while one command-line command runs."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    return _root_handlers([handler])


def _report_failure(logger: logging.Logger, handler: logging.Handler, message: str, with_traceback: bool) -> None:
    """One ERROR record, through `handler` alone."""
    record = logger.makeRecord(
        logger.name, logging.ERROR, __file__, 0, message, None, sys.exc_info() if with_traceback else None
    )
    handler.handle(record)
    handler.flush()
