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

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
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
# How a feature set with several crops per segment is used: their mean, each crop as its own
# training track (a segment's score then combines its crops' scores), the first crop, or the
# centre crop (`centre_crop`).
CROP_USES = ("mean", "each", "first", "center")


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


def _attrs_of(node: h5py.HLObject) -> dict:
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
    with _open(path) as source:
        features = _features_of(source, path)[()].astype(np.float32)
        reject_non_finite(features, path, "features")
        return features, _attrs_of(source)


@contextmanager
def _open(path: Path) -> Iterator[h5py.File]:
    if not path.is_file():
        raise GclvadError(f"{path}: feature file not found")
    try:
        source = h5py.File(path, "r")
    except OSError as error:
        raise GclvadError(f"{path}: not a readable HDF5 feature file ({error})") from error
    with source:
        yield source


def _features_of(node: h5py.Group, path: Path) -> h5py.Dataset:
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
            with _open(part) as source:
                dataset = _features_of(source, part)
                attrs = _attrs_of(source)
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


@dataclass
class FeatureSet:
    """Segment features of several videos, concatenated in `videos` order.

    features: (N, d) float32, or (N, C, d) with C crops of every segment (loaded with
    crops "each"); rows offsets[v]:offsets[v+1] belong to videos[v].
    offsets: (V+1,) int64; frames, padded_tail: (V,) int64 per video.
    attrs: what all videos share (extractor, weights_sha256, segment_length, dim, dtype, ...).
    video_attrs: each video's own attributes (fps, frames, ...), where loaded.
    """

    features: np.ndarray
    videos: list[str]
    offsets: np.ndarray
    frames: np.ndarray
    padded_tail: np.ndarray
    attrs: dict
    video_attrs: dict[str, dict] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.videos = list(self.videos)
        count = len(self.videos)
        if len(self.offsets) != count + 1 or self.offsets[0] != 0 or self.offsets[-1] != len(self.features):
            raise ValueError(f"offsets {self.offsets} do not partition {len(self.features)} rows among {count} videos")
        if len(self.frames) != count or len(self.padded_tail) != count:
            raise ValueError("frames and padded_tail need one entry per video")
        self._position = {video: i for i, video in enumerate(self.videos)}
        if len(self._position) != count:
            raise ValueError("a video occurs twice in a FeatureSet")

    @property
    def segments(self) -> np.ndarray:
        """(V,) number of segments of each video."""
        return np.diff(self.offsets)

    @property
    def crops(self) -> int:
        """Crops per segment kept apart (1 when features are (N, d))."""
        return int(self.features.shape[1]) if self.features.ndim == 3 else 1

    def tracks(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(features (N*C, d), track (N*C,), position (N*C,)): each crop of each video is a
        track of its own (track = video * C + crop), as training and TD cleaning see them;
        with one crop, tracks are the videos. Row r*C + c is crop c of segment row r."""
        crops = self.crops
        features = self.features.reshape(-1, self.features.shape[-1])
        track = (self.video_of_row()[:, None] * crops + np.arange(crops)).reshape(-1)
        position = np.repeat(self.position_of_row(), crops)
        return features, track, position

    def index_of(self, video: str) -> int:
        if video not in self._position:
            raise KeyError(f"video {video!r} is not in this feature set")
        return self._position[video]

    def of(self, video: str) -> np.ndarray:
        """(S_v, d) view of one video's rows."""
        i = self.index_of(video)
        return self.features[self.offsets[i] : self.offsets[i + 1]]

    def video_of_row(self) -> np.ndarray:
        """(N,) index into `videos` of each row."""
        return np.repeat(np.arange(len(self.videos)), self.segments)

    def position_of_row(self) -> np.ndarray:
        """(N,) segment index of each row within its video."""
        return np.arange(len(self.features)) - np.repeat(self.offsets[:-1], self.segments)

    def subset(self, videos: Iterable[str]) -> FeatureSet:
        """A new FeatureSet of the given videos, in the given order (rows copied)."""
        videos = list(videos)
        chosen = [self.index_of(video) for video in videos]
        rows = [self.of(video) for video in videos]
        features = np.concatenate(rows) if rows else np.empty((0, *self.features.shape[1:]), np.float32)
        return FeatureSet(
            features=features,
            videos=videos,
            offsets=np.concatenate([[0], np.cumsum(self.segments[chosen], dtype=np.int64)]).astype(np.int64),
            frames=self.frames[chosen],
            padded_tail=self.padded_tail[chosen],
            attrs=dict(self.attrs),
            video_attrs={video: self.video_attrs[video] for video in videos if video in self.video_attrs},
        )


def single_video(
    features: np.ndarray, video: str = "video", frames: int = 0, padded_tail: int = 0, attrs=None
) -> FeatureSet:
    """A FeatureSet of one video's rows (frames: 0 when nobody spreads its scores onto frames)."""
    return FeatureSet(
        features=features,
        videos=[video],
        offsets=np.array([0, len(features)], dtype=np.int64),
        frames=np.array([frames], dtype=np.int64),
        padded_tail=np.array([padded_tail], dtype=np.int64),
        attrs=dict(attrs or {}),
    )


def load_feature_set(path: str | Path, videos: Iterable[str] | None = None, crops: str = "mean") -> FeatureSet:
    """Read a merged feature file (all videos in index order, or `videos` in the order given).

    crops: how features with several crops per segment ([S, C, d] datasets) are used (CROP_USES):
    "mean" averages them, "first" and "center" keep one (`centre_crop`), "each" keeps them all,
    giving features (N, C, d). Single-crop features are read as they are.
    """
    path = Path(path)
    if crops not in CROP_USES:
        raise GclvadError(f"crops must be one of {', '.join(CROP_USES)}, found {crops!r}")
    with _open(path) as source:
        index = _read_index(source, path)
        wanted = index["video"] if videos is None else _wanted(list(videos), index["video"], path)
        position = {video: i for i, video in enumerate(index["video"])}
        chosen = np.array([position[video] for video in wanted], dtype=np.int64)
        segments = index["segments"][chosen]
        offsets = np.concatenate([[0], np.cumsum(segments)]).astype(np.int64)
        attrs = _attrs_of(source)
        first = _features_of(source[VIDEOS][wanted[0]], path) if wanted else None
        row_shape = tuple(first.shape[1:]) if first is not None else (int(attrs.get("dim", 0)),)
        kept = row_shape if crops == "each" or len(row_shape) == 1 else row_shape[1:]
        features = np.empty((int(offsets[-1]), *kept), dtype=np.float32)
        video_attrs = {}
        for i, video in enumerate(wanted):
            group = source[VIDEOS].get(video)
            if group is None:
                raise GclvadError(f"{path}: the index names video {video} but /{VIDEOS}/{video} is missing")
            dataset = _features_of(group, path)
            if dataset.shape != (segments[i], *row_shape):
                raise GclvadError(
                    f"{path}: /{VIDEOS}/{video}/{FEATURES} has shape {dataset.shape}, "
                    f"the index and the first video say {(segments[i], *row_shape)}"
                )
            rows = np.s_[offsets[i] : offsets[i + 1]]
            if segments[i]:
                _read_rows(dataset, features, rows, crops)
                reject_non_finite(features[rows], path, f"features of video {video}")
            video_attrs[video] = _attrs_of(group)
    return FeatureSet(
        features=features,
        videos=list(wanted),
        offsets=offsets,
        frames=index["frames"][chosen],
        padded_tail=index["padded_tail"][chosen],
        attrs=attrs,
        video_attrs=video_attrs,
    )


def _read_rows(dataset: h5py.Dataset, features: np.ndarray, rows: slice, crops: str) -> None:
    """One video's rows into features[rows], its crops used as `crops` says."""
    if dataset.ndim == 2 or crops == "each":
        # HDF5 converts float16 to float32 while reading into the destination rows.
        dataset.read_direct(features, dest_sel=rows)
    elif crops == "mean":
        features[rows] = use_crops(dataset[()], crops)
    else:  # read only the crop that is kept
        features[rows] = dataset[:, crop_index(crops, dataset.shape[1]), :].astype(np.float32)


def use_crops(features: np.ndarray, crops: str) -> np.ndarray:
    """One video's (S, d) or (S, C, d) features as float32, its crops used as `crops` says."""
    features = np.asarray(features, dtype=np.float32)
    if features.ndim == 2 or crops == "each":
        return features
    if crops == "mean":
        return features.mean(axis=1)
    return features[:, crop_index(crops, features.shape[1])]


def crop_index(crops: str, count: int) -> int:
    """The crop kept by "first" (0) or "center" (`centre_crop`) among `count`."""
    return 0 if crops == "first" else centre_crop(count)


def centre_crop(crops: int) -> int:
    """Index of the centre crop among `crops`: torchvision's FiveCrop/TenCrop order (four corners,
    centre, then the flipped ones; the published RTFM features follow it) for 5 or more, the
    middle one for fewer (gclvad's three crops: left, centre, right)."""
    return 4 if crops >= 5 else crops // 2


# What a run records of its features (root attributes where all videos agree): the weights
# digest and preprocessing of extracted features (scoring new videos checks them), where
# published features came from.
PROVENANCE_KEYS = ("weights_sha256", "preprocessing", "feature_source", "train_list_sha256", "test_list_sha256")


def stored_videos(path: str | Path) -> list[str]:
    """The videos a merged feature file holds, in its index order."""
    path = Path(path)
    with _open(path) as source:
        return _read_index(source, path)["video"]


def read_provenance(path: str | Path) -> dict[str, str]:
    """The provenance attributes of a merged feature file (PROVENANCE_KEYS that it has)."""
    path = Path(path)
    with _open(path) as source:
        attrs = _attrs_of(source)
    return {key: str(attrs[key]) for key in PROVENANCE_KEYS if key in attrs}


def _read_index(source: h5py.File, path: Path) -> dict:
    index = source.get(INDEX)
    columns = ("video", "offset", "segments", *INDEX_KEYS)
    if not isinstance(index, h5py.Group) or any(name not in index for name in columns):
        raise GclvadError(f"{path}: not a merged feature file (no complete /{INDEX} table with {', '.join(columns)})")
    table = {name: index[name][()] for name in columns}
    table["video"] = [name.decode("utf-8") if isinstance(name, bytes) else str(name) for name in table["video"]]
    return table


def _wanted(requested: list[str], available: list[str], path: Path) -> list[str]:
    known = set(available)
    missing = [video for video in requested if video not in known]
    if missing:
        raise GclvadError(
            f"{path}: has no features for {len(missing)} requested video(s): {', '.join(missing[:20])}"
            + (" ..." if len(missing) > 20 else "")
        )
    if len(set(requested)) != len(requested):
        raise GclvadError(f"{path}: a video is requested twice")
    if not requested:
        raise GclvadError(f"{path}: no videos requested")
    return requested
