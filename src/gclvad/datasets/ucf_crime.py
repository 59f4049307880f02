"""UCF-Crime (Sultani et al., CVPR 2018): official videos, split lists and temporal annotations.

Spec keys:
    root         folder holding the videos; files are found by name anywhere below it, so
                 both the official ``Anomaly-Videos-Part-1/Abuse/Abuse001_x264.mp4`` layout
                 and a flat ``Videos/Abuse/Abuse001_x264.mp4`` one work.
    train_list   Anomaly_Train.txt (lines such as ``Abuse/Abuse001_x264.mp4``) or a CSV
    test_list    with the header ``video-id`` and ids such as ``Abuse001_x264``.
    annotations  Temporal_Anomaly_Annotation_for_Testing_Videos.txt: whitespace-separated
                 ``file class s1 e1 s2 e2``, ``-1`` where a video has no (second) event.

Video id = file stem (``Abuse001_x264``): the folder of a list entry only helps to find the
file, so ids are the official names, which fit the ids gclvad allows (letters, digits,
``_ - .``). Label 0 for ids starting with ``Normal_Videos`` (class ``Normal`` in the
annotation file), 1 otherwise. A listed video without a file is reported by the segment
index as a bad video (``on_bad_video``), like one that does not decode; so is a video
listed twice, or in both lists, with the lines that list it.

Frame convention: Sultani et al.'s evaluation code reads the annotation numbers as 1-based
frame indices with both ends included, so a line ``... 165 240 ...`` marks frames
165..240 counted from 1, which is the 0-based half-open interval [164, 240): 76 frames.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from gclvad.datasets.base import TEST, TRAIN, Intervals, Video
from gclvad.datasets.generic import (
    checked_id,
    existing_dir,
    existing_file,
    raise_line_errors,
    read_csv_table,
    read_lines,
    spec_path,
)
from gclvad.decode.video import VIDEO_SUFFIXES
from gclvad.errors import BadDatasetError

NORMAL_PREFIX = "Normal_Videos"
NORMAL_CLASS = "Normal"
CSV_HEADER = "video-id"


def read_ucf_crime(spec: dict) -> list[Video]:
    root, train_list, test_list, annotation_file = (
        spec_path(spec, key, "ucf_crime") for key in ("root", "train_list", "test_list", "annotations")
    )
    existing_dir(root, "UCF-Crime video root")
    existing_file(train_list, "train list")
    existing_file(test_list, "test list")
    existing_file(annotation_file, "temporal annotation file")

    train_entries = read_list_entries(train_list)
    test_entries = read_list_entries(test_list)
    annotations = read_temporal_annotations(annotation_file)
    files = index_video_files(root)

    videos = [_video(entry, train_list, TRAIN, files, root) for entry in train_entries]
    for entry in test_entries:
        annotation = test_annotation(entry[0], annotations, annotation_file)
        videos.append(_video(entry, test_list, TEST, files, root, annotation))
    return videos


def _video(
    entry: tuple[str, str, int], listed_in: Path, split: str, files, root: Path, annotation: Intervals | None = None
) -> Video:
    video_id, hint, line = entry
    source, problem = _find(video_id, hint, files, root)
    return Video(video_id, source, split, label_of(video_id), annotation, f"{listed_in} line {line}", problem)


def label_of(video_id: str) -> int:
    return 0 if video_id.startswith(NORMAL_PREFIX) else 1


def video_id_of(entry: str) -> str:
    """``Abuse/Abuse001_x264.mp4``, ``Abuse001_x264.mp4`` or ``Abuse001_x264`` -> ``Abuse001_x264``."""
    name = PurePosixPath(entry.replace("\\", "/")).name
    stem, dot, suffix = name.rpartition(".")
    return stem if dot and f".{suffix.lower()}" in VIDEO_SUFFIXES else name


def read_video_list(path: Path) -> list[str]:
    """Video ids of a split list, in the official .txt format or the ``video-id`` CSV format."""
    return [video_id for video_id, _, _ in read_list_entries(path)]


def read_list_entries(path: Path) -> list[tuple[str, str, int]]:
    """(video id, entry as written with / separators, line number) for each video of a split list."""
    lines = read_lines(path)
    if not lines:
        raise BadDatasetError(path, "lists no videos")
    if lines[0][1] == CSV_HEADER:
        table = read_csv_table(path, (CSV_HEADER,), (CSV_HEADER,))
        written = [(line, value) for line, value in zip(table.index, table[CSV_HEADER], strict=True) if value]
    else:
        written = [(line, text) for line, text in lines]
    problems: list[str] = []
    entries = [(checked_id(video_id_of(text), line, problems), text.replace("\\", "/"), line) for line, text in written]
    raise_line_errors(path, problems)
    return entries


def read_temporal_annotations(path: Path) -> dict[str, tuple[str, Intervals]]:
    """video id -> (class, anomalous Intervals, 0-based half-open) from the annotation file."""
    found: dict[str, tuple[str, Intervals]] = {}
    for line, text in read_lines(path):
        fields = text.split()  # any run of blanks: the file mixes double and trailing spaces
        if len(fields) != 6:
            raise BadDatasetError(
                path, f"line {line}: expected 6 columns 'file class s1 e1 s2 e2', found {len(fields)}: {text!r}"
            )
        video_id = video_id_of(fields[0])
        if video_id in found:
            raise BadDatasetError(path, f"line {line}: video {video_id} is annotated twice")
        numbers = [_annotation_number(value, line, path) for value in fields[2:]]
        spans = [_interval(numbers[i], numbers[i + 1], line, path) for i in (0, 2)]
        found[video_id] = (fields[1], Intervals(tuple(span for span in spans if span), source=path))
    return found


def _annotation_number(value: str, line: int, path: Path) -> int:
    try:
        return int(value)
    except ValueError:
        raise BadDatasetError(path, f"line {line}: frame numbers must be integers, found {value!r}") from None


def _interval(first: int, last: int, line: int, path: Path) -> tuple[int, int] | None:
    """1-based inclusive first..last -> 0-based half-open (first - 1, last); -1 -1 -> None."""
    if first == -1 and last == -1:
        return None
    if first < 1 or last < first:
        raise BadDatasetError(
            path, f"line {line}: interval {first}..{last} needs 1 <= start <= end (or -1 -1 for none)"
        )
    return (first - 1, last)


def test_annotation(video_id: str, annotations: dict[str, tuple[str, Intervals]], path: Path) -> Intervals | None:
    if video_id not in annotations:
        if label_of(video_id) == 0:
            return None  # normal test video: Video.truth gives all zeros from its label
        raise BadDatasetError(path, f"has no line for the anomalous test video {video_id}")
    cls, intervals = annotations[video_id]
    if (cls == NORMAL_CLASS) != (label_of(video_id) == 0):
        raise BadDatasetError(path, f"class {cls!r} of {video_id} disagrees with its name")
    if label_of(video_id) == 1 and not intervals.spans:
        raise BadDatasetError(path, f"anomalous test video {video_id} has no interval (all -1)")
    if label_of(video_id) == 0 and intervals.spans:
        raise BadDatasetError(path, f"normal test video {video_id} has anomalous intervals")
    return intervals if intervals.spans else None


def index_video_files(root: Path) -> dict[str, list[Path]]:
    """Every video file below root, by id (file stem); a stem may occur more than once."""
    files: dict[str, list[Path]] = {}
    for path in sorted(root.rglob("*")):
        if path.suffix.lower() in VIDEO_SUFFIXES and path.is_file():
            files.setdefault(path.stem, []).append(path)
    return files


def _find(video_id: str, hint: str, files: dict[str, list[Path]], root: Path) -> tuple[Path, str]:
    """The one file of a listed video, and why it cannot be used ("" when it can).

    The official download holds some videos twice (e.g. normal videos also in the event
    recognition folder), so several candidates are resolved by the list entry's folder
    (``Abuse/Abuse001_x264.mp4``) and, failing that, accepted when they are copies of the
    same size. Without a file, the path is where the list entry points below root.
    """
    candidates = files.get(video_id, [])
    if not candidates:
        return root / hint, f"is listed but no file named {video_id}.* is found below {root}"
    if len(candidates) == 1:
        return candidates[0], ""
    hinted = [path for path in candidates if hint and path.as_posix().endswith("/" + hint)]
    if len(hinted) == 1:
        return hinted[0], ""
    if len({path.stat().st_size for path in candidates}) == 1:
        return candidates[0], ""
    return candidates[0], (
        f"is found more than once below {root} with different sizes: {', '.join(str(p) for p in candidates)}"
    )
