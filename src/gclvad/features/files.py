"""The feature store: segment features of videos in HDF5 files, written atomically.

Three kinds of file:
    per-video file   dataset ``features`` [S, d], or [S, C, d] for C crops of every segment
                     (float16 or float32), with the extraction's
                     attributes (extractor, weights_sha256, weights_random, segment_length,
                     frames, fps, preprocessing as JSON, padded_tail = frames padded at the
                     end of the last segment). One extraction job writes one.
    merged file      one group ``/videos/<id>`` per video (its ``features`` and attributes),
                     an index table ``/index`` (columns video, offset, segments, frames,
                     padded_tail; offset = first row of the video in the concatenated
                     order) and root attributes for what all videos share.

Every file is written under a temporary name in its own folder and then renamed, so a job
killed midway leaves no file that looks complete. `load_feature_set` reads a merged file
into a `FeatureSet`: all rows of the chosen videos concatenated as float32.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import h5py
import numpy as np

from gclvad.atomic import atomic_path
from gclvad.errors import GclvadError

FEATURES = "features"
VIDEOS = "videos"
INDEX = "index"
STORED_DTYPES = ("float16", "float32")
# Attributes that must agree between the per-video files of one merged file: features from
# different networks, weights or segment lengths cannot be trained on together.
SHARED_KEYS = ("extractor", "weights_sha256", "segment_length")
# Attributes a per-video file needs to enter a merged file's index.
INDEX_KEYS = ("frames", "padded_tail")


# ---------------------------------------------------------------- atomic writes and attributes


@contextmanager
def _atomic_h5(path: str | Path) -> Iterator[h5py.File]:
    """An HDF5 file opened for writing under a temporary name, renamed to `path` on success
    (gclvad.atomic: nothing partial is ever left under the final name)."""
    with atomic_path(path) as temporary, h5py.File(temporary, "w") as out:
        yield out


def _storable(key: str, value, path: Path):
    """An attribute value h5py stores and gives back unchanged (after `_plain`)."""
    if isinstance(value, (str, bool, int, float, np.bool_, np.integer, np.floating)):
        return value
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (list, tuple, np.ndarray)) and np.asarray(value).dtype.kind in "biuf":
        return np.asarray(value)
    raise GclvadError(
        f"{path}: attribute {key!r} has a value of type {type(value).__name__}; store str, bool, int, "
        "float or a numeric array (JSON-encode structured values, as for 'preprocessing')"
    )


def _plain(value):
    """h5py's attribute value as the plain Python value it was written from."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, bytes):
        return value.decode("utf-8")
    return value


def attrs_of(node: h5py.HLObject) -> dict:
    return {key: _plain(value) for key, value in node.attrs.items()}


def set_attrs(node: h5py.HLObject, attrs: Mapping, path: Path) -> None:
    for key, value in attrs.items():
        node.attrs[key] = _storable(key, value, path)


def _checked_features(features: np.ndarray, path: Path, dtype: str) -> np.ndarray:
    """`features` as a finite [S, d] (or [S, C, d]) array of the stored dtype, or a GclvadError saying why not."""
    features = np.asarray(features)
    if dtype not in STORED_DTYPES:
        raise GclvadError(f"{path}: feature dtype must be one of {STORED_DTYPES}, got {dtype!r}")
    if features.ndim not in (2, 3) or 0 in features.shape:
        raise GclvadError(
            f"{path}: features must be a non-empty [segments, dim] or [segments, crops, dim] array, "
            f"got shape {features.shape}"
        )
    if features.dtype.kind not in "biuf":
        raise GclvadError(f"{path}: features must be numbers, got dtype {features.dtype}")
    reject_non_finite(features, path, "features")
    with np.errstate(over="ignore"):  # overflow is reported just below, naming the file
        stored = features.astype(dtype)
    # float16 overflows to inf above 65504: that would silently destroy features.
    reject_non_finite(stored, path, f"features cast to {dtype}")
    return stored


def reject_non_finite(values: np.ndarray, path: Path, what: str) -> None:
    bad = ~np.isfinite(values)
    if bad.any():
        rows = np.unique(np.nonzero(bad)[0])
        raise GclvadError(
            f"{path}: {what} hold {int(bad.sum())} NaN/inf values (in segment(s) {rows[:10].tolist()}"
            + (" ..." if len(rows) > 10 else "")
            + "); such features would turn training and scores into NaN: extract this video again"
        )


# ---------------------------------------------------------------- per-video files


def write_video_features(path: str | Path, features: np.ndarray, attrs: dict, dtype: str = "float32") -> None:
    """Write one video's [S, d] segment features and their attributes, atomically."""
    path = Path(path)
    stored = _checked_features(features, path, dtype)
    with _atomic_h5(path) as out:
        out.create_dataset(FEATURES, data=stored)
        set_attrs(out, attrs, path)


def read_video_features(path: str | Path) -> tuple[np.ndarray, dict]:
    """One video's features as float32 [S, d] and its attributes."""
    path = Path(path)
    with open_store(path) as source:
        features = features_of(source, path)[()].astype(np.float32)
        reject_non_finite(features, path, "features")
        return features, attrs_of(source)


@contextmanager
def open_store(path: Path) -> Iterator[h5py.File]:
    if not path.is_file():
        raise GclvadError(f"{path}: feature file not found")
    try:
        source = h5py.File(path, "r")
    except OSError as error:
        raise GclvadError(f"{path}: not a readable HDF5 feature file ({error})") from error
    with source:
        yield source


def features_of(node: h5py.Group, path: Path) -> h5py.Dataset:
    dataset = node.get(FEATURES)
    if not isinstance(dataset, h5py.Dataset) or dataset.ndim not in (2, 3):
        raise GclvadError(
            f"{path}: no 2-D or 3-D dataset '{FEATURES}' in {node.name} (incomplete or not a feature file)"
        )
    return dataset


# ---------------------------------------------------------------- merged files


def merge_video_features(parts: Mapping[str, Path], out_path: str | Path) -> None:
    """Gather per-video files (video id -> path) into one merged file, ordered by video id.

    Features are copied dataset to dataset, so memory holds one video at a time.
    """
    out_path = Path(out_path)
    if not parts:
        raise GclvadError(f"{out_path}: no per-video feature files to merge")
    ids = sorted(parts)
    for video_id in ids:
        if not video_id or "/" in video_id:
            raise GclvadError(f"{parts[video_id]}: video id {video_id!r} cannot name an HDF5 group")

    reference: tuple[Path, dict] | None = None
    every_attrs: list[dict] = []
    segments = np.zeros(len(ids), dtype=np.int64)
    with _atomic_h5(out_path) as out:
        videos = out.create_group(VIDEOS)
        for i, video_id in enumerate(ids):
            part = Path(parts[video_id])
            with open_store(part) as source:
                dataset = features_of(source, part)
                attrs = attrs_of(source)
                _check_part(part, attrs, dataset)
                shared = _shared_of(attrs, dataset)
                if reference is None:
                    reference = (part, shared)
                _check_agrees(reference, part, shared)
                reject_non_finite(dataset[()], part, f"features of video {video_id}")
                group = videos.create_group(video_id)
                out.copy(dataset, group, name=FEATURES)
                set_attrs(group, attrs, part)
            segments[i] = dataset.shape[0]
            every_attrs.append(attrs)
        write_index(out, ids, segments, every_attrs)
        set_attrs(out, _root_attrs(reference[1], every_attrs), out_path)


def _check_part(part: Path, attrs: dict, dataset: h5py.Dataset) -> None:
    missing = [key for key in SHARED_KEYS + INDEX_KEYS if key not in attrs]
    if missing:
        raise GclvadError(f"{part}: lacks the attribute(s) {', '.join(missing)} a merged feature file needs")
    if dataset.dtype.name not in STORED_DTYPES:
        raise GclvadError(f"{part}: features are stored as {dataset.dtype}, expected one of {STORED_DTYPES}")


def _shared_of(attrs: dict, dataset: h5py.Dataset) -> dict:
    shared = {key: attrs[key] for key in SHARED_KEYS}
    shared["dim"] = int(dataset.shape[-1])
    shared["segment_stride"] = int(attrs.get("segment_stride", attrs["segment_length"]))
    shared["frame_step"] = int(attrs.get("frame_step", 1))
    shared["crops"] = int(dataset.shape[1]) if dataset.ndim == 3 else 1
    shared["dtype"] = dataset.dtype.name
    return shared


def _check_agrees(reference: tuple[Path, dict], part: Path, shared: dict) -> None:
    first, expected = reference
    for key, value in expected.items():
        if not _same(shared[key], value):
            raise GclvadError(
                f"feature files disagree on {key}: {first} has {value!r} but {part} has {shared[key]!r}; "
                "features of one merged file must come from one extraction"
            )


def _root_attrs(shared: dict, every_attrs: list[dict]) -> dict:
    """The checked shared attributes plus every other attribute all videos have equal."""
    common = dict(shared)
    for key, value in every_attrs[0].items():
        shared_by_all = all(key in attrs and _same(attrs[key], value) for attrs in every_attrs)
        if key not in common and key not in INDEX_KEYS and shared_by_all:
            common[key] = value
    return common


def _same(first, second) -> bool:
    if isinstance(first, np.ndarray) or isinstance(second, np.ndarray):
        return np.array_equal(first, second)
    return type(first) is type(second) and first == second


def write_index(out: h5py.File, ids: list[str], segments: np.ndarray, every_attrs: list[dict]) -> None:
    index = out.create_group(INDEX)
    index.create_dataset("video", data=np.array(ids, dtype=object), dtype=h5py.string_dtype())
    index.create_dataset("offset", data=np.concatenate([[0], np.cumsum(segments)[:-1]]).astype(np.int64))
    index.create_dataset("segments", data=segments)
    for key in INDEX_KEYS:
        index.create_dataset(key, data=np.array([int(attrs[key]) for attrs in every_attrs], dtype=np.int64))


# ---------------------------------------------------------------- loading


# What a run records of its features (root attributes where all videos agree): the weights
# digest and preprocessing of extracted features (scoring new videos checks them), where
# published features came from.
PROVENANCE_KEYS = ("weights_sha256", "preprocessing", "feature_source", "train_list_sha256", "test_list_sha256")


def stored_videos(path: str | Path) -> list[str]:
    """The videos a merged feature file holds, in its index order."""
    path = Path(path)
    with open_store(path) as source:
        return read_index(source, path)["video"]


def read_provenance(path: str | Path) -> dict[str, str]:
    """The provenance attributes of a merged feature file (PROVENANCE_KEYS that it has)."""
    path = Path(path)
    with open_store(path) as source:
        attrs = attrs_of(source)
    return {key: str(attrs[key]) for key in PROVENANCE_KEYS if key in attrs}


def read_extraction_precision(path: str | Path) -> str | None:
    """The precision all videos of a merged feature file were extracted in (None when they
    differ or the file does not say, e.g. published features)."""
    with open_store(Path(path)) as source:
        precision = attrs_of(source).get("precision")
    return None if precision is None else str(precision)


def read_index(source: h5py.File, path: Path) -> dict:
    index = source.get(INDEX)
    columns = ("video", "offset", "segments", *INDEX_KEYS)
    if not isinstance(index, h5py.Group) or any(name not in index for name in columns):
        raise GclvadError(f"{path}: not a merged feature file (no complete /{INDEX} table with {', '.join(columns)})")
    table = {name: index[name][()] for name in columns}
    table["video"] = [name.decode("utf-8") if isinstance(name, bytes) else str(name) for name in table["video"]]
    return table
