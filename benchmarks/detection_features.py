"""Prototype of crops and overlapping windows for extraction (issue 10 items 2 and 4), for
benchmarks/detection.py: I3D features of every video of a dataset, per crop and per window.
The product's extraction has both now (extractor `crops:`, `segment_stride`); this one stays
because its cached files hold every window and crop of a video at once, and its crop boxes
are checked against the product's as it runs.

Crop modes, all at I3D's native 224x224:
    centre  the product's (and the paper's) crop: shorter side resized to 224, centre crop;
    three   shorter side to 224, then left / centre / right crops along the long side;
    ten     shorter side to 256, four corners + centre, each also flipped left-right (the
            ten-crop of the RTFM I3D features).
Windows of 16 frames start every `stride` frames (8: overlapping; 16: the paper's segments).

One file per video and mode, written atomically; an existing file is kept, so a killed
extraction resumes where it stopped. Each file holds `features` (windows, crops, 1024)
float32, `starts` (window first frames), `crops` (names) and `frames` (decoded frames).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from gclvad.atomic import write_atomic
from gclvad.decode.preprocessing import Preprocessing
from gclvad.decode.video import iter_frames
from gclvad.extract.networks.i3d import I3D_PREPROCESSING

SEGMENT = 16
NATIVE = 224


@dataclass(frozen=True)
class Crop:
    name: str
    top: int
    left: int
    flip: bool = False


@dataclass(frozen=True)
class CropMode:
    """How a mode resizes frames (shorter side) and where its crops lie in the resized frame."""

    name: str
    short_side: int
    stride: int

    def crops(self, height: int, width: int) -> list[Crop]:
        """The crops of a resized frame of (height, width)."""
        dy, dx = height - NATIVE, width - NATIVE
        if self.name == "centre":
            return [Crop("c", dy // 2, dx // 2)]
        if self.name == "three":  # along the long side
            if width >= height:
                return [Crop("l", dy // 2, 0), Crop("c", dy // 2, dx // 2), Crop("r", dy // 2, dx)]
            return [Crop("t", 0, dx // 2), Crop("c", dy // 2, dx // 2), Crop("b", dy, dx // 2)]
        five = [Crop("tl", 0, 0), Crop("tr", 0, dx), Crop("bl", dy, 0), Crop("br", dy, dx), Crop("c", dy // 2, dx // 2)]
        return five + [Crop(c.name + "f", c.top, c.left, True) for c in five]


MODES = {
    "centre_s16": CropMode("centre", 224, 16),  # the product's features today
    "three_s8": CropMode("three", 224, 8),  # holds centre and stride 16 as subsets
    "ten_s16": CropMode("ten", 256, 16),
}


def clip_of(frames: np.ndarray, start: int, crop: Crop) -> torch.Tensor:
    """(3, 16, 224, 224) network input of one window and crop of resized uint8 frames (T, H, W, 3)."""
    window = frames[start : start + SEGMENT, crop.top : crop.top + NATIVE, crop.left : crop.left + NATIVE]
    if crop.flip:
        window = window[:, :, ::-1]
    return I3D_PREPROCESSING.normalize(np.ascontiguousarray(window))


def extract_modes(extractor, source: Path, mode: CropMode, batch_size: int = 8) -> dict:
    """Features of every window and crop of one video in one mode."""
    resize = Preprocessing(size=mode.short_side, crop=NATIVE)
    frames = np.stack(list(iter_frames(source, resize)))
    crops = mode.crops(*frames.shape[1:3])
    # The product's crops (Preprocessing.crop_boxes, written after this prototype) are these.
    product = I3D_PREPROCESSING.with_crops(mode.name).crop_boxes(*frames.shape[1:3])
    assert [(c.top, c.left, c.flip) for c in crops] == product, (crops, product)
    starts = list(range(0, len(frames) - SEGMENT + 1, mode.stride))
    jobs = [(s, c) for s in starts for c in crops]
    rows = []
    for first in range(0, len(jobs), batch_size):
        batch = torch.stack([clip_of(frames, s, c) for s, c in jobs[first : first + batch_size]])
        rows.append(extractor.extract(batch).numpy())
    features = np.concatenate(rows).reshape(len(starts), len(crops), -1)
    return {
        "features": features.astype(np.float32),
        "starts": np.array(starts),
        "crops": np.array([c.name for c in crops]),
        "frames": np.array(len(frames)),
    }


def extract_dataset(manifest: Path, out_dir: Path, modes: list[str], log=print) -> None:
    """Every video of `manifest` in every mode, skipping files already there."""
    import pandas as pd

    from gclvad.extract.networks.registry import build_extractor

    extractor = build_extractor("i3d", "package", device="cpu", precision="fp32")
    videos = pd.read_csv(manifest)
    for mode_name in modes:
        mode = MODES[mode_name]
        started, clips = time.perf_counter(), 0
        for row in videos.itertuples():
            path = out_dir / mode_name / f"{row.video}.npz"
            if path.exists():
                continue
            values = extract_modes(extractor, manifest.parent / row.path, mode)
            clips += values["features"].shape[0] * values["features"].shape[1]

            def write(temporary: Path, values=values) -> None:
                with open(temporary, "wb") as out:
                    np.savez(out, **values)

            write_atomic(path, write)
            seconds = time.perf_counter() - started
            log(f"{mode_name} {row.video}: {clips} clips so far, {clips / seconds:.2f} clips/s")


def load_mode(out_dir: Path, mode_name: str, videos: list[str]) -> dict[str, dict]:
    """The stored features of `videos` in one mode."""
    out = {}
    for video in videos:
        with np.load(out_dir / mode_name / f"{video}.npz") as stored:
            out[video] = {key: stored[key] for key in stored.files}
    return out
