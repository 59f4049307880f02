"""Training checkpoints: everything a stage needs to continue exactly where it stopped.

A checkpoint (format `gclvad-gcl-checkpoint/1`, plain values only, atomic) holds the
networks, the optimisers, every random state (the training generator, torch's global RNG,
CUDA's, numpy's and Python's), the stage and epoch reached, the log so far, and a
fingerprint of what it was written for (config, seed, stages, a sample of the data, the
starting networks). A checkpoint whose fingerprint differs is refused (StaleCheckpointError),
never silently resumed.
"""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

import numpy as np
import torch

from gclvad.errors import GclvadError
from gclvad.gcl.models import Models
from gclvad.gcl.store import load_plain_torch, save_torch_atomic

CHECKPOINT_FORMAT = "gclvad-gcl-checkpoint/1"
FINGERPRINT_KEYS = ("config", "seed", "shape", "data_sha256", "stages")
_WRITTEN_BY = "training writes it after an epoch and removes it when its stage is done; delete it to start afresh"


class StaleCheckpointError(GclvadError):
    """A checkpoint written for another config, seed, data or starting networks."""


def fingerprint(
    features: np.ndarray, video, position, config: dict, seed: int, stages: list[str], initial: Models | None
) -> dict:
    """What a checkpoint must match to be resumed: config, seed, stages, (a sample of) the data
    and the starting networks."""
    n_rows = features.shape[0]
    sample = np.ascontiguousarray(features[:: max(1, n_rows // 1024)], dtype=np.float32)
    digest = hashlib.sha256(sample.tobytes())
    digest.update(np.ascontiguousarray(video, dtype=np.int64).tobytes())
    digest.update(np.ascontiguousarray(position, dtype=np.int64).tobytes())
    if initial is not None:
        for module in (initial.generator, initial.discriminator):
            for tensor in module.state_dict().values() if module is not None else ():
                digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return {
        "config": config,
        "seed": seed,
        "shape": list(features.shape),
        "data_sha256": digest.hexdigest(),
        "stages": stages,
    }


def capture_rng(generator: torch.Generator) -> dict:
    """Every random state training consumes, as plain values."""
    numpy_state = np.random.get_state()
    return {
        "generator": generator.get_state(),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": [numpy_state[0], torch.from_numpy(numpy_state[1].astype(np.int64)), *numpy_state[2:]],
        "python": _tuples_to_lists(random.getstate()),
    }


def restore_rng(state: dict, generator: torch.Generator) -> None:
    generator.set_state(state["generator"])
    torch.set_rng_state(state["torch"])
    if state["cuda"]:
        torch.cuda.set_rng_state_all(state["cuda"])
    kind, keys, *rest = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), *rest))
    random.setstate(_lists_to_tuples(state["python"]))


def save_checkpoint(path: Path, fingerprint: dict, state: dict) -> None:
    """Write `state` (plain values: state dicts, counters, log, capture_rng()) under `fingerprint`."""
    save_torch_atomic({"format": CHECKPOINT_FORMAT, "fingerprint": fingerprint, **state}, Path(path))


def load_checkpoint(path: Path, fingerprint: dict) -> dict:
    """The checkpoint's contents, after checking it was written for `fingerprint`."""
    path = Path(path)
    checkpoint = load_plain_torch(path, f"a GCL training checkpoint ({CHECKPOINT_FORMAT})", _WRITTEN_BY)
    if checkpoint.get("format") != CHECKPOINT_FORMAT:
        raise StaleCheckpointError(f"{path}: not a GCL checkpoint of format {CHECKPOINT_FORMAT}; {_WRITTEN_BY}")
    saved = checkpoint["fingerprint"]
    for key in FINGERPRINT_KEYS:
        if saved.get(key) != fingerprint[key]:
            raise StaleCheckpointError(
                f"{path}: checkpoint was written for a different {key} "
                f"(checkpoint {saved.get(key)!r}, this run {fingerprint[key]!r}); delete it to start afresh"
            )
    return checkpoint


def _tuples_to_lists(value):
    return [_tuples_to_lists(v) for v in value] if isinstance(value, tuple) else value


def _lists_to_tuples(value):
    return tuple(_lists_to_tuples(v) for v in value) if isinstance(value, list) else value
