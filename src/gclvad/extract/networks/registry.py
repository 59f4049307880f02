"""The registry of feature extractors: a name from the config -> a ready Extractor.

Builders are imported only when their name is asked for, so a run that uses ResNeXt-101 never
imports the I3D code (and its optional dependencies), and the other way round.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path

import torch

from gclvad.errors import GclvadError
from gclvad.extract.networks.base import Extractor, RandomWeightsWarning
from gclvad.weights import is_random_weights, sha256_file

__all__ = [
    "EXTRACTOR_NAMES",
    "Extractor",
    "RandomWeightsWarning",
    "build_extractor",
    "sha256_file",
]

# Seed of the untrained networks built for `weights: random`.
RANDOM_WEIGHTS_SEED = 0

_TORCHVISION = ("r3d_18", "mc3_18", "r2plus1d_18", "s3d", "mvit_v2_s", "swin3d_t")

# name -> (module, function); the function takes (weights, device, precision).
_BUILDERS: dict[str, tuple[str, str]] = {
    "resnext101": ("gclvad.extract.networks.resnext", "build_resnext101"),
    "i3d": ("gclvad.extract.networks.i3d", "build_i3d"),
    **{name: ("gclvad.extract.networks.torchvision_models", "build_torchvision_extractor") for name in _TORCHVISION},
}
EXTRACTOR_NAMES: tuple[str, ...] = tuple(_BUILDERS)


def _builder(name: str) -> Callable[..., Extractor]:
    module_name, function_name = _BUILDERS[name]
    function = getattr(importlib.import_module(module_name), function_name)
    if name in _TORCHVISION:
        return lambda weights, device, precision: function(name, weights, device, precision)
    return function


def build_extractor(
    name: str, weights: str | Path, device: str = "auto", precision: str = "fp32", crops: str = "centre"
) -> Extractor:
    """The extractor `name` with the weights file `weights` on `device` ("auto" | "cpu" |
    "cuda" | "cuda:N") in `precision` ("fp32" | "bf16" | "auto": bf16 where the device computes
    it natively, speed.resolve_precision), seeing the crops of every segment that `crops` names
    (gclvad.decode.crops.CROP_MODES).

    weights="random" (that exact string) builds an untrained network and warns loudly (each
    builder warns, through base.warn_random_weights); any other value must be an existing
    weights file.
    """
    if name not in _BUILDERS:
        raise GclvadError(f"unknown extractor {name!r}: known extractors are {', '.join(EXTRACTOR_NAMES)}")
    if weights is None or str(weights).strip() == "":
        raise GclvadError(
            f"extractor {name!r}: no weights given; set extractors.{name}.weights to a weights file "
            "(or to 'random' for an untrained network, for tests and speed runs only)"
        )
    if is_random_weights(weights):
        # An untrained network must be the same in every job (one per video) and every run,
        # or features of different videos would come from different networks.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(RANDOM_WEIGHTS_SEED)
            extractor = _builder(name)(weights, device, precision)
    else:
        extractor = _builder(name)(weights, device, precision)
    # Guard against a builder (such as one written later) that forgets to mark random weights.
    if is_random_weights(weights) and not extractor.weights_random:
        raise GclvadError(f"extractor {name!r} was built from random weights but does not say so")
    if crops != "centre":  # the network sees several crops of every segment (gclvad.decode.preprocessing)
        try:
            extractor.preprocessing = extractor.preprocessing.with_crops(crops)
        except ValueError as error:
            raise GclvadError(f"extractor {name!r}: {error}") from None
    return extractor
