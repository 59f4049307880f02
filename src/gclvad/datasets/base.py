"""The common shape every dataset reader returns: a list of `Video`s."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from gclvad.errors import BadDatasetError

TRAIN, TEST = "train", "test"


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
    """Anomalous frames given as a stored 0/1 array, one entry per frame (ShanghaiTech)."""

    path: Path

    def mask(self, n_frames: int) -> np.ndarray:
        values = np.load(self.path, allow_pickle=False).reshape(-1)
        if len(values) != n_frames:
            raise BadDatasetError(
                self.path, f"frame mask has {len(values)} entries but the video has {n_frames} frames"
            )
        return values.astype(bool)


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
    """

    id: str
    source: Path
    split: str | None = None
    label: int | None = None
    annotation: Intervals | FrameMask | None = None

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
