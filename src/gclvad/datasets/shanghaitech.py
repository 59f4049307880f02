"""ShanghaiTech Campus in the re-split of Zhong et al. (CVPR 2019): 238 train / 199 test videos.

The re-split mixes the original training videos (all normal) with the original testing
videos (some anomalous), so both kinds occur in both splits.

Spec keys:
    root         the original dataset: training videos as ``training/videos/<id>.avi``
                 (ids like 01_001), testing videos as frame folders ``testing/frames/<id>/``
                 (ids like 01_0014).
    train_list   SH_Train.txt, one id a line (the last line may lack its newline).
    test_list    SH_Test.txt, same format.
    frame_masks  folder test_frame_mask/ with ``<id>.npy``: a 0/1 entry per frame, for the
                 original testing videos.

Each listed id is the .avi when present, else the frame folder. Its annotation is the
FrameMask of ``<id>.npy`` when that file exists; an original training video needs none (it
is all normal: label 0, so Video.truth gives zeros). Video label: 1 when the mask holds any
1, else 0. The published ids (01_001, 01_0014) are the video ids, unchanged; they fit the
ids gclvad allows (letters, digits, ``_ - .``). A listed video without its file or folder,
or an original testing video without its mask, is reported by the segment index as a bad
video (``on_bad_video``); so is an id listed twice, or in both lists.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gclvad.datasets.base import TEST, TRAIN, FrameMask, Video
from gclvad.datasets.generic import (
    checked_id,
    existing_dir,
    existing_file,
    raise_line_errors,
    read_lines,
    spec_path,
)
from gclvad.errors import BadDatasetError


def read_shanghaitech(spec: dict) -> list[Video]:
    root, train_list, test_list, masks = (
        spec_path(spec, key, "shanghaitech") for key in ("root", "train_list", "test_list", "frame_masks")
    )
    existing_dir(root, "ShanghaiTech root")
    existing_file(train_list, "train list")
    existing_file(test_list, "test list")
    existing_dir(masks, "frame mask folder")

    videos = [_video(vid, line, train_list, TRAIN, root, masks) for line, vid in read_id_list_lines(train_list)]
    return videos + [_video(vid, line, test_list, TEST, root, masks) for line, vid in read_id_list_lines(test_list)]


def read_id_list(path: Path) -> list[str]:
    """The ids of a split list, in order."""
    return [video_id for _, video_id in read_id_list_lines(path)]


def read_id_list_lines(path: Path) -> list[tuple[int, str]]:
    """(line number, id) for each id of a split list; unusable ids are an error naming their lines."""
    lines = read_lines(path)
    if not lines:
        raise BadDatasetError(path, "lists no videos")
    problems: list[str] = []
    entries = [(line, checked_id(text, line, problems)) for line, text in lines]
    raise_line_errors(path, problems)
    return entries


def _video(video_id: str, line: int, listed_in: Path, split: str, root: Path, masks: Path) -> Video:
    listed_at = f"{listed_in} line {line}"
    video_file = root / "training" / "videos" / f"{video_id}.avi"
    frame_folder = root / "testing" / "frames" / video_id
    mask_file = masks / f"{video_id}.npy"
    if video_file.is_file():
        source = video_file
    elif frame_folder.is_dir():
        source = frame_folder
    else:
        problem = f"video {video_id} is neither the file {video_file} nor the folder {frame_folder}"
        return Video(video_id, video_file, split, None, None, listed_at, problem)

    if mask_file.is_file():
        label, problem = _label_of_mask(mask_file)
        return Video(video_id, source, split, label, FrameMask(mask_file), listed_at, problem)
    if source == frame_folder:
        # An original testing video may hold anomalies; without its mask its truth is unknown.
        problem = f"original testing video without its frame mask: {mask_file} does not exist"
        return Video(video_id, source, split, None, None, listed_at, problem)
    return Video(video_id, source, split, 0, None, listed_at)


def _label_of_mask(path: Path) -> tuple[int | None, str]:
    """The video label a frame mask gives, and why the mask cannot be used ("" when it can)."""
    try:
        values = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        return None, f"frame mask {path} cannot be read as a .npy file: {error}"
    if values.size == 0 or not np.isin(values, (0, 1)).all():
        return None, f"frame mask {path} must hold one 0 or 1 per frame"
    return int(values.any()), ""
