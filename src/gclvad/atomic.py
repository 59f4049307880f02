"""Atomic file writes: every output of gclvad appears complete or not at all.

A writer gets a temporary path in the target's own folder (so the final rename never
crosses file systems), writes it, and on success the data is flushed to disk (fsync) and
renamed over the target; on any failure, KeyboardInterrupt included, the temporary file is
removed and an existing target is left untouched. A job killed with SIGKILL mid-write
leaves only a hidden `.<name>.*.tmp` file, which no reader looks at.

Files get the usual permissions (0666 minus the umask), not the 0600 of `mkstemp`, so a
group can share a results folder on a cluster.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def _umask() -> int:
    # os.umask can only be read by setting it; set it straight back.
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path to write; renamed to `path` when the block ends without error."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    temporary = Path(name)
    try:
        yield temporary
        os.chmod(temporary, 0o666 & ~_umask())
        with open(temporary, "rb") as written:
            os.fsync(written.fileno())  # the rename must not outlive the data on a crash
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_atomic(path: str | Path, write: Callable[[Path], Any]) -> None:
    """Call write(temporary_path), then move the result to `path` atomically."""
    with atomic_path(path) as temporary:
        write(temporary)


def write_text_atomic(path: str | Path, text: str) -> None:
    write_atomic(path, lambda temporary: temporary.write_text(text))


def write_json_atomic(path: str | Path, value: Any, default: Callable[[Any], Any] | None = None) -> None:
    """JSON (indented, one trailing newline), written atomically; `default` as for json.dumps."""
    write_text_atomic(path, json.dumps(value, indent=2, default=default or _plain_number) + "\n")


def _plain_number(value: Any) -> Any:
    """numpy scalars as Python numbers (result dicts often hold them)."""
    if hasattr(value, "item") and callable(value.item):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
