"""A second opinion beside D (issue 18, point 3), measured on finished runs of the default for
unlabelled footage (I3D three crops, crop_use each, GCL_PT~ensemble=3, preset unlabelled):

  * "run": the delivered score of `GCL_PT~ensemble=3` (its members' z-scores averaged);
  * "D", "G": the members' mean D probability and G error;
  * "z(D)+z(G)": D and G each normalised (median, 1.4826 x MAD) on the pooled scores of every
    scored video (no labels), then added;
  * "density": the distance of a segment to the training segments of other videos
    (gclvad.scoring.density, k = 1), as `GCL_PT~ensemble=3~density=1` computes it;
  * "run+density": that run's delivered score (the two z-fused on their training scores).

Frame AUC before smoothing ("raw") and after the run's own smoothing (preset unlabelled: a
Gaussian of 16 frames), per ensemble seed, and mean ± std over the seeds given. Labels are
used for the AUC only; nothing here is selected on them.

Usage:
  snakemake --cores 2 $(python benchmarks/second_opinion.py --targets demo walkway_alerts) \
    --configfile benchmarks/configs/alert_datasets.yaml
  python benchmarks/second_opinion.py demo walkway_alerts [--seeds 0 1 2] [--extractor i3d_three]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from machine import describe  # benchmarks/ is on sys.path when run

from gclvad.evaluation.metrics import frame_auc
from gclvad.scoring.frames import gaussian_smooth, read_scores
from gclvad.stages.data import frame_truths

REPO = Path(__file__).resolve().parents[1]
ENSEMBLE = "GCL_PT~ensemble=3"
WITH_DENSITY = "GCL_PT~ensemble=3~density=1"


def robust_z(values: np.ndarray, reference: np.ndarray) -> np.ndarray:
    middle = np.median(reference)
    return (values - middle) / (1.4826 * np.median(np.abs(reference - middle)))


def targets(datasets: list[str], extractor: str, seeds: list[int]) -> list[str]:
    return [
        f"results/{name}/{extractor}/{variant}/seed{seed}/auc.json"
        for name in datasets
        for variant in (ENSEMBLE, WITH_DENSITY)
        for seed in seeds
    ]


def measure(name: str, extractor: str, seed: int) -> dict[str, float]:
    """Raw and smoothed frame AUC of every candidate score of one ensemble seed."""
    root = REPO / "results" / name / extractor
    plain = read_scores(root / ENSEMBLE / f"seed{seed}" / "scores.h5")
    fused = read_scores(root / WITH_DENSITY / f"seed{seed}" / "scores.h5")
    sigma = json.loads((root / ENSEMBLE / f"seed{seed}" / "postprocess.json").read_text())["postprocess"]
    sigma = float(sigma["smoothing_sigma"])
    spec = {"format": "generic", "manifest": str(REPO / "results" / name / "videos/videos.csv"),
            "annotations": str(REPO / "results" / name / "videos/annotations.csv")}  # fmt: skip
    truths = frame_truths(spec, REPO / "results" / name / "segments.tsv", list(plain))
    evaluated = [video for video in plain if truths.get(video) is not None]
    pooled = {key: np.concatenate([plain[v][key] for v in plain]) for key in ("d", "g")}
    candidates = {
        "run": {v: plain[v]["score_raw"] for v in evaluated},
        "D": {v: plain[v]["d"] for v in evaluated},
        "G": {v: plain[v]["g"] for v in evaluated},
        "z(D)+z(G)": {v: sum(robust_z(plain[v][n], pooled[n]) for n in ("d", "g")) for v in evaluated},
        "density": {v: fused[v]["density"] for v in evaluated},
        "run+density": {v: fused[v]["score_raw"] for v in evaluated},
    }
    result = {}
    for label, frames in candidates.items():
        result[f"{label} raw"] = frame_auc(frames, truths)
        result[label] = frame_auc({v: gaussian_smooth(frames[v], sigma) for v in evaluated}, truths)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("datasets", nargs="+")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--extractor", default="i3d_three")
    parser.add_argument("--targets", action="store_true", help="print the workflow targets and stop")
    args = parser.parse_args()
    if args.targets:
        print(" ".join(targets(args.datasets, args.extractor, args.seeds)))
        return
    print(describe())
    for name in args.datasets:
        runs = [measure(name, args.extractor, seed) for seed in args.seeds]
        print(f"{name} ({args.extractor}, ensemble seeds {' '.join(map(str, args.seeds))})")
        for key in runs[0]:
            values = np.array([run[key] for run in runs])
            print(f"  {key:18s} {values.mean():.4f} ± {values.std():.4f}   ({' '.join(f'{v:.4f}' for v in values)})")


if __name__ == "__main__":
    main()
