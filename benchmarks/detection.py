"""Detection beyond the paper on unlabelled footage (issue 10): the levers on the walkway benchmark.

    .venv/bin/python benchmarks/detection.py --benchmark walkway4 [--steps generate extract train table]
    .venv/bin/python benchmarks/detection.py --benchmark walkway1 ...

Two benchmarks, both gclvad.datasets.synthetic.walkway with seed 0, 16 train + 16 test videos of 240
frames at 320x240, ~10 % / ~35 % anomalous train / test frames: `walkway4` filmed from 4 camera
positions (a site with several cameras), `walkway1` from one (like a single walkway camera).
Work goes to results/benchmarks/detection/<benchmark> (--work to change it).
1. generate: the benchmark's videos;
2. extract: I3D (package weights, fp32, CPU) features per crop and window
   (benchmarks/detection_features.py): three crops at stride 8 (holds the centre crop and the
   stride-16 segments) and ten crops at stride 16; cached per video, so a rerun skips it;
3. train: every configuration of benchmarks/detection_levers.py for its seeds, each run's
   per-row scores cached (a rerun trains only what is missing);
4. table: frame AUC (test split, all frames concatenated) of every configuration with and
   without smoothing, mean +- std over seeds, seed ensembles, and the TD enrichment.
Training uses ALL videos (train and test split) as unlabelled footage, as a practitioner would;
labels are read only to evaluate. Prints the machine first.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from machine import describe

_WALKWAY = {"seed": 0, "n_train": 16, "n_test": 16, "frames": 240}
BENCHMARKS = {"walkway4": {**_WALKWAY, "scenes": 4}, "walkway1": {**_WALKWAY, "scenes": 1}}
STEPS = ("generate", "extract", "train", "table")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--benchmark", choices=sorted(BENCHMARKS), default="walkway4")
    parser.add_argument("--work", type=Path, default=None, help="default results/benchmarks/detection/<benchmark>")
    parser.add_argument("--steps", nargs="+", choices=STEPS, default=list(STEPS))
    parser.add_argument("--modes", nargs="+", default=["three_s8", "ten_s16"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--only", nargs="*", default=None, help="train only these configurations")
    args = parser.parse_args()
    args.work = args.work or Path("results/benchmarks/detection") / args.benchmark
    torch.set_num_threads(args.threads)
    print(f"machine: {describe()} (shared with other sessions)", flush=True)
    manifest = args.work / "videos" / "videos.csv"
    started = time.perf_counter()
    if "generate" in args.steps and not manifest.exists():
        from gclvad.datasets.readers import generate_synthetic

        generate_synthetic(manifest.parent, kind="walkway", **BENCHMARKS[args.benchmark])
        print(f"generated {manifest} in {time.perf_counter() - started:.0f} s", flush=True)
    if "extract" in args.steps:
        from detection_features import extract_dataset

        extract_dataset(manifest, args.work / "features", args.modes, log=lambda line: print(line, flush=True))
    if "train" in args.steps:
        from detection_levers import train_all

        train_all(args.work, manifest, only=args.only)
    if "table" in args.steps:
        from detection_levers import print_tables

        print_tables(args.work, manifest)
    print(f"total {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
