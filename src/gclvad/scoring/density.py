"""A label-free second opinion beside the networks: how far a segment lies from the training
segments of the other videos (issue 18, point 3; not in the paper).

Every crop of a segment is compared (L2-normalised features, Euclidean distance) with the
bank: the crops of the run's training segments. Its score is the distance to its k-th nearest
bank crop of *another* video (a video's own frames, when it is a training video, would hide
its events: an event that lasts several segments is its own nearest neighbour), averaged over
the segment's crops. Footage that is not among the training videos (new videos, a camera) is
compared with the whole bank. A bank larger than `BANK_ROWS` crops keeps every n-th one, so
that the file and a segment's cost stay bounded (PatchCore does the same with a coreset).

Pure numpy; an ensemble's file (gclvad.scoring.scorer) stores the bank as a tensor.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gclvad.errors import GclvadError
from gclvad.features.feature_set import FeatureSet

BANK_ROWS = 16384  # at most this many crops in a bank: 64 MiB of 1024-d float32 features
QUERY_ROWS = 256  # crops compared with the bank at a time: bounded memory for any bank


@dataclass
class DensityScorer:
    bank: np.ndarray  # (R, d) float32 L2-normalised training crops
    owners: np.ndarray  # (R,) int: index into `videos` of each bank crop's video
    videos: list[str]  # the training videos
    k: int  # the k-th nearest bank crop of another video gives the distance

    def __post_init__(self) -> None:
        self.bank = np.ascontiguousarray(self.bank, dtype=np.float32)
        self.owners = np.asarray(self.owners, dtype=np.int64)
        self.videos = list(self.videos)
        if self.bank.ndim != 2 or len(self.owners) != len(self.bank):
            raise GclvadError(f"a density bank needs (rows, dim) crops and one owner each; found {self.bank.shape}")
        if self.k < 1 or self.k > len(self.bank):
            raise GclvadError(f"density: k must be between 1 and the bank's {len(self.bank)} crops, found {self.k}")

    @property
    def dim(self) -> int:
        return self.bank.shape[1]

    def distances(self, feature_set: FeatureSet) -> np.ndarray:
        """(N,) each segment row's distance (its crops' mean) to the bank, its own video's crops excluded."""
        features = feature_set.features
        rows = features.reshape(len(features), -1, features.shape[-1])
        if rows.shape[-1] != self.dim:
            raise GclvadError(f"density: the bank holds {self.dim}-d features, the scored ones are {rows.shape[-1]}-d")
        own_video = {video: i for i, video in enumerate(self.videos)}
        out = np.empty(len(rows), np.float64)
        for v, video in enumerate(feature_set.videos):
            segment_rows = slice(feature_set.offsets[v], feature_set.offsets[v + 1])
            others = self.owners != own_video.get(video, -1)
            crops = rows[segment_rows]
            distance = self._kth_distance(unit_rows(crops.reshape(-1, self.dim)), self.bank[others])
            out[segment_rows] = distance.reshape(len(crops), -1).mean(axis=1)
        return out

    def _kth_distance(self, queries: np.ndarray, bank: np.ndarray) -> np.ndarray:
        if len(bank) < self.k:
            raise GclvadError(f"density: only {len(bank)} bank crops of other videos, fewer than k = {self.k}")
        out = np.empty(len(queries), np.float64)
        for start in range(0, len(queries), QUERY_ROWS):
            part = queries[start : start + QUERY_ROWS]
            # |a - b|^2 = 2 - 2 a.b for unit rows; in float64 so that the row count of a call
            # (a camera's single segment, a whole video) cannot change a distance's last bits
            squared = np.maximum(2.0 - 2.0 * (part.astype(np.float64) @ bank.T.astype(np.float64)), 0.0)
            out[start : start + len(part)] = np.sqrt(np.partition(squared, self.k - 1, axis=1)[:, self.k - 1])
        return out

    def to_stored(self) -> dict:
        """Plain values (the bank an array, which a torch file stores as a tensor)."""
        return {"k": self.k, "videos": self.videos, "owners": self.owners.tolist(), "bank": self.bank}

    @classmethod
    def from_stored(cls, stored: dict) -> DensityScorer:
        return cls(np.asarray(stored["bank"]), np.asarray(stored["owners"]), list(stored["videos"]), int(stored["k"]))


def unit_rows(features: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1 (a zero row stays zero)."""
    features = np.asarray(features, np.float32)
    norms = np.linalg.norm(features, axis=-1, keepdims=True)
    return features / np.where(norms > 0, norms, 1.0)


def density_scorer(training: FeatureSet, k: int, max_rows: int = BANK_ROWS) -> DensityScorer:
    """The DensityScorer of a run's training segments: every crop, or every n-th when there are
    more than `max_rows`."""
    features = training.features
    crops = 1 if features.ndim == 2 else features.shape[1]
    bank = unit_rows(features.reshape(-1, features.shape[-1]))
    owners = np.repeat(np.repeat(np.arange(len(training.videos)), training.segments), crops)
    step = -(-len(bank) // max_rows)  # ceil: the smallest step that keeps at most max_rows
    return DensityScorer(bank[::step], owners[::step], training.videos, k)
