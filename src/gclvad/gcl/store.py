"""The models file: trained networks with the config that rebuilds them, and scoring with them.

A models file (format `gclvad-gcl-models/1`) is a torch file of plain values only: the
GCLConfig as a dict, the feature dimension, the two state dicts (D's is None for the plain
autoencoders) and free metadata (training log, cleaning summary, feature provenance). It is
read with `torch.load(weights_only=True)`, so a file holding any other pickled object is
refused without running it. Each training stage of the workflow writes one (G_pretrained.pt,
D_pretrained.pt, models.pt); scoring (`gclvad.scoring.footage`, `frame_scores`) reads them.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import numpy as np
import torch

from gclvad.atomic import atomic_path
from gclvad.errors import GclvadError
from gclvad.gcl.config import from_dict
from gclvad.gcl.models import Discriminator, Generator, Models, autocast, reconstruction_error

MODELS_FORMAT = "gclvad-gcl-models/1"
ENSEMBLE_FORMAT = "gclvad-gcl-ensemble/1"  # several runs' networks (gclvad.scoring.scorer); same metadata
WRITTEN_BY = (
    "the workflow's training rules write it (models.pt: the run's last training stage; "
    "G_pretrained.pt and D_pretrained.pt: the pre-training stages), as does gclvad.gcl.store.save_models"
)


class ModelsFileError(GclvadError):
    """A models file that is missing, damaged, refused for safety, or of another format."""


def save_torch_atomic(value: dict, path: Path) -> None:
    """torch.save to a temporary file beside `path`, then rename: never a half-written file."""
    with atomic_path(path) as temporary:
        torch.save(value, temporary)


def load_plain_torch(path: Path, what: str, written_by: str) -> dict:
    """A torch file of plain values (tensors, numbers, strings, lists, dicts) as a dict.

    Other pickled objects are refused without being run (weights_only=True). Errors say what
    the file should be and what writes it, not torch's internals."""
    path = Path(path)
    if not path.is_file():
        raise ModelsFileError(f"{path}: {what} not found; {written_by}")
    if path.stat().st_size == 0:
        raise ModelsFileError(f"{path}: empty file (0 bytes) where {what} was expected; {written_by}")
    try:
        value = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        # torch wraps every unpickling failure alike; only a refused class names a GLOBAL
        # ("GLOBAL x.y was not an allowed global", "unsupported GLOBAL posix.system ...").
        refused = re.search(r"\bGLOBAL ([\w.]+)", str(error))
        if refused is None:
            raise ModelsFileError(
                f"{path}: cannot be read as {what} (not a torch file of plain values); "
                f"it is damaged or another kind of file; {written_by}"
            ) from None
        raise ModelsFileError(
            f"{path}: refused for safety: it holds a pickled Python object ({refused.group(1)}), not only "
            f"tensors and plain values, and loading it could run code, so it is not {what} gclvad wrote; {written_by}"
        ) from None
    except Exception as error:  # a truncated or foreign file
        raise ModelsFileError(
            f"{path}: cannot be read as {what} ({type(error).__name__}: {error}); "
            f"it is damaged or another kind of file; {written_by}"
        ) from None
    if not isinstance(value, dict):
        raise ModelsFileError(f"{path}: holds a {type(value).__name__}, not {what}; {written_by}")
    return value


def save_models(
    path: Path, models: Models, metadata: dict | None = None, sections: tuple[str, ...] | None = None
) -> None:
    """Store the networks with their config, so `load_models` rebuilds them exactly.

    metadata: plain values kept beside them (training log, cleaning summary, where the
    features came from); `read_models_metadata` returns it. sections: store only these
    sections of the config (a workflow stage stores those it read; the run's complete
    settings are in its metadata), default all. The device is never stored.
    """
    config = models.config.sections(sections) if sections is not None else models.config.to_dict()
    config["execution"] = {k: v for k, v in config.get("execution", {}).items() if k != "device"}
    save_torch_atomic(
        {
            "format": MODELS_FORMAT,
            "config": config,
            "dim": models.dim,
            "generator": models.generator.state_dict(),
            "discriminator": models.discriminator.state_dict() if models.discriminator is not None else None,
            "metadata": metadata or {},
        },
        Path(path),
    )


def read_models_file(path: Path, formats: tuple[str, ...] = (MODELS_FORMAT,)) -> dict:
    """The plain contents of a models file of one of `formats`."""
    stored = load_plain_torch(path, f"a GCL models file ({MODELS_FORMAT})", WRITTEN_BY)
    if stored.get("format") not in formats:
        raise ModelsFileError(
            f"{path}: format {stored.get('format')!r}, expected a GCL models file of format {MODELS_FORMAT}; "
            f"{WRITTEN_BY}"
        )
    return stored


def read_models_metadata(path: Path) -> dict:
    """The metadata stored by `save_models` (empty when none was given), of a run's or an ensemble's file."""
    return read_models_file(Path(path), (MODELS_FORMAT, ENSEMBLE_FORMAT)).get("metadata", {})


def load_models(path: Path, device: str | None = None) -> Models:
    """Rebuild saved models, in eval mode; `device` overrides the device they were trained on."""
    return models_from_stored(read_models_file(Path(path)), device)


def models_from_stored(stored: dict, device: str | None = None) -> Models:
    """Networks rebuilt from the plain values save_models stores (config, dim, state dicts)."""
    config = from_dict(stored["config"])
    if device is not None:
        config = config.replace(device=device)
    models = Models(
        config=config,
        dim=stored["dim"],
        generator=Generator(stored["dim"], config),
        discriminator=Discriminator(stored["dim"], config) if stored["discriminator"] is not None else None,
    )
    models.generator.load_state_dict(stored["generator"])
    models.generator.to(config.device)
    if models.discriminator is not None:
        models.discriminator.load_state_dict(stored["discriminator"])
        models.discriminator.to(config.device)
    models.eval()
    return models


@torch.no_grad()
def score(models: Models, features: np.ndarray) -> dict[str, np.ndarray]:
    """Per-segment scores of (M, d) features: 'g' reconstruction error, 'd' D's probability
    (absent for autoencoder variants), and 'score' = the one config.scoring.model selects."""
    features = np.asarray(features)
    if features.ndim != 2 or features.shape[1] != models.dim:
        raise GclvadError(
            f"scoring: features must be (M, {models.dim}) like the training features, found {features.shape}"
        )
    config = models.config
    device = torch.device(config.device)
    forward = autocast(config.execution.precision, device)
    chunk_rows = config.scoring.chunk
    models.eval()
    errors, probabilities = [], []
    for start in range(0, features.shape[0], chunk_rows):
        chunk = torch.from_numpy(np.ascontiguousarray(features[start : start + chunk_rows], dtype=np.float32))
        chunk = chunk.to(device)
        with forward():
            errors.append(reconstruction_error(models.generator, chunk).float().cpu())
            if models.discriminator is not None:
                probabilities.append(models.discriminator.probability(chunk).float().cpu())
    out = {"g": _concat(errors)}
    if models.discriminator is not None:
        out["d"] = _concat(probabilities)
    out["score"] = out[config.scoring.model]
    return out


def _concat(parts: list[torch.Tensor]) -> np.ndarray:
    return torch.cat(parts).numpy() if parts else np.zeros(0, dtype=np.float32)
