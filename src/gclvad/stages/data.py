"""What the workflow's stages read from a dataset's segment index and feature file: which
videos train and which are scored, their features, frame truths and video labels."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from gclvad.datasets.readers import load_dataset
from gclvad.datasets.segment_index import read_segment_index, split_videos
from gclvad.features.feature_set import FeatureSet, load_feature_set
from gclvad.features.files import read_extraction_precision, stored_videos

log = logging.getLogger(__name__)


def read_json(path: str | Path) -> dict:
    return json.loads(Path(path).read_text())


def run_videos(features_path, index_path, train_on) -> tuple[list[str], list[str]]:
    """(training, scored) videos of the index that have features: a video found bad while it
    was extracted has none (its reason is in the extraction's log and manifest)."""
    train_ids, scored = split_videos(read_segment_index(index_path), train_on)
    stored = set(stored_videos(features_path))
    missing = sorted(set(train_ids + scored) - stored)
    if missing:
        log.warning(
            "%d usable videos of the index have no features (bad when extracted): %s",
            len(missing),
            ", ".join(missing[:10]),
        )
    return [v for v in train_ids if v in stored], [v for v in scored if v in stored]


def training_feature_set(features_path, index_path, train_on, crops: str) -> FeatureSet:
    """The FeatureSet of the dataset's training videos, crops used as `crops` says."""
    train_ids, _ = run_videos(features_path, index_path, train_on)
    return load_feature_set(features_path, train_ids, crops)


def frame_truths(spec: Mapping, index_path: str | Path, videos: Sequence[str]) -> dict:
    """Frame ground truth (bool array, or None where unknown) of `videos`."""
    frames = read_segment_index(index_path).set_index("video")["frames"]
    by_id = {video.id: video for video in load_dataset(dict(spec))}
    return {v: by_id[v].truth(int(frames[v])) for v in videos}


def video_labels(spec: Mapping, videos: Sequence[str]) -> np.ndarray:
    """Video-level labels (1, 0, -1 unknown) of `videos`: only OCC and weakly supervised stages ask."""
    labels = {video.id: video.label for video in load_dataset(dict(spec))}
    return np.array([-1 if labels.get(v) is None else int(labels[v]) for v in videos])


def anomalous_rows(feature_set: FeatureSet, truths: Mapping) -> np.ndarray:
    """(N,) per segment row: 1 when at least half its frames are anomalous, 0 when fewer, -1
    when its video's frame labels are unknown."""
    length, stride = feature_set.window_frames()
    out = np.full(len(feature_set.features), -1, dtype=np.int8)
    for i, video in enumerate(feature_set.videos):
        truth = truths.get(video)
        if truth is None:
            continue
        for row in range(feature_set.offsets[i], feature_set.offsets[i + 1]):
            start = (row - feature_set.offsets[i]) * stride
            window = truth[start : start + length]  # a padded tail's window holds fewer frames
            out[row] = int(window.size > 0 and window.mean() >= 0.5)
    return out


def record_precision_used(stored: dict, features_path: str | Path) -> None:
    """The run's extractor entry with the precision its features were extracted in, which
    scoring rebuilds (the config may say `auto`, resolved by each extraction job's machine)."""
    precision = read_extraction_precision(features_path)
    if precision is not None and isinstance(stored.get("extractor"), dict):
        stored["extractor"] = {**stored["extractor"], "precision": precision}
