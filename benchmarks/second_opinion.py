"""A second opinion beside D (issue 18, point 3), measured on finished runs of the default for
unlabelled footage: D's and G's scores alone and fused, and a label-free density score on the
same features, alone and fused with the run's score.

For each dataset named (its default run: I3D three crops, crop_use each, GCL_PT~ensemble=3):
  * the run's delivered segment score (z-normalised seed ensemble), D's probability, G's error;
  * z(D) + z(G): each normalised (median, 1.4826 x MAD) on the scores of all scored segments
    (no labels: the pooled scores of every scored video);
  * kNN density: for every crop of every segment, the distance (of L2-normalised features) to
    its k-th nearest segment crop of the *other* videos of the dataset (so that a video's own
    repetitions do not hide its events), averaged over the segment's crops, normalised on every
    video's distances; alone and z-fused with the others.
Frame AUC after the run's smoothing (a Gaussian of 16 frames) and before it ("raw"). Labels are
used for the AUC only; nothing here is selected on them (k = 1 and 5 are both printed).

Usage: .venv/bin/python benchmarks/second_opinion.py walkway_alerts demo_seed1
(after `snakemake --cores 2 results/walkway_alerts/auc.json results/demo_seed1/auc.json
--configfile benchmarks/configs/alert_datasets.yaml`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from machine import describe  # benchmarks/ is on sys.path when run

from gclvad.evaluation.metrics import frame_auc
from gclvad.features.feature_set import load_feature_set
from gclvad.scoring.frames import gaussian_smooth, read_scores, segment_to_frame_scores
from gclvad.stages.data import frame_truths

REPO = Path(__file__).resolve().parents[1]
RUN = "i3d_three/GCL_PT~ensemble=3/seed0"
SEGMENT = 16
SIGMA = 16.0


def robust_z(values: np.ndarray, reference: np.ndarray) -> np.ndarray:
    middle = np.median(reference)
    return (values - middle) / (1.4826 * np.median(np.abs(reference - middle)))


def knn_distance(features: np.ndarray, owners: np.ndarray, k: int) -> np.ndarray:
    """(N,) mean over crops of each segment crop's distance to its k-th nearest crop of another video."""
    unit = features / np.linalg.norm(features, axis=-1, keepdims=True)
    rows, crops, dim = unit.shape
    bank, bank_owner = unit.reshape(-1, dim), np.repeat(owners, crops)
    out = np.zeros((rows, crops))
    for crop in range(crops):
        squared = np.maximum(2.0 - 2.0 * unit[:, crop] @ bank.T, 0.0)
        squared[owners[:, None] == bank_owner[None, :]] = np.inf
        out[:, crop] = np.sqrt(np.partition(squared, k - 1, axis=1)[:, k - 1])
    return out.mean(axis=1)


def measure(name: str) -> dict[str, float]:
    root = REPO / "results" / name
    scores = read_scores(root / RUN / "scores.h5")
    spec = {"format": "generic", "manifest": str(root / "videos/videos.csv"),
            "annotations": str(root / "videos/annotations.csv")}  # fmt: skip
    truths = frame_truths(spec, root / "segments.tsv", list(scores))
    evaluated = [video for video in scores if truths.get(video) is not None]
    features = load_feature_set(root / "features/i3d_three.h5", None, "each")
    segment = {video: {key: scores[video][key][::SEGMENT] for key in ("score_raw", "d", "g")} for video in scores}
    pooled = {key: np.concatenate([segment[video][key] for video in scores]) for key in segment[evaluated[0]]}
    owners = np.repeat(np.arange(len(features.videos)), features.segments)
    for k in (1, 5):
        distance = knn_distance(features.features.astype(np.float32), owners, k)
        pooled[f"knn{k}"] = distance  # every video's segments, the scored ones and the others
        for i, video in enumerate(features.videos):
            if video in segment:
                segment[video][f"knn{k}"] = distance[features.offsets[i] : features.offsets[i + 1]]

    def combined(keys):
        return {video: sum(robust_z(segment[video][key], pooled[key]) for key in keys) for video in scores}

    candidates = {key: {video: segment[video][key] for video in scores} for key in pooled}
    candidates["z(d)+z(g)"] = combined(["d", "g"])
    for k in (1, 5):
        candidates[f"run+knn{k}"] = combined(["score_raw", f"knn{k}"])
        candidates[f"z(d)+z(g)+knn{k}"] = combined(["d", "g", f"knn{k}"])
    result = {}
    for label, per_video in candidates.items():
        frames = {v: segment_to_frame_scores(per_video[v], len(truths[v]), SEGMENT) for v in evaluated}
        result[f"{label} raw"] = frame_auc(frames, truths)
        result[label] = frame_auc({v: gaussian_smooth(frames[v], SIGMA) for v in evaluated}, truths)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("datasets", nargs="+")
    args = parser.parse_args()
    print(describe())
    for name in args.datasets:
        print(name, json.dumps({key: round(value, 4) for key, value in measure(name).items()}), flush=True)


if __name__ == "__main__":
    main()
