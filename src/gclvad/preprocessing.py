"""How an extractor wants its frames: resize, centre crop, scale, mean and std.

Every extractor declares one `Preprocessing`; the decoder resizes each frame as it is decoded
(so memory never holds full-size frames) and `normalize` turns a segment of resized uint8
frames into the float tensor the network takes.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import numpy as np
import torch


def _pair(value: int | tuple[int, int]) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


@dataclass(frozen=True)
class Preprocessing:
    """size: int = shorter side resized to it (aspect kept); (height, width) = exact size.
    crop: centre crop, int for a square or (height, width).
    Pixel values v in 0..255 become (v * scale - mean) / std, per RGB channel.
    """

    size: int | tuple[int, int]
    crop: int | tuple[int, int]
    scale: float = 1.0
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)

    def resized_shape(self, height: int, width: int) -> tuple[int, int]:
        """(height, width) of a frame after the resize step."""
        if not isinstance(self.size, int):
            return _pair(self.size)
        short = self.size
        if height <= width:
            return short, max(short, round(width * short / height))
        return max(short, round(height * short / width)), short

    def normalize(self, frames: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Resized uint8 frames (T, H, W, 3) -> float32 network input (3, T, crop_h, crop_w)."""
        if isinstance(frames, np.ndarray):
            frames = torch.from_numpy(frames)
        crop_h, crop_w = _pair(self.crop)
        height, width = frames.shape[1:3]
        top, left = (height - crop_h) // 2, (width - crop_w) // 2
        clip = frames[:, top : top + crop_h, left : left + crop_w, :]
        clip = clip.permute(3, 0, 1, 2).to(torch.float32)  # (3, T, h, w)
        # (v * scale - mean) / std as one multiply and one subtract, in place: fewer
        # temporaries, which matters when decoding shares the cores with the network.
        std = torch.tensor(self.std, dtype=torch.float32).view(3, 1, 1, 1)
        mean = torch.tensor(self.mean, dtype=torch.float32).view(3, 1, 1, 1)
        return clip.mul_(self.scale / std).sub_(mean / std)

    def describe(self) -> str:
        """A JSON string stored beside features so a reader knows how they were made."""
        return json.dumps(asdict(self), sort_keys=True)
