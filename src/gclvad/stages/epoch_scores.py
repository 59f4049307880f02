"""Segment scores of the scored videos after every training epoch: a diagnostic, never a selector.

The final training stage records, after each epoch, its networks' segment scores of the
videos it will be evaluated on; evaluation turns them into a test-AUC-per-epoch curve
(`diagnostic_curve`). Nothing picks an epoch, a model or a threshold from it: the reported
AUC is always the final model's.

File (npz): videos (V,), offsets (V+1,) into the rows, labels (E,) "stage:epoch",
scores (E, rows) float32. While a stage trains it is kept beside the stage's checkpoint
(a killed job's outputs are deleted by Snakemake, its checkpoint is not) and rewritten
after every epoch, so a resumed stage keeps the epochs it had.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from gclvad.atomic import write_atomic
from gclvad.evaluation.metrics import frame_auc
from gclvad.features.feature_set import FeatureSet
from gclvad.scoring.frames import to_frames
from gclvad.scoring.scorer import segment_scores


def progress_path(checkpoint_path: str | Path) -> Path:
    """Where the per-epoch scores are kept while a stage trains: beside its checkpoint."""
    return Path(f"{checkpoint_path}.epoch_scores.npz")


class EpochScoreRecorder:
    """An `on_epoch_end` callback of `gcl.train.train`: scores `features` after each epoch and
    keeps the scores at `path` (saved every epoch; loaded back when resuming)."""

    def __init__(self, features: FeatureSet, path: str | Path, resume: bool):
        self.features = features
        self.path = Path(path)
        self.labels: list[str] = []
        self.scores: list[np.ndarray] = []
        if resume and self.path.exists():
            saved = read_epoch_scores(self.path)
            self.labels, self.scores = list(saved["labels"]), list(saved["scores"])

    def __call__(self, stage: str, epoch: int, models) -> None:
        label = f"{stage}:{epoch}"
        if label in self.labels:  # a resumed run replays the epochs since its last checkpoint
            replayed = self.labels.index(label)
            del self.scores[replayed:], self.labels[replayed:]
        self.labels.append(label)
        self.scores.append(segment_scores(models, self.features)["score"])
        self.save(self.path)

    def save(self, path: str | Path) -> None:
        write_epoch_scores(path, self.features, self.labels, self.scores)


def write_epoch_scores(path: str | Path, features: FeatureSet, labels: list[str], scores: list[np.ndarray]) -> None:
    rows = len(features.features)  # segment rows, whatever the crops

    def write(temporary: Path) -> None:
        with open(temporary, "wb") as out:  # np.savez would append .npz to a path
            np.savez(
                out,
                videos=np.array(features.videos),
                offsets=features.offsets,
                labels=np.array(labels, dtype=str),
                scores=np.array(scores, dtype=np.float32).reshape(len(scores), rows),
            )

    write_atomic(path, write)


def read_epoch_scores(path: str | Path) -> dict:
    with np.load(path) as saved:
        return {
            "videos": [str(v) for v in saved["videos"]],
            "offsets": saved["offsets"],
            "labels": [str(label) for label in saved["labels"]],
            "scores": saved["scores"],
        }


def diagnostic_curve(
    path: str | Path, truths: Mapping, frames: Mapping[str, int], segment_length: int, stride: int | None = None
) -> pd.DataFrame:
    """Test AUC after every epoch (diagnostic only: nothing is selected with it)."""
    saved = read_epoch_scores(path)
    videos, offsets = saved["videos"], saved["offsets"]
    rows = []
    for label, values in zip(saved["labels"], saved["scores"], strict=True):
        stage, epoch = label.split(":")
        frame_scores = {
            video: to_frames(
                values[offsets[i] : offsets[i + 1]], int(frames[video]), segment_length, stride or segment_length
            )
            for i, video in enumerate(videos)
            if truths.get(video) is not None
        }
        auc = frame_auc(frame_scores, truths) if frame_scores else float("nan")
        rows.append({"stage": stage, "epoch": int(epoch), "diagnostic_test_auc": auc})
    return pd.DataFrame(rows, columns=["stage", "epoch", "diagnostic_test_auc"])
