"""Videos named on a command line or found in a folder: their sources and ids.

A video is a file FFmpeg can read or a folder of frame images; its id (file stem, or folder
name) names its output files, so ids must be distinct.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from gclvad.decode.video import VIDEO_SUFFIXES
from gclvad.errors import BadVideoError, GclvadError


def video_ids(videos: Iterable[str | Path]) -> dict[str, Path]:
    """Video id (file stem, or folder name for frame folders) -> source; each must exist and
    ids must be distinct, since they name the output files."""
    by_id: dict[str, list[Path]] = {}
    for video in videos:
        source = Path(video)
        if not source.exists():
            raise BadVideoError(source, "not found: expected a video file or a folder of frame images")
        by_id.setdefault(source.name if source.is_dir() else source.stem, []).append(source)
    if not by_id:
        raise GclvadError("no videos to score")
    clashes = {video: paths for video, paths in by_id.items() if len(paths) > 1}
    if clashes:
        listed = "; ".join(f"{video}: {', '.join(map(str, paths))}" for video, paths in clashes.items())
        raise GclvadError(
            f"videos must have distinct names (they name the output files), but these share one: {listed}"
        )
    return {video: paths[0] for video, paths in by_id.items()}


def videos_in_folder(folder: str | Path) -> list[Path]:
    """The video files (by suffix) and frame folders directly inside `folder`, sorted."""
    folder = Path(folder)
    if not folder.is_dir():
        raise GclvadError(f"{folder}: folder of videos to score not found")
    found = sorted(
        entry
        for entry in folder.iterdir()
        if not entry.name.startswith(".") and (entry.is_dir() or entry.suffix.lower() in VIDEO_SUFFIXES)
    )
    if not found:
        raise GclvadError(
            f"{folder}: holds no videos to score (files ending in {', '.join(sorted(VIDEO_SUFFIXES))}, "
            "or folders of frame images)"
        )
    return found
