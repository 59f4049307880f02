"""Feature arrays in .npy files, read in place: their header, their shape, their values checked.

Published features come as .npy arrays, one per video or one per crop of a video. To read
them without a copy, a reader needs where the data starts and in what layout; this module
reads just the header, and checks values block by block so that a large file never has to
fit in memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gclvad.errors import GclvadError

_CHECK_ROWS = 4096  # rows read at a time when checking a file for NaN or infinity


@dataclass(frozen=True)
class NpyInfo:
    """What the header of a .npy file says: enough to read it in place."""

    path: Path
    shape: tuple[int, ...]
    dtype: np.dtype
    offset: int  # bytes before the array data


def npy_info(path: Path) -> NpyInfo:
    """The header of a .npy file; refuses what cannot be read in place (object arrays,
    Fortran order, big-endian, non-float data)."""
    try:
        with open(path, "rb") as handle:
            version = np.lib.format.read_magic(handle)
            read_header = (
                np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            )
            shape, fortran, dtype = read_header(handle)
            offset = handle.tell()
    except (OSError, ValueError) as error:
        raise GclvadError(f"{path}: cannot be read as a .npy array ({error})") from None
    if dtype.kind != "f" or dtype.byteorder == ">" or fortran:
        raise GclvadError(
            f"{path}: expected little-endian float features in C order, found dtype {dtype}"
            + (", Fortran order" if fortran else "")
        )
    if len(shape) not in (2, 3) or 0 in shape:
        raise GclvadError(f"{path}: expected features of shape (T, d) or (T, crops, d), found {shape}")
    return NpyInfo(Path(path), tuple(int(n) for n in shape), dtype, offset)


def video_shape(files: Sequence[Path]) -> tuple[int, ...]:
    """(T, d) or (T, C, d) of a video given as one file or as one (T, d) file per crop."""
    infos = [npy_info(path) for path in files]
    if len(infos) == 1:
        return infos[0].shape
    shapes = {info.shape for info in infos}
    if len(shapes) != 1 or len(infos[0].shape) != 2:
        listed = ", ".join(f"{info.path.name} {info.shape}" for info in infos)
        raise GclvadError(f"the crop files of one video must all be (T, d) of one shape, found {listed}")
    rows, dim = infos[0].shape
    return (rows, len(infos), dim)


def check_finite(path: Path) -> None:
    """Refuse a .npy file holding NaN or infinity, naming the file and the first bad row."""
    array = np.load(path, mmap_mode="r", allow_pickle=False)
    for start in range(0, array.shape[0], _CHECK_ROWS):
        block = np.asarray(array[start : start + _CHECK_ROWS])
        bad = ~np.isfinite(block.reshape(len(block), -1)).all(axis=1)
        if bad.any():
            raise GclvadError(
                f"{path}: row {start + int(np.flatnonzero(bad)[0])} of the features holds NaN or infinity "
                f"({int(bad.sum())} bad rows from row {start}); such features would make training and scores NaN"
            )
