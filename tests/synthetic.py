"""Synthetic segment features with a planted anomaly structure, for GCL's tests.

What is planted, mirroring the premises of the GCL paper:
* Normal footage: a few dominant "scenes" (Gaussian clusters). Each video shows one
  scene; its features drift slowly around the scene's centre along a few scene-specific
  directions, plus small isotropic noise. Consecutive segments are close.
* Anomalies: in about half of the videos one temporally contiguous run of segments is
  anomalous. Anomalous features come from one recurring anomaly type (configurable) shared across videos (so
  an autoencoder trained on all data sees each type often and learns to reconstruct it,
  as the paper argues for AE_AllData) and are "eventful": they jump along the type's own
  directions from one segment to the next, so temporal-difference cleaning removes most
  of them. About 5-10 % of all segments are anomalous.
Every segment's feature has the same norm before noise, so no variant can find the
anomalies by magnitude alone. Features are values of order 1, like pooled CNN activations.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class SyntheticSet:
    features: np.ndarray  # (N, d) float32
    video: np.ndarray  # (N,) video index
    position: np.ndarray  # (N,) segment index within its video
    video_label: np.ndarray  # (V,) 1 anomalous, 0 normal
    segment_truth: np.ndarray  # (N,) bool, True for planted anomalous segments
    frames: np.ndarray  # (V,) frame count; the last segment of a video is padded
    segment_length: int

    def frame_truths(self) -> dict[int, np.ndarray]:
        """Per video, the frame-level ground truth implied by the segment truth."""
        out = {}
        for v in range(len(self.video_label)):
            rows = np.flatnonzero(self.video == v)
            rows = rows[np.argsort(self.position[rows])]
            out[v] = np.repeat(self.segment_truth[rows], self.segment_length)[: self.frames[v]]
        return out

    def video_segment_scores(self, scores: np.ndarray) -> dict[int, np.ndarray]:
        """Split per-row scores into per-video arrays in temporal order."""
        out = {}
        for v in range(len(self.video_label)):
            rows = np.flatnonzero(self.video == v)
            out[v] = scores[rows[np.argsort(self.position[rows])]]
        return out


@dataclass(frozen=True)
class World:
    """The fixed scenes and anomaly types; train and test sets are drawn from the same world."""

    scene_centres: np.ndarray  # (K, d)
    scene_directions: np.ndarray  # (K, r, d)
    anomaly_centres: np.ndarray  # (J, d)
    anomaly_directions: np.ndarray  # (J, r, d)


def make_world(
    dim: int = 64, scenes: int = 4, anomaly_types: int = 1, rank: int = 3, anomaly_rank: int = 3, seed: int = 0
) -> World:
    rng = np.random.default_rng(seed)
    return World(
        scene_centres=rng.uniform(0.0, 1.0, (scenes, dim)),
        scene_directions=rng.normal(0.0, 1.0 / np.sqrt(dim), (scenes, rank, dim)),
        anomaly_centres=rng.uniform(0.0, 1.0, (anomaly_types, dim)),
        anomaly_directions=rng.normal(0.0, 1.0 / np.sqrt(dim), (anomaly_types, anomaly_rank, dim)),
    )


def make_videos(
    world: World,
    videos: int = 60,
    segments: tuple[int, int] = (30, 50),
    anomalous_video_fraction: float = 0.5,
    anomaly_run: tuple[float, float] = (0.10, 0.25),
    drift: float = 0.6,
    jump: float = 3.0,
    noise: float = 0.05,
    segment_length: int = 16,
    seed: int = 1,
) -> SyntheticSet:
    """Draw `videos` videos from `world` (see module docstring for the planted structure)."""
    rng = np.random.default_rng(seed)
    dim = world.scene_centres.shape[1]
    rank = world.scene_directions.shape[1]
    anomaly_rank = world.anomaly_directions.shape[1]
    scale = float(np.linalg.norm(world.scene_centres, axis=1).mean())
    rows, video_ids, positions, truths, labels, frames = [], [], [], [], [], []
    for v in range(videos):
        n = int(rng.integers(segments[0], segments[1] + 1))
        scene = int(rng.integers(len(world.scene_centres)))
        # slow drift: an AR(1) walk in the scene's own directions
        coefficients = np.zeros((n, rank))
        state = rng.normal(0, drift, rank)
        for t in range(n):
            state = 0.9 * state + rng.normal(0, drift * np.sqrt(1 - 0.81), rank)
            coefficients[t] = state
        feats = world.scene_centres[scene] + coefficients @ world.scene_directions[scene]
        truth = np.zeros(n, dtype=bool)
        anomalous = rng.random() < anomalous_video_fraction
        if anomalous:
            length = max(2, round(n * rng.uniform(*anomaly_run)))
            start = int(rng.integers(1, n - length))
            kind = int(rng.integers(len(world.anomaly_centres)))
            jumps = rng.normal(0, jump, (length, anomaly_rank))  # independent per segment: eventful
            feats[start : start + length] = world.anomaly_centres[kind] + jumps @ world.anomaly_directions[kind]
            truth[start : start + length] = True
        # Every row gets the same norm (that of an average scene centre): the planted
        # anomalies must be found by their direction, not by a larger magnitude.
        feats = feats * (scale / np.linalg.norm(feats, axis=1, keepdims=True))
        feats = feats + rng.normal(0, noise, (n, dim))
        rows.append(feats)
        video_ids.append(np.full(n, v))
        positions.append(np.arange(n))
        truths.append(truth)
        labels.append(int(anomalous))
        frames.append(n * segment_length - int(rng.integers(0, segment_length)))  # padded last segment
    return SyntheticSet(
        features=np.concatenate(rows).astype(np.float32),
        video=np.concatenate(video_ids).astype(np.int64),
        position=np.concatenate(positions).astype(np.int64),
        video_label=np.asarray(labels, dtype=np.int64),
        segment_truth=np.concatenate(truths),
        frames=np.asarray(frames, dtype=np.int64),
        segment_length=segment_length,
    )


def make_train_test(
    dim: int = 64, train_videos: int = 40, test_videos: int = 30, seed: int = 0, world: dict | None = None, **kwargs
):
    """A world (make_world arguments in `world`) and independent train and test sets drawn from it."""
    world = make_world(dim=dim, seed=seed, **(world or {}))
    train = make_videos(world, videos=train_videos, seed=seed + 1000, **kwargs)
    test = make_videos(world, videos=test_videos, seed=seed + 2000, **kwargs)
    return train, test
