"""Which torch device a computation runs on, from the string a user writes in the config."""

from __future__ import annotations

import re

import torch

from gclvad.errors import GclvadError

_CUDA_INDEX = re.compile(r"cuda:(\d+)")


def resolve_device(spec: str | torch.device = "auto") -> torch.device:
    """ "auto" (CUDA when available, else CPU), "cpu", "cuda" or "cuda:N" -> torch.device.

    Asking for CUDA on a machine without it is an error rather than a silent CPU fallback,
    because the user would otherwise wait hours for a run they thought used the GPU.
    """
    if isinstance(spec, torch.device):
        spec = str(spec)
    text = str(spec).strip().lower()
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if text == "cpu":
        return torch.device("cpu")
    if text == "cuda" or _CUDA_INDEX.fullmatch(text):
        if not torch.cuda.is_available():
            raise GclvadError(
                f"device {spec!r} was asked for but this machine has no usable CUDA GPU; use device 'cpu' or 'auto'"
            )
        index = int(text.split(":")[1]) if ":" in text else 0
        count = torch.cuda.device_count()
        if index >= count:
            raise GclvadError(f"device {spec!r} was asked for but only {count} CUDA device(s) exist")
        return torch.device("cuda", index)
    raise GclvadError(f"unknown device {spec!r}: expected 'auto', 'cpu', 'cuda' or 'cuda:N'")
