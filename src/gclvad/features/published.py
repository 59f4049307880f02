"""Published features (RTFM layout) in the workflow's feature store, without a copy, or as files.

`link_features` writes the merged feature file of a `features` dataset
(gclvad.datasets.published) without copying a single feature: every video's dataset is an
HDF5 dataset stored externally, in the .npy file itself (past its header), or, for features
published one file per crop, a virtual (T, C, d) dataset over one such dataset per crop. The
whole feature store then reads them in place.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import h5py
import numpy as np

from gclvad.atomic import atomic_path
from gclvad.errors import GclvadError
from gclvad.features.files import FEATURES, VIDEOS, set_attrs, write_index
from gclvad.features.npy import NpyInfo, npy_info, video_shape


def link_features(
    videos: Mapping[str, Sequence[Path]], out_path: str | Path, attrs: Mapping, segment_length: int
) -> None:
    """A merged feature file whose per-video datasets are the .npy files themselves.

    videos: video id -> its files (one, or one per crop, in crop order). attrs: root
    attributes (what the features are and where they came from).
    """
    ids = sorted(videos)
    if not ids:
        raise GclvadError(f"{out_path}: no videos to link")
    segments = np.zeros(len(ids), dtype=np.int64)
    every_attrs = []
    first: tuple[str, tuple[int, ...]] | None = None
    with atomic_path(out_path) as temporary, h5py.File(temporary, "w") as out:
        group = out.create_group(VIDEOS)
        for i, video in enumerate(ids):
            shape = video_shape(videos[video])
            first = first or (video, shape)
            if shape[1:] != first[1][1:]:
                raise GclvadError(
                    f"features of one dataset must agree in crops and dimension: {first[0]} has rows of shape "
                    f"{first[1][1:]}, {video} ({videos[video][0]}) of shape {shape[1:]}"
                )
            _link_video(group.create_group(video), [npy_info(Path(p).absolute()) for p in videos[video]], shape)
            segments[i] = shape[0]
            video_attrs = {"frames": shape[0] * segment_length, "padded_tail": 0}
            set_attrs(group[video], {**video_attrs, "source": ",".join(str(p) for p in videos[video])}, out_path)
            every_attrs.append(video_attrs)
        write_index(out, ids, segments, every_attrs)
        set_attrs(out, {**attrs, "segment_length": int(segment_length), "dim": int(shape[-1])}, out_path)


def _link_video(group: h5py.Group, infos: list[NpyInfo], shape: tuple[int, ...]) -> None:
    """The video's `features` dataset, stored externally in its .npy file(s)."""
    if len(infos) == 1:
        info = infos[0]
        size = int(np.prod(info.shape)) * info.dtype.itemsize
        group.create_dataset(
            FEATURES, shape=info.shape, dtype=info.dtype, external=[(str(info.path), info.offset, size)]
        )
        return
    # One (T, d) file per crop: a virtual (T, C, d) dataset over external per-crop datasets.
    layout = h5py.VirtualLayout(shape=shape, dtype=infos[0].dtype)
    crops = group.create_group("crops")
    for k, info in enumerate(infos):
        size = int(np.prod(info.shape)) * info.dtype.itemsize
        part = crops.create_dataset(
            str(k), shape=info.shape, dtype=info.dtype, external=[(str(info.path), info.offset, size)]
        )
        layout[:, k, :] = h5py.VirtualSource(part)
    group.create_virtual_dataset(FEATURES, layout)
