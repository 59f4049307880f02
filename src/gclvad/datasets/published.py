"""The `features` dataset format: published per-video features (RTFM layout) instead of videos.

Spec keys:
    train_list, test_list  list files of .npy paths (`ucf-i3d.list`, `ucf-i3d-test.list`,
                 `shanghai-i3d-{train,test}-10crop.list`, XD-Violence's lists); see gclvad.features.published
                 for the file and id conventions.
    feature_dir  folder below which the listed files are found by name.
    one source of frame labels for the test videos:
      annotations  UCF-Crime's Temporal_Anomaly_Annotation_for_Testing_Videos.txt (the
                   ucf_crime reader's convention: 1-based inclusive -> [s-1, e));
      frame_masks  ShanghaiTech's test_frame_mask/ folder: a 0/1 entry per original frame;
                   features cover whole segments, so a mask is padded with its last value to
                   segment_length x rows, as RTFM's gt-sh.npy is (checked on the published
                   files: it is exactly that);
      labels       a concatenated frame-label array (`gt-ucf.npy`, `gt-sh.npy`, XD's
                   `gt.npy`): split by the test list's feature lengths (segment_length x
                   rows each), in list order.
    video_labels  how a video's normal/anomalous label follows from its name: `ucf_crime`
                 (`Normal_*` normal), `shanghaitech` (ids of the original training set,
                 NN_NNN, normal; of the original testing set, NN_NNNN, anomalous),
                 `xd_violence` (`label_A` normal), `none`, or `auto` (default: the first
                 convention every listed name fits).
    segment_length  frames per feature row (added by the workflow from its own setting).

The field's I3D features of UCF-Crime, ShanghaiTech and XD-Violence (Tian et al., RTFM, and
the XD-Violence authors) come as .npy arrays listed with the paths their authors had
(absolute Linux or Windows paths, CRLF): one `<video>_i3d.npy` per video of shape
(T, crops, d) (10 crops: UCF-Crime, ShanghaiTech) or (T, d), or one (T, d) file per crop,
`<video>__<k>.npy` (XD-Violence: 5 crops). A list entry's file is found by its name anywhere
below the feature folder. Its video id is the file name without `.npy`, without a crop
suffix `__<k>` and without `_i3d`; characters outside the ids gclvad allows (letters,
digits, `_ - .`) become `-` (XD-Violence names hold `#`), and two files that map to one id
(other than one per crop) are refused.

Frames of a video = segment_length x its feature rows; there is no padded tail. A video
whose file is missing is reported by the segment index as a bad video (`on_bad_video`).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gclvad.datasets.base import TEST, TRAIN, VIDEO_ID_PATTERN, FrameMask, Video
from gclvad.datasets.generic import existing_dir, existing_file, spec_path
from gclvad.datasets.ucf_crime import read_temporal_annotations, test_annotation
from gclvad.errors import BadDatasetError, GclvadError
from gclvad.features.npy import video_shape

FORMAT = "features"
_CROP_SUFFIX = re.compile(r"__(\d+)$")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-]")
_CONVENTIONS = {
    "ucf_crime": (re.compile(r".+"), lambda name: 0 if name.startswith("Normal_") else 1),
    "shanghaitech": (re.compile(r"\d\d_\d{3,4}"), lambda name: 1 if re.fullmatch(r"\d\d_\d{4}", name) else 0),
    "xd_violence": (re.compile(r".*_label_.+"), lambda name: 0 if name.endswith("_label_A") else 1),
}


@dataclass(frozen=True)
class LabelSlice:
    """A test video's frame labels as its stretch of a concatenated label array."""

    path: Path
    start: int
    stop: int

    def mask(self, n_frames: int) -> np.ndarray:
        if n_frames != self.stop - self.start:
            raise BadDatasetError(self.path, f"holds {self.stop - self.start} frames for a video of {n_frames}")
        return _label_array(self.path)[self.start : self.stop] > 0


# ---------------------------------------------------------------- list files


@dataclass(frozen=True)
class ListEntry:
    """One line of a list file: the file it names, the video and crop it belongs to."""

    line: int
    name: str  # the file name, as written at the end of the line's path
    video: str  # video id (see the module docstring)
    crop: int | None  # k of a per-crop file `<video>__<k>.npy`, else None


def video_id_of(name: str) -> tuple[str, int | None]:
    """('A.Beautiful.Mind.2001__-00-25-20_00-29-20_label_A', 0) for
    'A.Beautiful.Mind.2001__#00-25-20_00-29-20_label_A__0.npy'; ('Abuse001_x264', None) for
    'Abuse001_x264_i3d.npy'."""
    stem = name[: -len(".npy")] if name.endswith(".npy") else name
    crop = None
    match = _CROP_SUFFIX.search(stem)
    if match:
        crop, stem = int(match.group(1)), stem[: match.start()]
    if stem.endswith("_i3d"):
        stem = stem[: -len("_i3d")]
    return _UNSAFE.sub("-", stem), crop


def read_list(path: Path) -> list[ListEntry]:
    """The entries of an RTFM-style list file (CRLF, Windows or Linux paths), in order."""
    if not path.is_file():
        raise GclvadError(f"{path}: feature list not found")
    entries, problems = [], []
    with open(path, encoding="utf-8-sig") as handle:
        for number, text in enumerate(handle, start=1):
            text = text.strip()
            if not text:
                continue
            name = text.replace("\\", "/").rsplit("/", 1)[-1]
            video, crop = video_id_of(name)
            if not name.endswith(".npy"):
                problems.append(f"line {number}: {name!r} is not a .npy file")
            elif not re.fullmatch(VIDEO_ID_PATTERN, video):
                problems.append(f"line {number}: {name!r} gives no usable video id ({video!r})")
            entries.append(ListEntry(number, name, video, crop))
    if problems:
        raise GclvadError(f"{path}: " + "; ".join(problems[:10]) + (" ..." if len(problems) > 10 else ""))
    if not entries:
        raise GclvadError(f"{path}: lists no feature files")
    return entries


def videos_of(entries: Sequence[ListEntry], path: Path) -> dict[str, list[ListEntry]]:
    """Video id -> its entries (one file, or one per crop in crop order), in list order."""
    videos: dict[str, list[ListEntry]] = {}
    for entry in entries:
        parts = videos.setdefault(entry.video, [])
        if parts and (entry.crop is None or parts[0].crop is None or entry.crop in {p.crop for p in parts}):
            raise GclvadError(
                f"{path}: line {entry.line}: video {entry.video} is listed twice (also line {parts[0].line}"
                + (f", from {parts[0].name!r} and {entry.name!r})" if parts[0].name != entry.name else ")")
            )
        parts.append(entry)
    for video, parts in videos.items():
        crops = sorted(p.crop for p in parts if p.crop is not None)
        if crops and crops != list(range(len(crops))):
            raise GclvadError(f"{path}: video {video} lists crops {crops}; expected 0..{len(crops) - 1}")
        parts.sort(key=lambda p: -1 if p.crop is None else p.crop)
    return videos


def find_files(folder: Path) -> dict[str, list[Path]]:
    """Every .npy file below `folder`, by file name (a name may occur more than once)."""
    if not folder.is_dir():
        raise GclvadError(f"{folder}: feature folder not found")
    files: dict[str, list[Path]] = {}
    for path in sorted(folder.rglob("*.npy")):
        files.setdefault(path.name, []).append(path)
    return files


def located(files: Mapping[str, list[Path]], entry: ListEntry, list_file: Path, folder: Path) -> Path:
    """The one file of a list entry below the feature folder."""
    found = files.get(entry.name, [])
    if len(found) == 1:
        return found[0]
    if not found:
        raise GclvadError(f"{list_file}: line {entry.line}: no file named {entry.name} below {folder}")
    raise GclvadError(
        f"{list_file}: line {entry.line}: {entry.name} is found more than once below {folder}: "
        + ", ".join(str(p) for p in found)
    )


# ---------------------------------------------------------------- the reader


def read_published(spec: dict) -> list[Video]:
    """The videos of a features dataset: one per listed video, its source the (first) .npy file."""
    train_list, test_list, folder = (spec_path(spec, key, FORMAT) for key in ("train_list", "test_list", "feature_dir"))
    for path, what in ((train_list, "train list"), (test_list, "test list")):
        existing_file(path, what)
    existing_dir(folder, "feature folder")
    segment_length = int(spec.get("segment_length", 16))
    files = find_files(folder)
    listed = {TRAIN: videos_of(read_list(train_list), train_list), TEST: videos_of(read_list(test_list), test_list)}
    both = sorted(set(listed[TRAIN]) & set(listed[TEST]))
    if both:
        raise BadDatasetError(test_list, f"videos listed both here and in the train list: {', '.join(both[:20])}")
    label_of = _label_rule(spec.get("video_labels", "auto"), [*listed[TRAIN], *listed[TEST]], test_list)
    truths = _test_truths(spec, listed[TEST], files, segment_length, label_of, test_list)
    videos = []
    for split, path in ((TRAIN, train_list), (TEST, test_list)):
        for video, parts in listed[split].items():
            sources, problem = _sources(parts, files, folder)
            videos.append(
                Video(
                    id=video,
                    source=sources[0],
                    split=split,
                    label=label_of(video),
                    annotation=truths.get(video) if split == TEST else None,
                    listed_at=f"{path} line {parts[0].line}",
                    problem=problem,
                    kind="features",
                    parts=tuple(sources),
                )
            )
    return videos


def _sources(parts, files, folder: Path) -> tuple[list[Path], str]:
    """The files of one video, and why it cannot be used ("" when it can)."""
    sources, problems = [], []
    for part in parts:
        found = files.get(part.name, [])
        sources.append(found[0] if found else folder / part.name)
        if not found:
            problems.append(f"{part.name} is listed but not found below {folder}")
        elif len(found) > 1:
            problems.append(f"{part.name} is found more than once below {folder}: {', '.join(map(str, found))}")
    return sources, "; ".join(problems)


def _label_rule(convention: str, names: list[str], path: Path):
    """The function giving a video's label (1, 0 or None) from its name."""
    if convention == "none":
        return lambda name: None
    if convention == "auto":
        for key in ("xd_violence", "shanghaitech"):
            if all(_CONVENTIONS[key][0].fullmatch(name) for name in names):
                return _CONVENTIONS[key][1]
        if any(name.startswith("Normal_") for name in names):
            return _CONVENTIONS["ucf_crime"][1]
        return lambda name: None
    if convention not in _CONVENTIONS:
        raise GclvadError(f"video_labels must be auto, none or one of {', '.join(_CONVENTIONS)}; found {convention!r}")
    pattern, rule = _CONVENTIONS[convention]
    unfit = [name for name in names if not pattern.fullmatch(name)]
    if unfit:
        raise BadDatasetError(path, f"names do not follow the {convention} convention: {', '.join(unfit[:5])}")
    return rule


def _test_truths(spec: dict, tests: dict, files, segment_length: int, label_of, path: Path) -> dict:
    """Frame ground truth of the test videos, from whichever source the spec names."""
    given = [key for key in ("annotations", "frame_masks", "labels") if spec.get(key)]
    if len(given) > 1:
        raise GclvadError(f"a features dataset takes one source of frame labels; it names {', '.join(given)}")
    if not given:
        return {}
    if given[0] == "annotations":
        annotation_file = existing_file(Path(spec["annotations"]), "temporal annotation file")
        annotations = read_temporal_annotations(annotation_file)
        found = {video: test_annotation(video, annotations, annotation_file) for video in tests}
        return {video: intervals for video, intervals in found.items() if intervals is not None}
    if given[0] == "frame_masks":
        folder = existing_dir(Path(spec["frame_masks"]), "frame mask folder")
        masks = {video: folder / f"{video}.npy" for video in tests}
        return {video: FrameMask(mask, pad_to=segment_length) for video, mask in masks.items() if mask.is_file()}
    return _label_slices(Path(spec["labels"]), tests, files, segment_length, label_of, path)


def _label_slices(labels: Path, tests: dict, files, segment_length: int, label_of, test_list: Path) -> dict:
    """Each test video's stretch of the concatenated label array, in test-list order.

    The array must hold exactly segment_length x rows frames per video; where it does not,
    the error names the first video at which the two part ways (a normal video holding
    anomalous labels is taken as such a place too)."""
    array = _label_array(existing_file(labels, "frame label array"))
    slices, start = {}, 0
    for video, parts in tests.items():
        found = [files.get(part.name, []) for part in parts]
        if not all(len(paths) == 1 for paths in found):
            raise BadDatasetError(labels, f"cannot be split: the features of test video {video} are not all found")
        frames = video_shape([paths[0] for paths in found])[0] * segment_length
        stop = start + frames
        if stop > len(array):
            raise BadDatasetError(
                labels,
                f"holds {len(array)} frame labels, but the test videos' features need more: they part ways at "
                f"{video} ({test_list} line {parts[0].line}), which needs frames {start}..{stop - 1}",
            )
        if label_of(video) == 0 and array[start:stop].any():
            raise BadDatasetError(
                labels,
                f"marks anomalous frames within the stretch of the normal test video {video} ({start}..{stop - 1}): "
                "the labels and the test list's features do not line up (another list order or segment length?)",
            )
        slices[video], start = LabelSlice(labels, start, stop), stop
    if start != len(array):
        raise BadDatasetError(
            labels, f"holds {len(array)} frame labels, but the test list's features cover {start} frames ({test_list})"
        )
    return slices


def _label_array(path: Path) -> np.ndarray:
    """The label array of `path`, read once per version of the file (each test video reads it)."""
    stat = Path(path).stat()
    return _read_label_array(Path(path), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=4)
def _read_label_array(path: Path, mtime_ns: int, size: int) -> np.ndarray:
    try:
        values = np.load(path, allow_pickle=False).reshape(-1)
    except (OSError, ValueError) as error:
        raise BadDatasetError(path, f"cannot be read as a .npy label array ({error})") from None
    if values.dtype.kind not in "biuf" or not np.isin(values, (0, 1)).all():
        raise BadDatasetError(path, "a frame label array must hold 0 and 1 only")
    return values
