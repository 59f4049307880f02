"""`gclvad manifest`: a generic dataset's videos.csv written from a folder of videos.

The folder is searched recursively, since datasets keep videos in class folders
(UCF-Crime's Abuse/, Arson/, ...): every video file (by suffix) and every frame folder (a
folder holding images, not searched further) becomes one line `video,path`, without a split
(unlabelled footage, both trained on and scored). Ids are the file stems or folder names made
safe (each character `VIDEO_ID_PATTERN` does not allow becomes "_") and unique ("-2", "-3",
... on clashes, in path order); paths are relative to the manifest's folder.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from gclvad.atomic import write_atomic
from gclvad.decode.inputs import is_frame_folder, is_video_file
from gclvad.decode.video import VIDEO_SUFFIXES
from gclvad.errors import GclvadError

# Any character base.VIDEO_ID_PATTERN does not allow.
_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-]")


@dataclass(frozen=True)
class ManifestEntry:
    source: Path
    video: str  # the safe, unique id

    @property
    def renamed(self) -> bool:
        """Whether the id differs from the file stem (or folder name) it came from."""
        return self.video != _name_of(self.source)


def _name_of(source: Path) -> str:
    return source.name if source.is_dir() else source.stem


def find_videos(folder: Path) -> list[Path]:
    """Video files and frame folders under `folder` (recursively; hidden entries skipped),
    in path order."""
    found = []
    for entry in sorted(p for p in folder.iterdir() if not p.name.startswith(".")):
        if entry.is_dir():
            found += [entry] if is_frame_folder(entry) else find_videos(entry)
        elif is_video_file(entry):
            found.append(entry)
    return found


def safe_id(name: str) -> str:
    """`name` with every character an id may not hold replaced by "_" (and no leading ".")."""
    safe = _UNSAFE.sub("_", name)
    safe = "_" + safe[1:] if safe.startswith(".") else safe
    return safe or "video"


def unique_ids(sources: list[Path]) -> list[ManifestEntry]:
    """One safe id per source; a clash gets the first free suffix -2, -3, ..."""
    taken: set[str] = set()
    entries = []
    for source in sources:
        base = safe_id(_name_of(source))
        video, n = base, 1
        while video in taken:
            n += 1
            video = f"{base}-{n}"
        taken.add(video)
        entries.append(ManifestEntry(source, video))
    return entries


def write_manifest(folder: str | Path, out: str | Path, force: bool = False) -> list[ManifestEntry]:
    """Write the generic manifest of every video under `folder` to `out`; the entries written."""
    folder, out = Path(folder), Path(out)
    if not folder.is_dir():
        raise GclvadError(f"{folder}: not found: expected a folder of videos")
    if out.exists() and not force:
        raise GclvadError(f"{out}: exists; pass --force to overwrite it")
    entries = unique_ids(find_videos(folder))
    if not entries:
        raise GclvadError(
            f"{folder}: holds no videos (files ending in {', '.join(sorted(VIDEO_SUFFIXES))}, or folders of "
            "frame images), in it or in its subfolders"
        )
    base = out.absolute().parent
    table = pd.DataFrame(
        {
            "video": [e.video for e in entries],
            "path": [Path(os.path.relpath(e.source.absolute(), base)).as_posix() for e in entries],
        }
    )
    write_atomic(out, lambda temporary: table.to_csv(temporary, index=False))
    return entries
