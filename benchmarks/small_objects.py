"""Small objects at a resolution the network can see (issue 18, point 2): what the frame
upscaled 2x buys against the three crops of the default for unlabelled footage, and its cost.

Coverage modes of I3D (gclvad.decode.crops), each trained as the demo entry trains (crops used
`each`, GCL_PT seed ensemble of 3, preset `unlabelled`), with and without the second opinion
(`~density=1`), and a segment's crops combined by their mean (the default) or their maximum:
  * i3d_three:  three native-size crops along the long side of the frame (the default);
  * i3d_tiles:  a 2 x 3 grid of native-size tiles of the frame upscaled 2x;
  * i3d_motion: one native-size crop of the frame upscaled 2x, on the segment's largest change.

Prints, with the machine first:
  * frame AUC (delivered: smoothed; raw: before smoothing; the distance alone) from each run's
    auc.json, mean ± std over the ensemble seeds given, on the demo and the walkway benchmark;
  * --cost N: extraction seconds per video of N walkway test videos for each mode, measured
    side by side in this process (interleaved, best of --repeats), against three crops; and the
    network clips per camera-second each mode costs (crops x 25 / 16).

Usage:
  snakemake --cores 2 $(python benchmarks/small_objects.py --targets --seeds 0 1 2) \
    --configfile benchmarks/configs/alert_datasets.yaml benchmarks/configs/small_objects.yaml
  python benchmarks/small_objects.py --seeds 0 1 2 [--cost 2]
Labels are used for the AUC only; nothing here is selected on them.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from camera_second import test_videos  # benchmarks/ is on sys.path when run
from machine import describe

from gclvad.decode.crops import crop_count

REPO = Path(__file__).resolve().parents[1]
DATASETS = {"demo": "demo", "walkway": "walkway_alerts"}
MODES = {"i3d_three": "three", "i3d_tiles": "tiles", "i3d_motion": "motion"}
ENSEMBLE = "GCL_PT~ensemble=3"
VARIANTS = {
    "ensemble": ENSEMBLE,
    "+ density": f"{ENSEMBLE}~density=1",
    "+ density, crops max": f"{ENSEMBLE}~density=1~postprocess.crop_reduce=max",
    "crops max": f"{ENSEMBLE}~postprocess.crop_reduce=max",
}
ONE_CROP = ("i3d_motion",)  # nothing to combine: the crops-max rows would repeat the mean ones


def runs(seeds: list[int]):
    """(benchmark, extractor, row name, run folder) of every run the table reads."""
    for benchmark, dataset in DATASETS.items():
        for extractor in MODES:
            for row, variant in VARIANTS.items():
                if extractor in ONE_CROP and "max" in row:
                    continue
                for seed in seeds:
                    yield benchmark, extractor, row, REPO / "results" / dataset / extractor / variant / f"seed{seed}"


def print_table(seeds: list[int]) -> None:
    found: dict[tuple, list[dict]] = {}
    for benchmark, extractor, row, folder in runs(seeds):
        path = folder / "auc.json"
        if path.is_file():
            found.setdefault((extractor, row, benchmark), []).append(json.loads(path.read_text()))
    print(f"\nframe AUC, mean ± std over ensemble seeds {seeds} (runs found), raw in brackets; density alone last")
    print(f"| crops | score | {' | '.join(DATASETS)} |")
    print(f"| --- | --- | {' | '.join('---' for _ in DATASETS)} |")
    for extractor in MODES:
        for row in VARIANTS:
            cells = []
            for benchmark in DATASETS:
                records = found.get((extractor, row, benchmark), [])
                if not records:
                    cells.append("-")
                    continue
                auc, raw = (np.array([r[key] for r in records]) for key in ("auc", "auc_raw"))
                cell = f"{auc.mean():.4f} ± {auc.std():.4f} ({raw.mean():.4f}) n={len(records)}"
                if "auc_density" in records[0]:
                    cell += f"; density {np.mean([r['auc_density'] for r in records]):.4f}"
                cells.append(cell)
            if any(cell != "-" for cell in cells):
                print(f"| {extractor} | {row} | {' | '.join(cells)} |")


def print_cost(videos: int, repeats: int) -> None:
    """Seconds per video of every mode's extraction, interleaved on the same videos."""
    from gclvad.extract.networks.base import RandomWeightsWarning
    from gclvad.extract.networks.registry import build_extractor
    from gclvad.extract.one_video import compute_features

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RandomWeightsWarning)
        extractors = {name: build_extractor("i3d", "package", "cpu", "fp32", mode) for name, mode in MODES.items()}
    files = test_videos(DATASETS["walkway"], videos)
    compute_features(extractors["i3d_three"], files[0], batch_size=4)  # warm-up: first kernel calls
    best = {name: np.inf for name in MODES}
    for _ in range(repeats):
        for name, extractor in extractors.items():
            started = time.perf_counter()
            for video in files:
                compute_features(extractor, video, batch_size=4)
            best[name] = min(best[name], (time.perf_counter() - started) / len(files))
    print(f"\nextraction of {len(files)} walkway test videos (240 frames of 320x240), best of {repeats}, "
          f"{torch.get_num_threads()} threads")  # fmt: skip
    print("| crops | clips per camera-second (25 fps) | s per video | cost against three crops |")
    print("| --- | --- | --- | --- |")
    for name, mode in MODES.items():
        clips = crop_count(mode) * 25 / 16
        print(f"| {name} | {clips:.2f} | {best[name]:.2f} | {best[name] / best['i3d_three']:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--targets", action="store_true", help="print the workflow targets and stop")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--cost", type=int, default=0, metavar="N", help="time extraction of N walkway test videos")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    if args.targets:
        print(" ".join(str((folder / "auc.json").relative_to(REPO)) for *_, folder in runs(args.seeds)))
        return
    print(f"machine: {describe()}")
    print_table(args.seeds)
    if args.cost:
        print_cost(args.cost, args.repeats)


if __name__ == "__main__":
    main()
