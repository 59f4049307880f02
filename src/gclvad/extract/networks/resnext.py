"""ResNeXt-101 3D of Hara et al. ("Can spatiotemporal 3D CNNs retrace the history of 2D CNNs
and ImageNet?", CVPR 2018), the backbone whose 2048-d clip features GCL is trained on.

The layout follows `models/resnext.py` of Hara's 3D-ResNets-PyTorch /
video-classification-3d-cnn-pytorch so that their Kinetics checkpoint
(resnext-101-kinetics.pth) loads with strict key matching: conv1/bn1 stem (7x7x7, stride
(1, 2, 2)), max-pool 3 stride 2, four stages of bottlenecks ([3, 4, 23, 3]) whose middle 3x3x3
convolution is grouped (cardinality 32), shortcut type B (1x1x1 conv + BN when the shape
changes), global average pool and a 400-way fc. Features are the pooled 2048-d vector, the
layer before fc ("feature mode" of Hara's tool).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from gclvad.decode.preprocessing import Preprocessing
from gclvad.device import resolve_device
from gclvad.extract.networks.base import (
    TorchExtractor,
    load_state_dict_strictly,
    read_state_dict,
    require_weights_file,
    weights_identity,
)

RESNEXT101_LAYERS = (3, 4, 23, 3)
RESNEXT101_WIDTHS = (128, 256, 512, 1024)
CONFIG_KEY = "extractors.resnext101.weights"
DEFAULT_WEIGHTS = Path("resources/models/resnext-101-kinetics.pth")
ORIGIN = (
    "Hara et al.'s video-classification-3d-cnn-pytorch release (resnext-101-kinetics.pth, "
    "linked from github.com/kenshohara/video-classification-3d-cnn-pytorch)"
)

# Hara's tool: shorter side to 112, centre crop 112, pixels kept in 0..255, minus the
# ActivityNet mean, std 1.
RESNEXT_PREPROCESSING = Preprocessing(
    size=112, crop=112, scale=1.0, mean=(114.7748, 107.7354, 99.4750), std=(1.0, 1.0, 1.0)
)


class ResNeXtBottleneck(nn.Module):
    """1x1x1 reduce, grouped 3x3x3, 1x1x1 expand (x2), each followed by BN; residual add."""

    expansion = 2

    def __init__(self, in_channels: int, width: int, cardinality: int, stride: int = 1, downsample=None):
        super().__init__()
        out_channels = width * self.expansion
        self.conv1 = nn.Conv3d(in_channels, width, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm3d(width)
        self.conv2 = nn.Conv3d(width, width, kernel_size=3, stride=stride, padding=1, groups=cardinality, bias=False)
        self.bn2 = nn.BatchNorm3d(width)
        self.conv3 = nn.Conv3d(width, out_channels, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm3d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + residual)


class ResNeXt3D(nn.Module):
    """Hara's ResNeXt with shortcut B. `layers`, `widths` and `cardinality` default to
    ResNeXt-101 (32x4d per Hara's naming); smaller values build a same-family network (tests).
    With `last_fc=False` the forward returns the pooled features instead of class scores.
    """

    def __init__(
        self,
        layers: tuple[int, ...] = RESNEXT101_LAYERS,
        widths: tuple[int, ...] = RESNEXT101_WIDTHS,
        cardinality: int = 32,
        num_classes: int = 400,
        stem_channels: int = 64,
        last_fc: bool = True,
    ):
        super().__init__()
        if len(layers) != 4 or len(widths) != 4:
            raise ValueError("ResNeXt3D needs four stages: layers and widths of length 4")
        self.last_fc = last_fc
        self.conv1 = nn.Conv3d(3, stem_channels, kernel_size=7, stride=(1, 2, 2), padding=3, bias=False)
        self.bn1 = nn.BatchNorm3d(stem_channels)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool3d(kernel_size=3, stride=2, padding=1)
        channels = stem_channels
        for stage, (blocks, width) in enumerate(zip(layers, widths, strict=True), start=1):
            stride = 1 if stage == 1 else 2
            stage_module, channels = _make_stage(channels, width, blocks, cardinality, stride)
            self.add_module(f"layer{stage}", stage_module)
        # Hara pools with a fixed AvgPool3d sized for 16x112x112 input, which is a global pool
        # there; the adaptive pool gives the same numbers and also accepts other clip sizes.
        self.avgpool = nn.AdaptiveAvgPool3d(1)
        self.feature_dim = channels
        self.fc = nn.Linear(channels, num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        # Hara's initialisation (He normal over kernel_size[0] * kernel_size[1] * out), so an
        # untrained network has activations of a realistic scale for speed and error runs.
        for module in self.modules():
            if isinstance(module, nn.Conv3d):
                fan = module.kernel_size[0] * module.kernel_size[1] * module.out_channels
                nn.init.normal_(module.weight, 0.0, (2.0 / fan) ** 0.5)
            elif isinstance(module, nn.BatchNorm3d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.avgpool(x), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        return self.fc(x) if self.last_fc else x


def _make_stage(in_channels: int, width: int, blocks: int, cardinality: int, stride: int):
    out_channels = width * ResNeXtBottleneck.expansion
    downsample = None
    if stride != 1 or in_channels != out_channels:
        downsample = nn.Sequential(
            nn.Conv3d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False),
            nn.BatchNorm3d(out_channels),
        )
    stage = [ResNeXtBottleneck(in_channels, width, cardinality, stride, downsample)]
    stage += [ResNeXtBottleneck(out_channels, width, cardinality) for _ in range(1, blocks)]
    return nn.Sequential(*stage), out_channels


def load_resnext(path: str | Path, **architecture) -> ResNeXt3D:
    """A ResNeXt3D (ResNeXt-101 unless `architecture` says otherwise) with the weights of `path`.

    `path` is Hara's training checkpoint ({"arch", "state_dict" with "module." prefixes,
    "epoch", "optimizer"}) or a bare state dict; keys and shapes must match exactly.
    """
    path = require_weights_file(path, "resnext101", CONFIG_KEY, ORIGIN)
    model = ResNeXt3D(**architecture)
    load_state_dict_strictly(model, read_state_dict(path), path)
    return model.eval()


def build_resnext101(
    weights: str | Path = DEFAULT_WEIGHTS,
    device: str | torch.device = "auto",
    precision: str = "fp32",
    **architecture,
) -> TorchExtractor:
    """The 2048-d ResNeXt-101 extractor; `weights` is the checkpoint path or "random".

    `architecture` (layers, widths, cardinality, ...) builds a smaller same-family network,
    which only tests should want; its name then stays "resnext101" but its dim differs.
    """
    path, sha = weights_identity(weights, "resnext101", CONFIG_KEY, ORIGIN)
    model = ResNeXt3D(**architecture) if path is None else load_resnext(path, **architecture)
    model.last_fc = False
    return TorchExtractor(
        name="resnext101",
        module=model,
        dim=model.feature_dim,
        preprocessing=RESNEXT_PREPROCESSING,
        weights_sha256=sha,
        device=resolve_device(device),
        precision=precision,
        bf16_mode="cast",
    )
