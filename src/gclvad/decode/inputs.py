"""Videos named on a command line or found in a folder: their sources and ids.

A video is a file FFmpeg can read or a folder of frame images; its id (file stem, or folder
name) names its output files, so ids must be distinct. Every command that takes videos
(`gclvad score`, `gclvad extract`) finds them with `collect_videos`, so they accept the same
inputs: video files, frame folders, and folders of videos.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from gclvad.decode.video import IMAGE_SUFFIXES, VIDEO_SUFFIXES
from gclvad.errors import BadVideoError, GclvadError

# What a video that cannot be used does to a call that was given several: `stop` it (an error
# naming the video and the problem) or be `skip`ped (reported with its reason).
ON_BAD_VIDEO = ("stop", "skip")


def is_frame_folder(folder: Path) -> bool:
    """Whether `folder` holds frame images (then it is one video, not a folder of videos)."""
    return any(entry.is_file() and entry.suffix.lower() in IMAGE_SUFFIXES for entry in folder.iterdir())


def is_video_file(path: Path) -> bool:
    """Whether a file found in a folder is taken for a video (by its suffix)."""
    return path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES


def _visible_entries(folder: Path) -> list[Path]:
    return sorted(entry for entry in folder.iterdir() if not entry.name.startswith("."))


def folder_videos(folder: Path) -> list[Path]:
    """The video files and frame folders directly inside a folder of videos, sorted."""
    found = [e for e in _visible_entries(folder) if is_video_file(e) or (e.is_dir() and is_frame_folder(e))]
    if not found:
        raise GclvadError(
            f"{folder}: is neither a frame folder (images) nor a folder of videos (files ending in "
            f"{', '.join(sorted(VIDEO_SUFFIXES))}, or frame folders)"
        )
    return found


def collect_videos(inputs: Sequence[str | Path]) -> dict[str, Path]:
    """Video id -> source for a command's inputs: video files and frame folders as given,
    folders of videos expanded (one level); each must exist and ids must be distinct."""
    sources: list[Path] = []
    for given in map(Path, inputs):
        if given.is_dir() and not is_frame_folder(given):
            sources += folder_videos(given)
        else:
            sources.append(given)
    return video_ids(sources)


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
        raise GclvadError("no videos given")
    clashes = {video: paths for video, paths in by_id.items() if len(paths) > 1}
    if clashes:
        listed = "; ".join(f"{video}: {', '.join(map(str, paths))}" for video, paths in clashes.items())
        raise GclvadError(
            f"videos must have distinct names (they name the output files), but these share one: {listed}"
        )
    return {video: paths[0] for video, paths in by_id.items()}


def videos_in_folder(folder: str | Path) -> list[Path]:
    """The video files (by suffix) and frame folders directly inside `folder`, sorted (the
    workflow's score_folder rule: a folder that must hold videos)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise GclvadError(f"{folder}: folder of videos to score not found")
    return folder_videos(folder)
