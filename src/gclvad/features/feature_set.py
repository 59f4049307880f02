"""A feature set: the segment rows of chosen videos of a merged feature file, as training and scoring read them.

`load_feature_set` reads all rows of the chosen videos concatenated as float32, crops used
as a run uses them (`CROP_USES`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from gclvad.decode.windows import window_frames
from gclvad.errors import GclvadError
from gclvad.features.files import FEATURES, VIDEOS, attrs_of, features_of, open_store, read_index, reject_non_finite

# How a feature set with several crops per segment is used: their mean, each crop as its own
# training track (a segment's score then combines its crops' scores), the first crop, or the
# centre crop (`centre_crop`).
CROP_USES = ("mean", "each", "first", "centre")


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

    def window_frames(self, segment_length: int | None = None) -> tuple[int, int]:
        """(frames of its video one row's segment spans, frames between the rows' segment
        starts), from the segment length (default: the recorded one), the recorded stride
        and frame_step (absent: consecutive segments of every frame)."""
        length = int(segment_length or self.attrs["segment_length"])
        stride = int(self.attrs.get("segment_stride", length))
        return window_frames(length, stride, int(self.attrs.get("frame_step", 1)))

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
    "mean" averages them, "first" and "centre" keep one (`centre_crop`), "each" keeps them all,
    giving features (N, C, d). Single-crop features are read as they are.
    """
    path = Path(path)
    if crops not in CROP_USES:
        raise GclvadError(f"crops must be one of {', '.join(CROP_USES)}, found {crops!r}")
    with open_store(path) as source:
        index = read_index(source, path)
        wanted = index["video"] if videos is None else _wanted(list(videos), index["video"], path)
        position = {video: i for i, video in enumerate(index["video"])}
        chosen = np.array([position[video] for video in wanted], dtype=np.int64)
        segments = index["segments"][chosen]
        offsets = np.concatenate([[0], np.cumsum(segments)]).astype(np.int64)
        attrs = attrs_of(source)
        first = features_of(source[VIDEOS][wanted[0]], path) if wanted else None
        row_shape = tuple(first.shape[1:]) if first is not None else (int(attrs.get("dim", 0)),)
        kept = row_shape if crops == "each" or len(row_shape) == 1 else row_shape[1:]
        if crops == "centre" and len(row_shape) == 2:
            centre_crop(row_shape[0], path)  # refuses counts without a centre crop, naming the file
        features = np.empty((int(offsets[-1]), *kept), dtype=np.float32)
        video_attrs = {}
        for i, video in enumerate(wanted):
            group = source[VIDEOS].get(video)
            if group is None:
                raise GclvadError(f"{path}: the index names video {video} but /{VIDEOS}/{video} is missing")
            dataset = features_of(group, path)
            if dataset.shape != (segments[i], *row_shape):
                raise GclvadError(
                    f"{path}: /{VIDEOS}/{video}/{FEATURES} has shape {dataset.shape}, "
                    f"the index and the first video say {(segments[i], *row_shape)}"
                )
            rows = np.s_[offsets[i] : offsets[i + 1]]
            if segments[i]:
                _read_rows(dataset, features, rows, crops)
                reject_non_finite(features[rows], path, f"features of video {video}")
            video_attrs[video] = attrs_of(group)
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
    """The crop kept by "first" (0) or "centre" (`centre_crop`) among `count`."""
    return 0 if crops == "first" else centre_crop(count)


def centre_crop(crops: int, source: str | Path | None = None) -> int:
    """Index of the centre crop among `crops`: torchvision's FiveCrop/TenCrop order (four corners,
    centre, then the flipped ones; the published RTFM features follow it) for 5 or 10, the
    middle one for 1 or 3 (gclvad's three crops: left, centre, right). Other counts (the six
    tiles of crop mode "tiles") have no centre crop: refused, naming `source` if given."""
    if crops in (5, 10):
        return 4
    if crops in (1, 3):
        return crops // 2
    problem = f"features of {crops} crops a segment (the tiles?) have no centre crop; use crop_use mean, each or first"
    raise GclvadError(f"{source}: {problem}" if source else problem)


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
