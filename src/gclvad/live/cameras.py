"""What a watch watches: its settings, its cameras, and the camera file of `gclvad watch --cameras`.

A camera is a name, a source and its own settings. The name is the camera's output folder
(OUT/<name>/) and what listeners are told, so it must be unique and safe as a folder name.
A camera file is YAML:

    cameras:
      - name: gate
        source: rtsp://127.0.0.1:8554/gate
        hold: 3
        threshold: 0.8
      - name: yard
        source: udp://@:5000
        give_up_after: 600
        input_options: {fifo_size: "100000"}
    sinks:                        # optional: where every camera's events go (gclvad.live.sinks)
      - {mqtt: "mqtt://127.0.0.1:1883/gclvad"}
      - {webhook: "http://127.0.0.1:8123/api/webhook/gclvad", timeout_s: 5}

Each entry takes a camera's own value of these watch options (their command-line names,
dashes as underscores; what an entry leaves out comes from the command line): quantile or
threshold, hold, smooth_segments, clips, clip_seconds, clip_buffer_mb, max_queued, realtime,
format, input_options (a mapping), read_timeout, max_backoff, give_up_after. Options of the
whole watch (run, --device, --weights, --batch-size, -o) are shared: the cameras' segments
are scored by one network in the same batches. A file with an unknown option, a missing
name or source, a duplicate or unsafe name is refused before anything is watched.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from gclvad.errors import GclvadError
from gclvad.live.source import SourceSettings

SINGLE_CAMERA = "camera"  # the name of the one camera of `gclvad watch RUN SOURCE`
# A folder name on every file system: letters, digits, "_" and "-", not starting with either.
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


@dataclass(frozen=True)
class WatchSettings:
    """What `gclvad watch` can be told (times in seconds); all but batch_size can differ by camera."""

    quantile: float | None = (
        None  # alert threshold: this quantile of the run's training scores (None: the default rule)
    )
    threshold: float | None = None  # or this value
    hold_s: float = 2.0  # an event closes after this long at or below the threshold
    smooth_segments: int = 0  # > 1: alert on the causal smoothed score (span in segments)
    clips: bool = False  # save every event as an .mp4
    clip_margin_s: float = 3.0  # seconds of clip before the event starts and after it closes
    clip_buffer_mb: int = 256  # at most this much decoded video is kept for clips
    max_queued: int | None = None  # segments waiting before a live source drops (None: 2 batches)
    batch_size: int | None = None  # segments per extractor call when several wait (None: the run's)
    source: SourceSettings = field(default_factory=SourceSettings)


@dataclass(frozen=True)
class Camera:
    """One camera of a watch: its name (its output folder), its source and its settings
    (None: the watch's)."""

    name: str
    source: str
    settings: WatchSettings | None = None


# Camera file option -> (WatchSettings or SourceSettings field, accepted types).
_NUMBER = (int, float)
_WATCH_FIELDS = {
    "quantile": ("quantile", _NUMBER),
    "threshold": ("threshold", _NUMBER),
    "hold": ("hold_s", _NUMBER),
    "smooth_segments": ("smooth_segments", int),
    "clips": ("clips", bool),
    "clip_seconds": ("clip_margin_s", _NUMBER),
    "clip_buffer_mb": ("clip_buffer_mb", int),
    "max_queued": ("max_queued", int),
}
_SOURCE_FIELDS = {
    "realtime": ("realtime", bool),
    "format": ("input_format", str),
    "input_options": ("options", dict),
    "read_timeout": ("read_timeout_s", _NUMBER),
    "max_backoff": ("max_backoff_s", _NUMBER),
    "give_up_after": ("give_up_after_s", _NUMBER),
}
CAMERA_OPTIONS = ("name", "source", *_WATCH_FIELDS, *_SOURCE_FIELDS)
_WANTED = {bool: "true or false", int: "a whole number", str: "a text", dict: "a mapping"}
_MAY_BE_NULL = {"threshold", "max_queued", "format", "give_up_after"}


def check_names(cameras: Sequence[Camera], where: str) -> None:
    """Unique, folder-safe names (unique ignoring case: some file systems ignore it)."""
    seen: dict[str, str] = {}
    for number, camera in enumerate(cameras, 1):
        if not isinstance(camera.name, str) or not _SAFE_NAME.fullmatch(camera.name):
            raise GclvadError(
                f"{where}: camera {number} has the name {camera.name!r}; a camera name is its output "
                "folder: 1 to 64 letters, digits, '_' or '-', starting with a letter or digit"
            )
        folded = camera.name.casefold()
        if folded in seen:
            raise GclvadError(
                f"{where}: camera {number} is named {camera.name!r} like an earlier one ({seen[folded]!r}); "
                "camera names must be unique (ignoring case), each is an output folder"
            )
        seen[folded] = camera.name


def cameras_of_sources(sources: Sequence[str]) -> list[Camera]:
    """Cameras of sources given on the command line: camera1, camera2, ..."""
    return [Camera(f"camera{number}", str(source)) for number, source in enumerate(sources, 1)]


def _camera_file(path: Path) -> Mapping:
    """The camera file's content: a mapping of `cameras` (a non-empty list) and optional `sinks`."""
    import yaml  # only a camera file needs it

    try:
        content = yaml.safe_load(path.read_text())
    except OSError as error:
        raise GclvadError(f"{path}: cannot read the camera file: {error.strerror or error}") from error
    except yaml.YAMLError as error:
        raise GclvadError(f"{path}: not valid YAML: {error}") from error
    if (
        not isinstance(content, Mapping)
        or "cameras" not in content
        or not set(content) <= {"cameras", "sinks"}
        or not isinstance(content["cameras"], list)
    ):
        raise GclvadError(
            f"{path}: expected a mapping with the key 'cameras', holding a list of cameras, and optionally "
            "'sinks', a list of event sinks"
        )
    if not content["cameras"]:
        raise GclvadError(f"{path}: the camera list is empty")
    return content


def read_camera_file(path: str | Path, defaults: WatchSettings) -> list[Camera]:
    """The cameras of a camera file (module docstring), each with `defaults` under its own options."""
    path = Path(path)
    entries = _camera_file(path)["cameras"]
    cameras = [_camera(entry, f"{path}: camera {number}", defaults) for number, entry in enumerate(entries, 1)]
    check_names(cameras, str(path))
    return cameras


def camera_file_sinks(path: str | Path) -> list | None:
    """The camera file's `sinks:` entries (gclvad.live.sinks.sinks_from_config reads them), if any."""
    return _camera_file(Path(path)).get("sinks")


def _camera(entry, where: str, defaults: WatchSettings) -> Camera:
    if not isinstance(entry, Mapping):
        raise GclvadError(f"{where}: expected a mapping with name, source and options, got {entry!r}")
    named = f"{where} ({entry['name']!r})" if "name" in entry else where
    for key in ("name", "source"):
        if key not in entry:
            raise GclvadError(f"{named}: no {key!r} given (every camera needs a name and a source)")
    unknown = sorted(str(key) for key in entry if key not in CAMERA_OPTIONS)
    if unknown:
        known = ", ".join(CAMERA_OPTIONS)
        raise GclvadError(f"{named}: unknown option {', '.join(map(repr, unknown))}; a camera takes {known}")
    if not isinstance(entry["source"], str) or not entry["source"]:
        raise GclvadError(f"{named}: 'source' must be a URL, camera device or file path, got {entry['source']!r}")
    if "quantile" in entry and "threshold" in entry:
        raise GclvadError(f"{named}: give 'quantile' or 'threshold', not both")
    watch_changes = _changes(entry, _WATCH_FIELDS, named)
    source_changes = _changes(entry, _SOURCE_FIELDS, named)
    if "options" in source_changes:
        source_changes["options"] = {str(key): str(value) for key, value in source_changes["options"].items()}
    if "quantile" in entry:  # a camera's own quantile replaces a threshold value given to the whole watch
        watch_changes["threshold"] = None
    source = dataclasses.replace(defaults.source, **source_changes)
    settings = dataclasses.replace(defaults, **watch_changes, source=source)
    return Camera(entry["name"], entry["source"], settings)


def _changes(entry: Mapping, fields: dict, where: str) -> dict:
    """The settings fields `entry` sets, its values' types checked."""
    changes = {}
    for key, (name, kinds) in fields.items():
        if key not in entry:
            continue
        value = entry[key]
        fits = isinstance(value, kinds) and (kinds is bool or not isinstance(value, bool))
        if not fits and not (value is None and key in _MAY_BE_NULL):
            wanted = _WANTED.get(kinds, "a number")
            raise GclvadError(f"{where}: {key!r} must be {wanted}, got {value!r}")
        changes[name] = float(value) if kinds is _NUMBER and value is not None else value
    return changes
