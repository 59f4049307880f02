"""The common shape every dataset reader returns: a list of `Video`s, and what a video id may be."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gclvad.errors import BadDatasetError

TRAIN, TEST = "train", "test"

# A video id names files and folders of the results (features/<extractor>/<id>.h5, logs, ...)
# and is the workflow's {video} wildcard: letters, digits, "_", "-" and "." only, not
# starting with "." (no hidden files, no "." or ".."), so no id can reach outside its folder.
VIDEO_ID_PATTERN = r"[A-Za-z0-9_\-][A-Za-z0-9_.\-]*"
VIDEO_ID_RULE = "letters, digits, '_', '-' and '.' only, not starting with '.'"


def video_id_problem(video_id: str) -> str:
    """Why `video_id` cannot be a video id ("" when it can)."""
    if not video_id:
        return "empty video id"
    if re.fullmatch(VIDEO_ID_PATTERN, video_id) is None:
        return f"video id {video_id!r} is not allowed: ids name result files, so they hold {VIDEO_ID_RULE}"
    return ""


@dataclass(frozen=True)
class Intervals:
    """Anomalous frames as half-open spans [start, end), 0-based."""

    spans: tuple[tuple[int, int], ...]
    source: Path | None = None  # the annotation file, named in error messages

    def mask(self, n_frames: int) -> np.ndarray:
        """Boolean per-frame ground truth for a video of `n_frames` decoded frames."""
        truth = np.zeros(n_frames, dtype=bool)
        for start, end in self.spans:
            if start < 0 or end > n_frames or start >= end:
                raise BadDatasetError(
                    self.source or "annotation",
                    f"interval [{start}, {end}) lies outside the video's {n_frames} frames",
                )
            truth[start:end] = True
        return truth


@dataclass(frozen=True)
class FrameMask:
    """Anomalous frames given as a stored 0/1 array, one entry per frame (ShanghaiTech).

    pad_to: for features that cover whole segments of this many frames (published
    features), a mask of a video's original frames is padded with its last value up to the
    next multiple; 0: the mask must have exactly one entry per frame."""

    path: Path
    pad_to: int = 0

    def mask(self, n_frames: int) -> np.ndarray:
        values = np.load(self.path, allow_pickle=False).reshape(-1).astype(bool)
        short = n_frames - len(values)
        if 0 < short < self.pad_to:
            return np.concatenate([values, np.full(short, values[-1])])
        if short != 0:
            padding = f" (padded up to {self.pad_to - 1} frames)" if self.pad_to else ""
            raise BadDatasetError(
                self.path, f"frame mask has {len(values)} entries but the video has {n_frames} frames{padding}"
            )
        return values


@dataclass(frozen=True)
class Video:
    """One video of a dataset, as every reader describes it.

    split: "train", "test", or None for unlabelled footage with no split, which is both
        trained on and scored (a practitioner's own videos).
    label: video-level label, 1 anomalous, 0 normal, None unknown. Only the OCC and
        weakly-supervised variants may read it for training.
    annotation: frame-level ground truth of a test video (Intervals or FrameMask); None
        means unknown, except for a test video of a labelled dataset whose label is 0,
        which is all-normal.
    listed_at: where the dataset lists the video ("videos.csv line 4"), for messages.
    problem: why the reader found the video unusable ("" when it did not), e.g. a listed
        file that does not exist; the segment index reports it as a bad video, like one
        that does not decode, so that one run lists every problem.
    kind, parts: a video of published features (the `features` format) has no frames to
        decode: its source is its (first) .npy file, parts all its files.
    """

    id: str
    source: Path
    split: str | None = None
    label: int | None = None
    annotation: Intervals | FrameMask | None = None
    listed_at: str = ""
    problem: str = ""
    kind: str = "video"  # "video": source decodes to frames; "features": published features (.npy)
    parts: tuple[Path, ...] = ()  # "features": every file of the video (one, or one per crop)

    def truth(self, n_frames: int) -> np.ndarray | None:
        """Per-frame ground truth, or None where the dataset has none for this video."""
        if self.annotation is not None:
            return self.annotation.mask(n_frames)
        if self.label == 0:
            return np.zeros(n_frames, dtype=bool)
        return None


def is_trained(split: str | None, train_on: Iterable[str] = (TRAIN,)) -> bool:
    """Whether a video of `split` feeds training: the splits in `train_on`, and unsplit
    footage (split None), which is both trained on and scored."""
    return split is None or split in set(train_on)


def is_scored(split: str | None) -> bool:
    """Whether a video of `split` gets frame scores: the test split, and unsplit footage."""
    return split is None or split == TEST


def training_videos(videos: Iterable[Video], train_on: Iterable[str] = (TRAIN,)) -> list[Video]:
    """Videos that feed training (`is_trained`)."""
    return [v for v in videos if is_trained(v.split, train_on)]


def scored_videos(videos: Iterable[Video]) -> list[Video]:
    """Videos that get frame scores (`is_scored`)."""
    return [v for v in videos if is_scored(v.split)]
