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
1, else 0.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gclvad.datasets.base import TEST, TRAIN, FrameMask, Video
from gclvad.datasets.generic import (
    existing_dir,
    existing_file,
    read_lines,
    reject_duplicates,
    reject_overlap,
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

    train_ids = read_id_list(train_list)
    test_ids = read_id_list(test_list)
    reject_overlap(train_ids, test_ids, train_list, test_list)
    return [_video(vid, TRAIN, root, masks) for vid in train_ids] + [_video(vid, TEST, root, masks) for vid in test_ids]


def read_id_list(path: Path) -> list[str]:
    ids = [text for _, text in read_lines(path)]
    if not ids:
        raise BadDatasetError(path, "lists no videos")
    reject_duplicates(ids, path)
    return ids


def _video(video_id: str, split: str, root: Path, masks: Path) -> Video:
    video_file = root / "training" / "videos" / f"{video_id}.avi"
    frame_folder = root / "testing" / "frames" / video_id
    mask_file = masks / f"{video_id}.npy"
    if video_file.is_file():
        source = video_file
    elif frame_folder.is_dir():
        source = frame_folder
    else:
        raise BadDatasetError(root, f"video {video_id} is neither the file {video_file} nor the folder {frame_folder}")

    if mask_file.is_file():
        return Video(video_id, source, split, _label_of_mask(mask_file), FrameMask(mask_file))
    if source == frame_folder:
        # An original testing video may hold anomalies; without its mask its truth is unknown.
        raise BadDatasetError(masks, f"has no {video_id}.npy for the original testing video {frame_folder}")
    return Video(video_id, source, split, 0, None)


def _label_of_mask(path: Path) -> int:
    try:
        values = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise BadDatasetError(path, f"cannot be read as a .npy frame mask: {error}") from error
    if values.size == 0 or not np.isin(values, (0, 1)).all():
        raise BadDatasetError(path, "a frame mask must hold one 0 or 1 per frame")
    return int(values.any())
