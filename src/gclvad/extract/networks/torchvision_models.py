"""Torchvision's Kinetics-400 video networks as feature extractors.

Each network is built by torchvision with weights=None, loaded strictly from a local
torchvision state-dict file the user names (nothing is downloaded at run time), and its
classification head replaced by Identity, so the features are the layer before the classifier.
Preprocessing copies torchvision's KINETICS400_V1 transforms (resize, crop, 1/255, mean, std)
with their conventions: bilinear resize without antialiasing, torchvision's rounding of the
resized size and of the crop offset (see gclvad.decode.preprocessing); `torchvision_preprocessing`
reads them from torchvision so a test can check the copy, and tests compare features of
decoded frames through both.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torchvision.models.video as tv_video
from torch import nn
from torchvision.transforms import InterpolationMode

from gclvad.decode.preprocessing import Preprocessing
from gclvad.device import resolve_device
from gclvad.errors import GclvadError
from gclvad.extract.networks.base import (
    TorchExtractor,
    load_state_dict_strictly,
    read_state_dict,
    require_weights_file,
    weights_identity,
)

_KINETICS_MEAN = (0.43216, 0.394666, 0.37645)
_KINETICS_STD = (0.22803, 0.22145, 0.216989)


def _kinetics_preprocessing(size, crop, mean=_KINETICS_MEAN, std=_KINETICS_STD) -> Preprocessing:
    """torchvision's VideoClassification preset: it hard-codes antialias=False in its resize."""
    return Preprocessing(
        size=size, crop=crop, scale=1 / 255, mean=mean, std=std, antialias=False, rounding="torchvision"
    )


@dataclass(frozen=True)
class TorchvisionVideoModel:
    """How to build one torchvision video network and where its features come from."""

    name: str
    weights_enum: str  # class name in torchvision.models.video, for the origin message
    head: str  # attribute holding the classifier, replaced by Identity
    dim: int
    preprocessing: Preprocessing
    # Convolution networks run fastest fully cast to bf16; the transformers keep LayerNorm and
    # softmax in fp32 through autocast.
    bf16_mode: str = "cast"
    fold_batchnorm: bool = True
    required_frames: int | None = None

    def build_network(self) -> nn.Module:
        return getattr(tv_video, self.name)(weights=None)

    def origin(self) -> str:
        url = getattr(tv_video, self.weights_enum).KINETICS400_V1.url
        return f"torchvision's {self.weights_enum}.KINETICS400_V1 state dict ({url})"


def _resnet_family(name: str, weights_enum: str) -> TorchvisionVideoModel:
    return TorchvisionVideoModel(
        name=name,
        weights_enum=weights_enum,
        head="fc",
        dim=512,
        preprocessing=_kinetics_preprocessing(size=(128, 171), crop=112),
    )


MODELS: dict[str, TorchvisionVideoModel] = {
    "r3d_18": _resnet_family("r3d_18", "R3D_18_Weights"),
    "mc3_18": _resnet_family("mc3_18", "MC3_18_Weights"),
    "r2plus1d_18": _resnet_family("r2plus1d_18", "R2Plus1D_18_Weights"),
    # S3D's classifier is a 1x1x1 conv followed by a mean over (T, H, W): without it the
    # forward returns the mean of the pooled 1024-channel map.
    "s3d": TorchvisionVideoModel(
        name="s3d",
        weights_enum="S3D_Weights",
        head="classifier",
        dim=1024,
        preprocessing=_kinetics_preprocessing(size=(256, 256), crop=224),
    ),
    # torchvision's resize_size for MViT and Swin is [256]: the shorter side, aspect kept.
    "mvit_v2_s": TorchvisionVideoModel(
        name="mvit_v2_s",
        weights_enum="MViT_V2_S_Weights",
        head="head",
        dim=768,
        preprocessing=_kinetics_preprocessing(size=256, crop=224, mean=(0.45, 0.45, 0.45), std=(0.225, 0.225, 0.225)),
        bf16_mode="autocast",
        fold_batchnorm=False,
        required_frames=16,  # its relative-position tables are sized for 16 frames
    ),
    "swin3d_t": TorchvisionVideoModel(
        name="swin3d_t",
        weights_enum="Swin3D_T_Weights",
        head="head",
        dim=768,
        preprocessing=_kinetics_preprocessing(
            size=256, crop=224, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)
        ),
        bf16_mode="autocast",
        fold_batchnorm=False,
    ),
}


def torchvision_preprocessing(name: str) -> Preprocessing:
    """Preprocessing read from torchvision's own KINETICS400_V1 transforms (no download)."""
    transforms = getattr(tv_video, MODELS[name].weights_enum).KINETICS400_V1.transforms()
    if transforms.interpolation != InterpolationMode.BILINEAR:
        raise GclvadError(f"{name}: torchvision's transforms use {transforms.interpolation}, not bilinear")
    resize = transforms.resize_size
    return _kinetics_preprocessing(
        size=int(resize[0]) if len(resize) == 1 else (int(resize[0]), int(resize[1])),
        crop=(int(transforms.crop_size[0]), int(transforms.crop_size[1]))
        if transforms.crop_size[0] != transforms.crop_size[1]
        else int(transforms.crop_size[0]),
        mean=tuple(float(v) for v in transforms.mean),
        std=tuple(float(v) for v in transforms.std),
    )


def load_torchvision_network(name: str, path: str | Path) -> nn.Module:
    """The full torchvision network `name` (classifier included) with the weights of `path`."""
    spec = _spec(name)
    path = require_weights_file(path, name, f"extractors.{name}.weights", spec.origin())
    network = spec.build_network()
    load_state_dict_strictly(network, read_state_dict(path), path)
    return network.eval()


def build_torchvision_extractor(
    name: str,
    weights: str | Path,
    device: str | torch.device = "auto",
    precision: str = "fp32",
) -> TorchExtractor:
    """Extractor for torchvision network `name`; `weights` is a state-dict file or "random"."""
    spec = _spec(name)
    path, sha = weights_identity(weights, name, f"extractors.{name}.weights", spec.origin())
    network = spec.build_network().eval() if path is None else load_torchvision_network(name, path)
    setattr(network, spec.head, nn.Identity())
    return TorchExtractor(
        name=name,
        module=network,
        dim=spec.dim,
        preprocessing=spec.preprocessing,
        weights_sha256=sha,
        device=resolve_device(device),
        precision=precision,
        bf16_mode=spec.bf16_mode,
        fold_batchnorm=spec.fold_batchnorm,
        required_frames=spec.required_frames,
    )


def _spec(name: str) -> TorchvisionVideoModel:
    if name not in MODELS:
        raise GclvadError(f"unknown torchvision video network {name!r}: expected one of {', '.join(MODELS)}")
    return MODELS[name]
