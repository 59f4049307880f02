"""Dataset readers: turn a dataset's config entry into a list of `Video`s.

`load_dataset(spec)` dispatches on ``spec["format"]``:
    generic       a CSV manifest of the user's own videos (gclvad.datasets.generic)
    ucf_crime     UCF-Crime with its official lists and annotations (gclvad.datasets.ucf_crime)
    shanghaitech  ShanghaiTech in Zhong et al.'s split (gclvad.datasets.shanghaitech)
    features      published per-video features in the RTFM layout (gclvad.datasets.published)

`generate_synthetic(out_dir, kind, **arguments)` writes a synthetic dataset in the generic
format: kind "demo" (gclvad.datasets.synthetic.demo) or "walkway" (gclvad.datasets.synthetic.walkway, the harder
development benchmark). Their modules load torch or draw pictures, so they are imported only
when asked for.
Relative paths in a spec are taken relative to the current directory; paths inside a
manifest relative to the manifest's folder.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path

from gclvad.datasets.base import FrameMask, Intervals, Video, scored_videos, training_videos
from gclvad.datasets.generic import read_generic
from gclvad.datasets.published import read_published
from gclvad.datasets.shanghaitech import read_shanghaitech
from gclvad.datasets.ucf_crime import read_ucf_crime
from gclvad.errors import GclvadError

READERS: dict[str, Callable[[dict], list[Video]]] = {
    "generic": read_generic,
    "ucf_crime": read_ucf_crime,
    "shanghaitech": read_shanghaitech,
    "features": read_published,
}

# kind -> (module, function) of the synthetic dataset generators.
_GENERATORS = {
    "demo": ("gclvad.datasets.synthetic.demo", "generate_demo"),
    "walkway": ("gclvad.datasets.synthetic.walkway", "generate_walkway"),
    "pooled_walkway": ("gclvad.datasets.synthetic.pooled_walkway", "generate_pooled_walkway"),
}
SYNTHETIC_KINDS = tuple(_GENERATORS)

__all__ = [
    "READERS",
    "SYNTHETIC_KINDS",
    "FrameMask",
    "Intervals",
    "Video",
    "generate_synthetic",
    "load_dataset",
    "scored_videos",
    "training_videos",
]


def load_dataset(spec: dict) -> list[Video]:
    """The videos a dataset config entry describes."""
    fmt = spec.get("format")
    if fmt not in READERS:
        raise GclvadError(f"unknown dataset format {fmt!r}; known formats are {', '.join(sorted(READERS))}")
    return READERS[fmt](spec)


def generate_synthetic(out_dir: str | Path, kind: str = "demo", **arguments) -> Path:
    """Write the synthetic dataset `kind` into `out_dir` with the generator's `arguments`; returns videos.csv."""
    if kind not in _GENERATORS:
        raise GclvadError(f"unknown synthetic dataset kind {kind!r}; known kinds are {', '.join(SYNTHETIC_KINDS)}")
    module, function = _GENERATORS[kind]
    return getattr(importlib.import_module(module), function)(Path(out_dir), **arguments)
