"""GCL's two networks: the generator G (an autoencoder) and the discriminator D (a classifier).

Paper §4: G = FC[2048, 1024, 512, 256, 512, 1024, 2048], D = FC[2048, 512, 32, 1]. The paper
names no activations or normalisation, so these are choices recorded in `GCLConfig`:
* an activation (default ReLU) after every hidden layer of both networks;
* G's output layer is linear: features may be negative after any extractor, and the
  all-ones negative-learning target must be reachable;
* D's last layer produces a logit; its probability is sigmoid(logit). Training uses
  BCE-with-logits, which is the paper's Eq. (3) computed without overflow;
* optional dropout after every hidden activation (default 0);
* PyTorch's default Linear initialisation.
"""

from __future__ import annotations

import contextlib
import itertools
from dataclasses import dataclass

import torch
from torch import nn

from gclvad.gcl.config import GCLConfig

_ACTIVATIONS = {"relu": nn.ReLU, "leaky_relu": nn.LeakyReLU, "gelu": nn.GELU, "tanh": nn.Tanh}


def _mlp(sizes: list[int], activation: str, dropout: float) -> nn.Sequential:
    """Linear layers between consecutive sizes; activation (+ dropout) after all but the last."""
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(sizes) - 2:
            layers.append(_ACTIVATIONS[activation]())
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


class Generator(nn.Module):
    """The autoencoder G: reconstructs a feature vector; its error is G's anomaly evidence."""

    def __init__(self, dim: int, config: GCLConfig):
        super().__init__()
        arch = config.architecture
        self.net = _mlp([dim, *arch.g_hidden, dim], arch.activation, arch.dropout)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.net(features)


class Discriminator(nn.Module):
    """The classifier D: forward gives the logit of "anomalous"; `probability` its sigmoid."""

    def __init__(self, dim: int, config: GCLConfig):
        super().__init__()
        arch = config.architecture
        self.net = _mlp([dim, *arch.d_hidden, 1], arch.activation, arch.dropout)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.net(features).squeeze(-1)

    def probability(self, features: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.forward(features))


def squared_error(reconstruction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-row squared L2 distance ||target - reconstruction||^2 (paper Eq. 1, before the mean), in fp32."""
    return (reconstruction.float() - target.float()).pow(2).sum(dim=1)


def reconstruction_error(generator: Generator, features: torch.Tensor) -> torch.Tensor:
    """Per-row squared L2 reconstruction error ||f - G(f)||^2 of `features` (N, d) -> (N,)."""
    return squared_error(generator(features), features)


def autocast(precision: str, device: torch.device):
    """A context-manager factory: forward passes under bf16 autocast, or as they are (fp32)."""
    if precision == "bf16":
        return lambda: torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext


@dataclass
class Models:
    """A trained (or training) pair. `discriminator` is None for the plain autoencoder variants."""

    config: GCLConfig
    dim: int
    generator: Generator
    discriminator: Discriminator | None

    def eval(self) -> None:
        """Both networks in eval mode (no dropout): how they label and score."""
        self.generator.eval()
        if self.discriminator is not None:
            self.discriminator.eval()


def build_models(config: GCLConfig, dim: int) -> Models:
    """Fresh networks for input dimension `dim`, initialised from torch's global RNG."""
    generator = Generator(dim, config).to(config.device)
    discriminator = Discriminator(dim, config).to(config.device) if config.method == "gcl" else None
    return Models(config=config, dim=dim, generator=generator, discriminator=discriminator)
