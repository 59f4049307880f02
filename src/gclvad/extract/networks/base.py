"""What a feature extractor is: a network that turns normalised clips into one vector each.

Every extractor declares how its frames must be prepared (`Preprocessing`), the size of its
vectors (`dim`) and which weights it holds (`weights_sha256`, or "random" for an untrained
network, which is only ever used when the user writes `weights: random` explicitly).
This module also holds the weights-file helpers shared by all extractors: hashing, reading a
checkpoint and loading it with strict, readable error messages.
"""

from __future__ import annotations

import logging
import warnings
from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from gclvad.decode.preprocessing import Preprocessing
from gclvad.errors import GclvadError
from gclvad.extract.networks import speed
from gclvad.weights import RANDOM_WEIGHTS, is_random_weights, sha256_file

log = logging.getLogger(__name__)

_SHOWN_KEYS = 8  # how many offending keys an error message lists before giving counts


class RandomWeightsWarning(UserWarning):
    """Features from an untrained network: fine for tests and speed runs, useless for results."""


class Extractor(ABC):
    """A network that maps clips (B, 3, T, H, W) float32 to features (B, dim) float32 on CPU."""

    name: str
    dim: int
    preprocessing: Preprocessing
    weights_sha256: str
    weights_random: bool
    device: torch.device
    precision: str = "fp32"
    # Some networks only accept one clip length (MViT's position tables are built for 16).
    required_frames: int | None = None

    @abstractmethod
    def extract(self, clips: torch.Tensor) -> torch.Tensor:
        """clips: float32 (B, 3, T, H, W) from Preprocessing.normalize -> float32 (B, dim) on CPU."""


class TorchExtractor(Extractor):
    """An Extractor around an nn.Module whose forward returns the (B, dim) features.

    The module is prepared once for inference (BatchNorm folded, channels_last_3d, bf16 when
    asked) by `speed.optimize_for_inference`; `extract` runs it under inference_mode.
    The extractor takes `module` over and changes it; pass a copy to keep the original.
    """

    def __init__(
        self,
        name: str,
        module: nn.Module,
        dim: int,
        preprocessing: Preprocessing,
        weights_sha256: str,
        device: torch.device,
        precision: str = "fp32",
        bf16_mode: str = "cast",
        fold_batchnorm: bool = True,
        channels_last: bool = True,
        required_frames: int | None = None,
    ):
        self.name = name
        self.dim = dim
        self.preprocessing = preprocessing
        self.weights_sha256 = weights_sha256
        self.weights_random = weights_sha256 == RANDOM_WEIGHTS
        self.device = device
        # What was used, never "auto": feature files and runs record it.
        self.precision = speed.resolve_precision(precision, device)
        self.bf16_mode = bf16_mode
        self.required_frames = required_frames
        self.channels_last = channels_last and speed.has_conv3d(module)
        self.module = speed.optimize_for_inference(
            module, device, self.precision, bf16_mode, fold=fold_batchnorm, channels_last=channels_last, inplace=True
        )

    def extract(self, clips: torch.Tensor) -> torch.Tensor:
        if clips.ndim != 5 or clips.shape[1] != 3:
            raise ValueError(f"{self.name}: clips must be (B, 3, T, H, W), got {tuple(clips.shape)}")
        with torch.inference_mode():
            batch = speed.prepare_input(clips, self.device, self.precision, self.bf16_mode, self.channels_last)
            with speed.autocast_context(self.device, self.precision, self.bf16_mode):
                features = self.module(batch)
            features = features.float().reshape(len(clips), -1).cpu()
        if features.shape[1] != self.dim:
            raise RuntimeError(f"{self.name}: produced {features.shape[1]}-d features, expected {self.dim}")
        return features

    def clip_flops(self, frames: int = 16) -> int:
        """FLOPs of the prepared network (BatchNorm folded) on one clip of `frames` frames at
        its native crop size (speed.forward_flops)."""
        crop = self.preprocessing.crop
        height, width = (crop, crop) if isinstance(crop, int) else crop
        clip = torch.zeros(1, 3, self.required_frames or frames, height, width)
        batch = speed.prepare_input(clip, self.device, self.precision, self.bf16_mode, self.channels_last)
        with speed.autocast_context(self.device, self.precision, self.bf16_mode):
            return speed.forward_flops(self.module, batch)


# ---------------------------------------------------------------- weights files


def warn_random_weights(name: str) -> None:
    message = (
        f"extractor {name!r} uses RANDOM weights (weights: random): its features carry no "
        "learned meaning; use this only for tests and speed measurements"
    )
    log.warning(message)
    warnings.warn(message, RandomWeightsWarning, stacklevel=4)


def require_weights_file(path: str | Path | None, name: str, config_key: str, origin: str) -> Path:
    """The weights path, or a GclvadError that says where the file should be and where it comes from."""
    if path is None or str(path).strip() == "":
        raise GclvadError(
            f"extractor {name!r}: no weights file given; set {config_key} to the file "
            f"(it comes from {origin}) or write 'random' for an untrained network"
        )
    path = Path(path)
    if not path.is_file():
        raise GclvadError(
            f"extractor {name!r}: weights file {path} does not exist. Put the file there or point "
            f"{config_key} at it; it comes from {origin}"
        )
    return path


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint file: either a bare state dict or a training checkpoint
    {"state_dict": ..., ...}; a "module." prefix left by nn.DataParallel is removed.
    """
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise GclvadError(f"{path}: cannot be read as a PyTorch weights file ({error})") from error
    if isinstance(checkpoint, Mapping) and isinstance(checkpoint.get("state_dict"), Mapping):
        checkpoint = checkpoint["state_dict"]
    if not isinstance(checkpoint, Mapping) or not all(isinstance(value, torch.Tensor) for value in checkpoint.values()):
        raise GclvadError(
            f"{path}: expected a state dict (parameter name -> tensor) or a checkpoint with a "
            f"'state_dict' entry, found {type(checkpoint).__name__}"
        )
    return {_strip_prefix(key, "module."): value for key, value in checkpoint.items()}


def _strip_prefix(key: str, prefix: str) -> str:
    return key[len(prefix) :] if key.startswith(prefix) else key


def _listing(label: str, items: list[str]) -> str:
    shown = ", ".join(items[:_SHOWN_KEYS])
    more = f", ... ({len(items) - _SHOWN_KEYS} more)" if len(items) > _SHOWN_KEYS else ""
    return f"{len(items)} {label}: {shown}{more}"


def load_state_dict_strictly(module: nn.Module, state_dict: Mapping[str, torch.Tensor], path: Path) -> None:
    """Load `state_dict` into `module`, requiring the same keys and shapes.

    BatchNorm's num_batches_tracked counters may be absent (checkpoints from PyTorch < 0.4 lack
    them and inference never reads them); everything else must match, or a GclvadError lists
    what is missing, unexpected or of the wrong shape.
    """
    expected = module.state_dict()
    state_dict = dict(state_dict)
    for key in expected:
        if key.endswith("num_batches_tracked") and key not in state_dict:
            state_dict[key] = expected[key].clone()
    missing = [key for key in expected if key not in state_dict]
    unexpected = [key for key in state_dict if key not in expected]
    wrong_shape = [
        f"{key} (file {tuple(state_dict[key].shape)}, network {tuple(expected[key].shape)})"
        for key in expected
        if key in state_dict and state_dict[key].shape != expected[key].shape
    ]
    problems = [
        _listing(label, items)
        for label, items in (
            ("missing keys", missing),
            ("unexpected keys", unexpected),
            ("shape mismatches", wrong_shape),
        )
        if items
    ]
    if problems:
        raise GclvadError(
            f"{path}: weights do not fit the {type(module).__name__} network ({len(expected)} "
            f"tensors expected, {len(state_dict)} in file): " + "; ".join(problems)
        )
    module.load_state_dict(state_dict, strict=True)


def weights_identity(weights: str | Path, name: str, config_key: str, origin: str) -> tuple[Path | None, str]:
    """(path or None for random, sha256 or "random") of a weights argument; warns for random."""
    if is_random_weights(weights):
        warn_random_weights(name)
        return None, RANDOM_WEIGHTS
    path = require_weights_file(weights, name, config_key, origin)
    return path, sha256_file(path)
