"""The generic dataset format: a practitioner's own videos described by a CSV manifest.

Spec keys:
    manifest     videos.csv with columns ``video,path[,split][,label]``.
                 path: a video file or a folder of frame images (sorted by name), relative
                 to the manifest's folder unless absolute.
                 split: ``train`` or ``test``; an empty cell, or no split column at all,
                 means unlabelled footage that is both trained on and scored.
                 label: ``0`` normal, ``1`` anomalous, empty = unknown.
    annotations  optional annotations.csv with columns ``video,start_frame,end_frame``:
                 anomalous frames [start_frame, end_frame), 0-based, end exclusive; a video
                 may have several rows. A video without rows keeps annotation None, so its
                 frame truth comes from its label (0: all normal, otherwise unknown).

Every line is checked before anything is raised, so one error lists every bad line. A
listed video whose file is missing is not an error of the manifest: it becomes a `Video`
with a `problem`, which the segment index reports (and `on_bad_video: skip` skips) like a
video that does not decode. Duplicate ids are reported by the segment index too, with
their line numbers, beside every other problem. When the manifest itself is bad (an unsafe
id, a bad split or label), its error lists the missing files and duplicate ids as well, so
one pass shows every problem.

This module also holds the small helpers (spec keys, list files, collected line errors)
that the other readers share.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from gclvad.datasets.base import TEST, TRAIN, Intervals, Video, video_id_problem
from gclvad.errors import BadDatasetError, GclvadError

MANIFEST_COLUMNS = ("video", "path", "split", "label")
REQUIRED_MANIFEST_COLUMNS = ("video", "path")
ANNOTATION_COLUMNS = ("video", "start_frame", "end_frame")


# ---------------------------------------------------------------- helpers shared by readers


def spec_path(spec: dict, key: str, fmt: str) -> Path:
    """The path a dataset spec gives under `key`, taken as given (relative to the cwd)."""
    if spec.get(key) in (None, ""):
        raise GclvadError(f"dataset spec of format {fmt!r} lacks the key {key!r}; it has {sorted(spec)}")
    return Path(spec[key])


def existing_file(path: Path, what: str) -> Path:
    if not path.is_file():
        raise BadDatasetError(path, f"{what} not found (no such file)")
    return path


def existing_dir(path: Path, what: str) -> Path:
    if not path.is_dir():
        raise BadDatasetError(path, f"{what} not found (no such folder)")
    return path


def read_lines(path: Path) -> list[tuple[int, str]]:
    """Non-blank lines of a text file as (1-based line number, stripped text).

    Universal newlines plus strip() absorb the CRLF endings, trailing blanks and missing
    final newline that the published split files have.
    """
    with open(path, encoding="utf-8-sig") as handle:
        return [(n, line.strip()) for n, line in enumerate(handle, start=1) if line.strip()]


def raise_line_errors(path: Path, problems: list[str], shown: int = 20) -> None:
    """One BadDatasetError listing every problem found in `path` (none: nothing happens)."""
    if len(problems) == 1:
        raise BadDatasetError(path, problems[0])
    if problems:
        listed = problems[:shown] + ([f"... and {len(problems) - shown} more"] if len(problems) > shown else [])
        raise BadDatasetError(path, f"{len(problems)} problems:\n  " + "\n  ".join(listed))


def checked_id(video_id: str, line: int, problems: list[str]) -> str:
    """`video_id`, after noting in `problems` why it is not a valid id (if it is not)."""
    problem = video_id_problem(video_id)
    if problem:
        problems.append(f"line {line}: {problem}")
    return video_id


def read_csv_table(path: Path, required: tuple[str, ...], allowed: tuple[str, ...]) -> pd.DataFrame:
    """A CSV file as a table of stripped strings, with its column names checked.

    Every cell is read as text (empty cells as "") so that ids such as 01_001 keep their
    leading zeros and labels are checked as written rather than as pandas guesses them.
    The table's index is each row's line number in the file (blank lines are dropped).
    """
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True, skip_blank_lines=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise BadDatasetError(path, f"cannot be read as CSV: {error}") from error
    table.columns = [str(name).strip() for name in table.columns]
    missing = [name for name in required if name not in table.columns]
    if missing:
        raise BadDatasetError(path, f"lacks the column(s) {', '.join(missing)}; found columns {list(table.columns)}")
    unknown = [name for name in table.columns if name not in allowed]
    if unknown:
        raise BadDatasetError(
            path, f"has unknown column(s) {', '.join(unknown)}; allowed columns are {', '.join(allowed)}"
        )
    table = table.apply(lambda column: column.str.strip())
    table.index = table.index + 2  # line 1 is the header
    return table[(table != "").any(axis=1)]


# ---------------------------------------------------------------- the generic reader


def read_generic(spec: dict) -> list[Video]:
    """Videos of a dataset described by a generic manifest (and optional annotations)."""
    manifest = existing_file(spec_path(spec, "manifest", "generic"), "manifest")
    table = read_csv_table(manifest, REQUIRED_MANIFEST_COLUMNS, MANIFEST_COLUMNS)
    if table.empty:
        raise BadDatasetError(manifest, "lists no videos")

    annotations = {}
    if spec.get("annotations"):
        annotations = read_annotations(Path(spec["annotations"]), set(table["video"]))

    videos, problems = [], []
    for line, row in zip(table.index, table.itertuples(index=False), strict=True):
        videos.append(_video_of_row(row._asdict(), line, manifest, annotations, problems))
    if problems:  # the manifest is refused: name what the segment index would have said too
        problems += [
            f"{video.listed_at.removeprefix(f'{manifest} ')}: {video.problem}" for video in videos if video.problem
        ]
        problems += _duplicate_ids(table)
    raise_line_errors(manifest, problems)
    return videos


def _duplicate_ids(table: pd.DataFrame) -> list[str]:
    lines_of: dict[str, list[int]] = {}
    for line, video_id in zip(table.index, table["video"], strict=True):
        lines_of.setdefault(video_id, []).append(line)
    return [
        f"lines {', '.join(map(str, lines))}: video id {video_id!r} is listed more than once (ids name result files)"
        for video_id, lines in lines_of.items()
        if len(lines) > 1
    ]


def _noted(problems: list[str], check, *arguments):
    """check(*arguments), or None after noting its BadDatasetError in `problems`: every
    column of a line is checked, not only up to the first bad one."""
    try:
        return check(*arguments)
    except BadDatasetError as error:
        problems.append(error.problem)
        return None


def _video_of_row(row: dict, line: int, manifest: Path, annotations: dict[str, Intervals], problems: list) -> Video:
    """The line's video; what is wrong with the line goes to `problems` (the file missing
    goes to the video's `problem` instead)."""
    video_id = checked_id(row["video"], line, problems)
    split = _noted(problems, _split_of, row.get("split", ""), line, manifest)
    label = _noted(problems, _label_of, row.get("label", ""), line, manifest)
    source, missing = _noted(problems, _source_of, row["path"], line, manifest) or (manifest.parent, "")
    annotation = annotations.get(video_id)
    if annotation is not None and label == 0:
        problems.append(
            f"line {line}: video {video_id} has label 0 (normal) but anomalous intervals in {annotation.source}"
        )
    return Video(
        id=video_id, source=source, split=split, label=label, annotation=annotation,
        listed_at=f"{manifest} line {line}", problem=missing,
    )  # fmt: skip


def _split_of(value: str, line: int, manifest: Path) -> str | None:
    if value == "":
        return None
    if value not in (TRAIN, TEST):
        raise BadDatasetError(manifest, f"line {line}: split must be {TRAIN!r}, {TEST!r} or empty, found {value!r}")
    return value


def _label_of(value: str, line: int, manifest: Path) -> int | None:
    if value == "":
        return None
    if value not in ("0", "1"):
        raise BadDatasetError(manifest, f"line {line}: label must be 0, 1 or empty, found {value!r}")
    return int(value)


def _source_of(value: str, line: int, manifest: Path) -> tuple[Path, str]:
    """The video's path, and why it cannot be used ("" when it exists)."""
    if not value:
        raise BadDatasetError(manifest, f"line {line}: empty path")
    source = Path(value)
    if not source.is_absolute():
        source = manifest.parent / source
    if not source.exists():
        return source, f"not found: the manifest gives {value!r} (relative paths are read from its folder)"
    return source, ""


def read_annotations(path: Path, known_videos: set[str]) -> dict[str, Intervals]:
    """Anomalous intervals per video from a generic annotations.csv."""
    existing_file(path, "annotations file")
    table = read_csv_table(path, ANNOTATION_COLUMNS, ANNOTATION_COLUMNS)
    spans: dict[str, list[tuple[int, int]]] = {}
    for line, row in zip(table.index, table.itertuples(index=False), strict=True):
        if row.video not in known_videos:
            raise BadDatasetError(path, f"line {line}: video {row.video!r} is not in the manifest")
        start = _frame_number(row.start_frame, "start_frame", line, path)
        end = _frame_number(row.end_frame, "end_frame", line, path)
        if start < 0 or end <= start:
            raise BadDatasetError(
                path, f"line {line}: interval [{start}, {end}) of {row.video} needs 0 <= start_frame < end_frame"
            )
        spans.setdefault(row.video, []).append((start, end))
    return {video: Intervals(tuple(sorted(found)), source=path) for video, found in spans.items()}


def _frame_number(value: str, column: str, line: int, path: Path) -> int:
    try:
        return int(value)
    except ValueError:
        raise BadDatasetError(path, f"line {line}: {column} must be an integer, found {value!r}") from None
