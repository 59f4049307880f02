"""Whether a video still has to be extracted: what an earlier extraction left for it.

A video is *done* when its per-video feature file is complete and current: it opens, holds a
`features` dataset of the stored dtype (2-D, or 3-D with the expected crops a segment; with the
expected number of rows, where known),
its attributes have the expected values (extractor, precision, segment length, weights, ...)
and it is not older than its source or the weights file. It is *bad* when a bad-video marker
(`<video>.bad.json`, written when decoding failed with `on_bad_video: skip`) is not older than
its source. Otherwise it is *todo*, with the reason.

The same check decides, in the workflow's DAG process, which shard jobs must run and, in the
shard job, which videos to skip; the job checks more (the weights' sha256, the preprocessing,
every value readable), never less, so a video the job has done is done for the DAG too. This
module imports neither torch nor anything else slow: the DAG process uses it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from gclvad.atomic import write_json_atomic

DONE, BAD, TODO = "done", "bad", "todo"
FEATURES = "features"
BAD_SUFFIX = ".bad.json"


@dataclass(frozen=True)
class Expected:
    """What a current feature file of one video holds.

    attrs: attribute -> required value. dtype: the features' stored dtype. segments: rows, when
    known (the segment index counts them). newer_than: files the feature file must not be older
    than besides the source (the weights file). read_all: also read every value (the shard job
    does; the DAG process reads only the attributes and the shape).
    """

    attrs: Mapping[str, object]  # a value None: the attribute must be absent
    dtype: str
    segments: int | None = None
    newer_than: tuple[Path, ...] = field(default_factory=tuple)
    read_all: bool = False
    crops: int = 1  # crops per segment: 1, a (segments, dim) dataset; C, (segments, C, dim)


@dataclass(frozen=True)
class VideoState:
    state: str  # DONE, BAD or TODO
    reason: str = ""  # why TODO (or, for BAD, the recorded problem)


def bad_marker_path(feature_path: str | Path) -> Path:
    feature_path = Path(feature_path)
    return feature_path.with_name(feature_path.stem + BAD_SUFFIX)


def newest_mtime_ns(path: Path) -> int:
    """Modification time of a file; of a frame folder, the newest of it and its files."""
    newest = path.stat().st_mtime_ns
    if path.is_dir():
        with os.scandir(path) as entries:
            for entry in entries:
                newest = max(newest, entry.stat().st_mtime_ns)
    return newest


def _same(found, wanted) -> bool:
    if isinstance(found, np.generic):
        found = found.item()
    if isinstance(found, bytes):
        found = found.decode("utf-8")
    if isinstance(wanted, bool) or isinstance(found, bool):
        return isinstance(found, (bool, np.bool_)) and bool(found) == wanted
    return found == wanted


def _feature_file_problem(path: Path, expected: Expected) -> str:
    """ "" when `path` holds what `expected` describes, else what is wrong (one line)."""
    try:
        with h5py.File(path, "r") as source:
            dataset = source.get(FEATURES)
            shape = (2, None) if expected.crops == 1 else (3, expected.crops)
            if not isinstance(dataset, h5py.Dataset) or dataset.ndim != shape[0] or dataset.shape[0] == 0:
                return f"no {shape[0]}-D '{FEATURES}' dataset"
            if shape[1] is not None and dataset.shape[1] != shape[1]:
                return f"{dataset.shape[1]} crops a segment, expected {shape[1]}"
            if dataset.dtype.name != expected.dtype:
                return f"features stored as {dataset.dtype.name}, expected {expected.dtype}"
            if expected.segments is not None and dataset.shape[0] != expected.segments:
                return f"{dataset.shape[0]} segments, the segment index says {expected.segments}"
            for key, wanted in expected.attrs.items():
                if wanted is None:
                    if key in source.attrs:
                        return f"attribute {key!r} is {_plain(source.attrs[key])!r}, expected none"
                    continue
                if key not in source.attrs:
                    return f"no attribute {key!r}"
                if not _same(source.attrs[key], wanted):
                    return f"{key} is {_plain(source.attrs[key])!r}, expected {wanted!r}"
            if expected.read_all and not np.isfinite(dataset[()]).all():
                return "features hold NaN or inf"
    except (OSError, KeyError, ValueError) as error:
        return f"unreadable ({error})"
    return ""


def _plain(value):
    return value.item() if isinstance(value, np.generic) else value


def _not_older(path: Path, others: Sequence[Path]) -> str:
    """ "" when `path` is at least as new as each of `others` (which exist), else which is newer."""
    mtime = path.stat().st_mtime_ns
    for other in others:
        if other.exists() and newest_mtime_ns(other) > mtime:
            return f"older than {other}"
    return ""


def read_bad_marker(feature_path: str | Path, source: str | Path) -> str | None:
    """The recorded problem of a bad video, when its marker is not older than the source."""
    marker = bad_marker_path(feature_path)
    if not marker.is_file() or _not_older(marker, [Path(source)]):
        return None
    try:
        return str(json.loads(marker.read_text())["problem"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_bad_marker(feature_path: str | Path, source: str | Path, problem: str) -> Path:
    marker = bad_marker_path(feature_path)
    write_json_atomic(marker, {"source": str(source), "problem": problem})
    return marker


_CACHE: dict[tuple, VideoState] = {}


def video_state(feature_path: str | Path, source: str | Path, expected: Expected) -> VideoState:
    """DONE, BAD or TODO (with the reason) for the video `source` whose feature file is `feature_path`.

    Results are cached by the files' sizes and modification times, so the DAG process, which
    asks again after every finished shard job, opens each file once.
    """
    feature_path, source = Path(feature_path), Path(source)
    key = (_stamp(feature_path), _stamp(bad_marker_path(feature_path)), _stamp(source), _expected_key(expected))
    key += tuple(_stamp(other) for other in expected.newer_than)
    if key not in _CACHE:
        _CACHE[key] = _video_state(feature_path, source, expected)
    return _CACHE[key]


def _stamp(path: Path) -> tuple:
    try:
        status = path.stat()
        return (str(path), status.st_size, newest_mtime_ns(path) if path.is_dir() else status.st_mtime_ns)
    except OSError:
        return (str(path), None)


def _expected_key(expected: Expected) -> tuple:
    return (tuple(sorted((k, repr(v)) for k, v in expected.attrs.items())), expected.dtype, expected.segments,
            expected.read_all, expected.crops)  # fmt: skip


def _video_state(feature_path: Path, source: Path, expected: Expected) -> VideoState:
    problem = "does not exist"
    if feature_path.is_file():
        problem = _not_older(feature_path, [source, *expected.newer_than]) or _feature_file_problem(
            feature_path, expected
        )
        if not problem:
            return VideoState(DONE)
        problem = f"is not current: {problem}"
    # A marker not older than the source stands even beside a stale feature file: the file of
    # an earlier version of the video, which has since been replaced by a broken one.
    recorded = read_bad_marker(feature_path, source)
    if recorded is not None:
        return VideoState(BAD, recorded)
    return VideoState(TODO, f"{feature_path} {problem}")


def stale_temporaries(feature_path: str | Path) -> list[Path]:
    """Temporary files a killed writer of `feature_path` (or its marker) left (gclvad.atomic names them)."""
    feature_path = Path(feature_path)
    folder = feature_path.parent
    if not folder.is_dir():
        return []
    names = (feature_path.name, bad_marker_path(feature_path).name)
    return sorted(p for name in names for p in folder.glob(f".{name}.*.tmp"))
