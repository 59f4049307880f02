"""Pseudo-labels and negative-learning targets: how G and D teach each other (paper §3.2).

* G's labels for D (Eq. 2): 1 where a row's reconstruction error >= mean + k_G * std of the
  batch's errors (paper: k_G = 1).
* D's labels for G (Eq. 4): 1 where D's probability >= mean + k_D * std of the batch's
  probabilities (paper: k_D = 0.1).
  "std" is the population standard deviation of the batch (the paper does not say which;
  at batch 8192 the difference is nil). When every value of a batch is equal (std 0) the
  rule ">= mean" would call the whole batch anomalous; that batch gets no anomalous label.
* Soft targets (ablation "soft labels", §4.2): G's errors min-max normalised within the
  batch to [0, 1], used by D as BCE targets with no threshold.
* Negative learning (§3.2.5, Eq. 5-6): G's reconstruction target is the input itself for
  rows D calls normal and a pseudo reconstruction target for rows D calls anomalous:
  "ones" (the all-ones vector, the paper's choice), "random_normal" (the feature of a
  randomly chosen normal-labelled row of the same batch; a batch with no normal-labelled
  row keeps its inputs as targets), "gaussian" (the input plus N(0, sigma^2) noise), or
  "none" (no pseudo targets: G is trained on the normal-labelled rows only).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from gclvad.errors import GclvadError


def threshold_labels(values: torch.Tensor, k: float) -> torch.Tensor:
    """Bool labels: True where value >= mean + k * std over `values` (1-D, one batch)."""
    values = values.float()
    mean = values.mean()
    std = values.std(correction=0)
    if values.numel() == 0 or std == 0:
        return torch.zeros_like(values, dtype=torch.bool)
    return values >= mean + k * std


def soft_targets(errors: torch.Tensor) -> torch.Tensor:
    """Reconstruction errors min-max normalised within the batch to [0, 1] (0 if all equal)."""
    errors = errors.float()
    low, high = errors.min(), errors.max()
    if high == low:
        return torch.zeros_like(errors)
    return (errors - low) / (high - low)


def pseudo_targets(
    features: torch.Tensor,
    anomalous: torch.Tensor,
    kind: str,
    gaussian_sigma: float = 1.5,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """G's reconstruction targets (Eq. 6): the input where `anomalous` is False, else the pseudo target.

    kind: "ones", "random_normal" or "gaussian" (see module docstring). Random draws use
    `generator`, so a seeded run is reproducible.
    """
    targets = features.float().clone()
    n_anomalous = int(anomalous.sum())
    if n_anomalous == 0:
        return targets
    if kind == "ones":
        targets[anomalous] = 1.0
    elif kind == "random_normal":
        normal_rows = torch.nonzero(~anomalous).squeeze(1)
        if normal_rows.numel() > 0:
            pick = torch.randint(normal_rows.numel(), (n_anomalous,), generator=generator, device=features.device)
            targets[anomalous] = targets[normal_rows[pick]]
    elif kind == "gaussian":
        noise = torch.randn((n_anomalous, features.shape[1]), generator=generator, device=features.device)
        targets[anomalous] = targets[anomalous] + gaussian_sigma * noise
    else:
        raise GclvadError(f"negative learning: unknown pseudo target {kind!r}; use ones, random_normal or gaussian")
    return targets


def negative_learning_loss(
    reconstruction: torch.Tensor,
    features: torch.Tensor,
    anomalous: torch.Tensor,
    kind: str,
    gaussian_sigma: float = 1.5,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Eq. 5: mean over the batch of ||t - G(f)||^2; for kind "none", mean over normal rows only."""
    reconstruction = reconstruction.float()
    if kind == "none":
        normal = ~anomalous
        if not normal.any():
            return reconstruction.sum() * 0.0  # nothing to learn from; keeps the graph intact
        return F.mse_loss(reconstruction[normal], features[normal].float(), reduction="sum") / int(normal.sum())
    targets = pseudo_targets(features, anomalous, kind, gaussian_sigma, generator)
    # sum of squares / rows = the mean over rows of ||t - G(f)||^2, in one fused op
    return F.mse_loss(reconstruction, targets, reduction="sum") / reconstruction.shape[0]
