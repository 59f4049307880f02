"""Small published-feature datasets in the exact layouts of the field, with planted anomalies.

The features are tests/synthetic.py's planted structure (a recurring, eventful anomaly type
among slowly drifting normal scenes), written the way UCF-Crime, ShanghaiTech and
XD-Violence features are published (RTFM layout): list files with Windows or Linux paths
and CRLF, (T, 10, d) arrays or one (T, d) file per crop, and frame labels as a temporal
annotation txt, frame masks or a concatenated gt array. Anomalous videos hold an anomaly,
normal ones none, so that names carry the right labels.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from synthetic import make_videos, make_world

SEGMENT = 16


@dataclass
class Published:
    spec: dict  # the dataset entry (format features)
    truths: dict[str, np.ndarray]  # test video -> frame truth (16 x rows frames)
    features: dict[str, np.ndarray]  # video -> (T, C, d) as written
    labels: dict[str, int]  # video -> 1 when it holds a planted anomaly


def _split(world, videos: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(features (T, d), segment truth (T,)) of `videos` videos, anomalous and normal in turn."""
    kwargs = dict(videos=(videos + 1) // 2, segments=(8, 14), segment_length=SEGMENT)
    anomalous = make_videos(world, anomalous_video_fraction=1.0, seed=seed, **kwargs)
    normal = make_videos(world, anomalous_video_fraction=0.0, seed=seed + 1, **kwargs)
    return [_rows((anomalous, normal)[v % 2], v // 2) for v in range(videos)]


def _rows(dataset, v: int) -> tuple[np.ndarray, np.ndarray]:
    rows = np.flatnonzero(dataset.video == v)
    rows = rows[np.argsort(dataset.position[rows])]
    return dataset.features[rows], dataset.segment_truth[rows]


def _crops(features: np.ndarray, crops: int, rng) -> np.ndarray:
    """(T, C, d): every crop the same content, a little noise of its own."""
    return (features[:, None, :] + rng.normal(0, 0.02, (len(features), crops, features.shape[1]))).astype(np.float32)


def _names(convention: str, split: str, v: int, anomalous: bool) -> str:
    if convention == "ucf_crime":
        return f"Abuse{v:03d}_x264" if anomalous else f"Normal_Videos{v:03d}_x264"
    if convention == "shanghaitech":
        return f"{1 + v % 3:02d}_{v:04d}" if anomalous else f"{1 + v % 3:02d}_{v:03d}"
    label = "B2-0-0" if anomalous else "A"
    return f"Movie.{split}.{v}.2001__#00-0{v % 10}-00_00-01-00_label_{label}"


def write_published(root: Path, convention: str, crops: int = 10, seed: int = 0) -> Published:
    """A features dataset of `convention` (ucf_crime, shanghaitech, xd_violence) under `root`."""
    rng = np.random.default_rng(seed)
    world = make_world(dim=32, seed=seed)
    splits = {"train": _split(world, 10, seed + 1), "test": _split(world, 8, seed + 3)}
    folder = root / "features"
    (folder / "Train").mkdir(parents=True)
    (folder / "Test").mkdir(parents=True)
    written, truths, labels, lines = {}, {}, {}, {"train": [], "test": []}
    masks, annotations, gt = root / "test_frame_mask", [], []
    masks.mkdir()
    for split, videos in splits.items():
        offset = 0 if split == "train" else 100
        for v, (features, truth) in enumerate(videos):
            name = _names(convention, split, v + offset, bool(truth.any()))
            written[name] = _crops(features, crops, rng)
            labels[name] = int(truth.any())
            lines[split] += _write_arrays(folder / split.title(), name, written[name], convention)
            if split == "test":
                frames = np.repeat(truth, SEGMENT)
                truths[name] = frames
                gt.append(frames.astype(np.float64))
                annotations.append(_annotation_line(name, frames))
                if truth.any() or convention == "shanghaitech":
                    _write_mask(masks / f"{name}.npy", frames, rng)
    spec = {"format": "features", "feature_dir": str(folder)}
    for split in ("train", "test"):
        list_file = root / f"{split}.list"
        list_file.write_bytes(b"".join(line.encode() + b"\r\n" for line in lines[split]))
        spec[f"{split}_list"] = str(list_file)
    if convention == "ucf_crime":
        (root / "annotations.txt").write_text("\n".join(line for line in annotations if line) + "\n")
        spec["annotations"] = str(root / "annotations.txt")
    elif convention == "shanghaitech":
        spec["frame_masks"] = str(masks)
    else:
        np.save(root / "gt.npy", np.concatenate(gt))
        spec["labels"] = str(root / "gt.npy")
    return Published(spec, truths, written, labels)


def _write_arrays(folder: Path, name: str, features: np.ndarray, convention: str) -> list[str]:
    """The video's .npy file(s) and their list lines (XD-Violence: one file per crop, Linux paths)."""
    if convention == "xd_violence":
        for k in range(features.shape[1]):
            np.save(folder / f"{name}__{k}.npy", features[:, k])
        return [f"/data/xd/i3d-features/RGB/{name}__{k}.npy" for k in range(features.shape[1])]
    np.save(folder / f"{name}_i3d.npy", features)
    return [f"G:\\{folder.name}_ten_crop_i3d\\{name}_i3d.npy"]


def _annotation_line(name: str, frames: np.ndarray) -> str:
    """UCF-Crime's annotation line: 1-based inclusive first..last of the anomalous run."""
    if not frames.any():
        return f"{name}.mp4  Normal  -1  -1  -1  -1" if name.startswith("Normal") else ""
    anomalous = np.flatnonzero(frames)
    return f"{name}.mp4  Abuse  {anomalous[0] + 1}  {anomalous[-1] + 1}  -1  -1"


def _write_mask(path: Path, frames: np.ndarray, rng) -> None:
    """A ShanghaiTech mask of the original frames: up to a segment shorter than 16 x rows, so
    that the features' last segment was padded with the last frame (as gt-sh.npy is)."""
    original = len(frames) - int(rng.integers(0, SEGMENT))
    np.save(path, frames[:original].astype(np.int64))
