"""How an extractor wants its frames: resize, centre crop, scale, mean and std.

Every extractor declares one `Preprocessing`; the decoder resizes each frame as it is decoded
(so memory never holds full-size frames) and `normalize` turns a segment of resized uint8
frames into the float tensor the network takes.

Two conventions, each the one its networks were trained with:

* ``antialias=True, rounding="gclvad"`` (the default; I3D, ResNeXt-101): FFmpeg's bilinear
  resize, whose filter widens when it scales down (like torchvision's ``antialias=True``),
  the resized long side rounded to the nearest pixel, the crop offset rounded down.
* ``antialias=False, rounding="torchvision"`` (torchvision's video backbones): exactly their
  KINETICS400_V1 transforms: plain 2-tap bilinear (``antialias=False``, hard-coded in
  torchvision's video presets) on the decoded RGB frame, the long side truncated and the
  crop offset rounded as torchvision.transforms.functional does.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields, replace

import numpy as np
import torch
import torch.nn.functional as F

from gclvad.decode.crops import CROP_MODES, CROP_NAMES, UPSCALED_MODES

ROUNDINGS = ("gclvad", "torchvision")


def _pair(value: int | tuple[int, int]) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


@dataclass(frozen=True)
class Preprocessing:
    """size: int = shorter side resized to it (aspect kept); (height, width) = exact size.
    crop: centre crop, int for a square or (height, width).
    Pixel values v in 0..255 become (v * scale - mean) / std, per RGB channel.
    antialias: True resizes in FFmpeg (filter widened when scaling down); False with plain
        bilinear interpolation as torchvision's video transforms do.
    rounding: "gclvad" (long side to the nearest pixel, crop offset down) or "torchvision"
        (long side truncated, crop offset int(round(...)) as torchvision's center_crop).
    """

    size: int | tuple[int, int]
    crop: int | tuple[int, int]
    scale: float = 1.0
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    antialias: bool = True
    rounding: str = "gclvad"
    crops: str = "centre"

    def __post_init__(self) -> None:
        if self.rounding not in ROUNDINGS:
            raise ValueError(f"rounding must be one of {ROUNDINGS}, got {self.rounding!r}")
        if self.crops not in CROP_MODES:
            raise ValueError(f"crops must be one of {CROP_MODES}, got {self.crops!r}")

    def with_crops(self, mode: str) -> Preprocessing:
        """This preprocessing with crop mode `mode` (see CROP_MODES; "ten" resizes 8/7 larger,
        "tiles" and "motion" twice as large)."""
        if mode not in CROP_MODES:
            raise ValueError(f"crops must be one of {', '.join(CROP_MODES)}, got {mode!r}")
        size = self.size
        if mode == "ten" and isinstance(size, int):
            size = round(size * 8 / 7)  # 224 -> 256, 112 -> 128
        if mode in UPSCALED_MODES:
            size = 2 * size if isinstance(size, int) else (2 * size[0], 2 * size[1])
        return replace(self, crops=mode, size=size)

    def resized_shape(self, height: int, width: int) -> tuple[int, int]:
        """(height, width) of a frame after the resize step."""
        if not isinstance(self.size, int):
            return _pair(self.size)
        short = self.size
        # torchvision truncates the long side (transforms.functional._compute_resized_output_size).
        scaled = int if self.rounding == "torchvision" else round
        if height <= width:
            return short, max(short, scaled(width * short / height))
        return max(short, scaled(height * short / width)), short

    def resize_frame(self, frame: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
        """uint8 RGB (H, W, 3) -> uint8 (shape[0], shape[1], 3) by plain bilinear interpolation,
        as torchvision resizes a uint8 tensor with antialias=False: in float32, then rounded."""
        image = torch.from_numpy(np.ascontiguousarray(frame)).permute(2, 0, 1)[None].to(torch.float32)
        resized = F.interpolate(image, size=shape, mode="bilinear", align_corners=False, antialias=False)
        return resized.round_().to(torch.uint8)[0].permute(1, 2, 0).contiguous().numpy()

    def crop_offsets(self, height: int, width: int) -> tuple[int, int]:
        """(top, left) of the centre crop in a resized frame."""
        crop_h, crop_w = _pair(self.crop)
        if self.rounding == "torchvision":
            return round((height - crop_h) / 2.0), round((width - crop_w) / 2.0)  # int(round(...)) there
        return (height - crop_h) // 2, (width - crop_w) // 2

    def crop_boxes(self, height: int, width: int) -> list[tuple[int, int, bool]]:
        """(top, left, flipped) of every crop of a resized frame, in CROP_NAMES order."""
        if self.crops == "centre":
            return [(*self.crop_offsets(height, width), False)]
        crop_h, crop_w = _pair(self.crop)
        top, left = self.crop_offsets(height, width)
        if self.crops == "three":  # along the long side
            if width >= height:
                return [(top, 0, False), (top, left, False), (top, width - crop_w, False)]
            return [(0, left, False), (top, left, False), (height - crop_h, left, False)]
        if self.crops == "tiles":  # 2 along the short side, 3 along the long one, row by row
            rows, columns = (2, 3) if width >= height else (3, 2)
            tops = np.linspace(0, height - crop_h, rows).round().astype(int)
            lefts = np.linspace(0, width - crop_w, columns).round().astype(int)
            return [(int(t), int(w), False) for t in tops for w in lefts]
        if self.crops == "motion":
            raise ValueError("the motion crop's place depends on the frames: use motion_box")
        corners = [(0, 0), (0, width - crop_w), (height - crop_h, 0), (height - crop_h, width - crop_w), (top, left)]
        return [(t, w, flipped) for flipped in (False, True) for t, w in corners]

    def normalize(self, frames: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Resized uint8 frames (T, H, W, 3) -> float32 network input (3, T, crop_h, crop_w), or
        (C, 3, T, crop_h, crop_w) for the C crops of crop mode three or ten."""
        if isinstance(frames, np.ndarray):
            frames = torch.from_numpy(frames)
        boxes = [self.motion_box(frames)] if self.crops == "motion" else self.crop_boxes(*frames.shape[1:3])
        clips = [self._normalize_crop(frames, top, left, flipped) for top, left, flipped in boxes]
        return clips[0] if len(CROP_NAMES[self.crops]) == 1 else torch.stack(clips)

    def motion_box(self, frames: torch.Tensor) -> tuple[int, int, bool]:
        """(top, left, False) of the crop-sized window of resized uint8 frames (T, H, W, 3) whose
        pixels change most between consecutive frames (sum of absolute grey differences); the
        centre crop unless some window changes strictly more (so a still segment, or one frame,
        keeps the centre)."""
        crop_h, crop_w = _pair(self.crop)
        centre = self.crop_offsets(*frames.shape[1:3])
        if frames.shape[0] < 2:
            return (*centre, False)
        grey = frames.to(torch.int16).sum(dim=3)  # (T, H, W), 0..765
        change = (grey[1:] - grey[:-1]).abs_().sum(dim=0, dtype=torch.float64)  # (H, W)
        # Sums over every window from an integral image: windows[i, j] covers rows i..i+crop_h.
        integral = F.pad(change.cumsum(0).cumsum(1), (1, 0, 1, 0))
        windows = (
            integral[crop_h:, crop_w:]
            - integral[:-crop_h, crop_w:]
            - integral[crop_h:, :-crop_w]
            + integral[:-crop_h, :-crop_w]
        )
        top, left = divmod(int(windows.argmax()), windows.shape[1])
        if windows[top, left] <= windows[centre]:
            return (*centre, False)
        # Many windows tie when what moves is smaller than a window: centre the best one on the
        # change inside it, so the moving thing is in the middle of the crop, not at its edge.
        inside = change[top : top + crop_h, left : left + crop_w]
        row = float((inside.sum(1) * torch.arange(crop_h, dtype=torch.float64)).sum() / inside.sum())
        column = float((inside.sum(0) * torch.arange(crop_w, dtype=torch.float64)).sum() / inside.sum())
        top = min(max(0, round(top + row - (crop_h - 1) / 2)), windows.shape[0] - 1)
        left = min(max(0, round(left + column - (crop_w - 1) / 2)), windows.shape[1] - 1)
        return top, left, False

    def _normalize_crop(self, frames: torch.Tensor, top: int, left: int, flipped: bool) -> torch.Tensor:
        crop_h, crop_w = _pair(self.crop)
        clip = frames[:, top : top + crop_h, left : left + crop_w, :]
        if flipped:
            clip = clip.flip(2)
        clip = clip.permute(3, 0, 1, 2).to(torch.float32)  # (3, T, h, w)
        # (v * scale - mean) / std as one multiply and one subtract, in place: fewer
        # temporaries, which matters when decoding shares the cores with the network.
        std = torch.tensor(self.std, dtype=torch.float32).view(3, 1, 1, 1)
        mean = torch.tensor(self.mean, dtype=torch.float32).view(3, 1, 1, 1)
        return clip.mul_(self.scale / std).sub_(mean / std)

    def describe(self) -> str:
        """A JSON string stored beside features so a reader knows how they were made.

        Settings at their defaults are left out, so features made before a setting existed
        keep their description (and the runs trained on them stay scorable)."""
        defaults = {f.name: f.default for f in fields(self) if f.name in ("antialias", "rounding", "crops")}
        described = {k: v for k, v in asdict(self).items() if k not in defaults or v != defaults[k]}
        return json.dumps(described, sort_keys=True)
