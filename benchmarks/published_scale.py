"""A full GCL_PT run on a UCF-Crime-sized set of published features, through the workflow.

Writes a synthetic feature set in the RTFM layout at UCF-Crime's size (1,900 videos, 1,610
train / 290 test, about 800,000 rows of 2048-d float16 features, one (T, d) .npy file per
video, a gt array of frame labels), declares it as a `features` dataset and runs
`snakemake results/ucf_scale/auc.json`: indexing (reads every file once, checking values),
linking (no copy), TD cleaning, G and D pre-training, the GCL loop, scoring and evaluation,
with the paper's settings (batch 8192, 15 + 5 + 15 epochs) in bf16. Prints the wall time of
every rule and its peak RSS (from Snakemake's benchmark files), and the total. `--epochs G D L`
runs a shorter schedule (on 2 CPU cores the paper's takes hours); the time of each training
rule is then also given per epoch, and the paper schedule's time from those per-epoch times
is printed as what it is: an estimate.

The features have the planted structure of tests/synthetic.py in a cheap form: per video a
scene centre plus a slow drift, and in half of the videos a run of "eventful" anomalous rows
along directions of their own, so the run has something to find (its AUC is printed, but
it measures nothing real).

    .venv/bin/python benchmarks/published_scale.py [--videos 1900] [--rows 800000] [--work /tmp/ucf_scale]
"""

from __future__ import annotations

import argparse
import csv
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import yaml
from machine import describe

REPO = Path(__file__).resolve().parents[1]
SEGMENT = 16
DIM = 2048
PAPER_EPOCHS = (15, 5, 15)  # G's pre-training, D's pre-training, the GCL loop
STAGE_EPOCHS = {"pretrain_g": 0, "pretrain_d": 1, "gcl_loop": 2}  # training rule -> its epochs above


def write_features(root: Path, videos: int, rows: int, seed: int = 0) -> dict:
    """The feature files, lists and gt array; returns the dataset entry."""
    rng = np.random.default_rng(seed)
    folder = root / "UCF_ten_crop_i3d"
    folder.mkdir(parents=True, exist_ok=True)
    scenes = rng.uniform(0, 1, (8, DIM)).astype(np.float32)
    anomaly = rng.uniform(0, 1, DIM).astype(np.float32)
    lengths = rng.poisson(rows / videos, videos).clip(8)
    lists, gt = {"train": [], "test": []}, []
    for v, length in enumerate(lengths):
        split = "test" if v % 7 == 6 else "train"  # about 1 in 7: UCF-Crime's 290 of 1,900
        anomalous = v % 2 == 0
        name = f"Abuse{v:04d}_x264" if anomalous else f"Normal_Videos{v:04d}_x264"
        drift = np.cumsum(rng.normal(0, 0.01, (length, 1)), axis=0) * rng.normal(0, 1, DIM)
        features = scenes[v % len(scenes)] + drift + rng.normal(0, 0.02, (length, DIM))
        truth = np.zeros(length, dtype=bool)
        if anomalous:
            run = max(2, length // 6)
            start = int(rng.integers(1, length - run))
            features[start : start + run] = anomaly + rng.normal(0, 0.3, (run, DIM))
            truth[start : start + run] = True
        np.save(folder / f"{name}_i3d.npy", features.astype(np.float16))
        lists[split].append(f"G:\\UCF_ten_crop_i3d\\{name}_i3d.npy")
        if split == "test":
            gt.append(np.repeat(truth, SEGMENT).astype(np.float64))
    for split, lines in lists.items():
        (root / f"ucf-{split}.list").write_text("\r\n".join(lines) + "\r\n")
    np.save(root / "gt-ucf.npy", np.concatenate(gt))
    return {
        "format": "features",
        "train_list": str(root / "ucf-train.list"),
        "test_list": str(root / "ucf-test.list"),
        "feature_dir": str(folder),
        "labels": str(root / "gt-ucf.npy"),
        "training": "paper_bf16",
    }


def workdir(root: Path, dataset: dict, epochs: list[int]) -> Path:
    work = root / "workdir"
    work.mkdir(exist_ok=True)
    for name in ("Snakefile", "workflow", "config", "profiles", "envs"):
        source = REPO / name
        (
            shutil.copytree(source, work / name, dirs_exist_ok=True)
            if source.is_dir()
            else shutil.copy2(source, work / name)
        )
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["datasets"] = {"ucf_scale": dataset}
    config["training"]["presets"]["paper_bf16"] = {
        "base": "paper",
        "execution": {"precision": "bf16"},
        **{stage: {"epochs": n} for stage, n in zip(("pretrain_g", "pretrain_d", "loop"), epochs, strict=True)},
    }
    (work / "config" / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return work


def rule_figures(work: Path) -> list[tuple[str, float, float]]:
    """(job, seconds, peak RSS MiB) from Snakemake's benchmark files, in start order."""
    rows = []
    for path in sorted((work / "benchmarks" / "rules").rglob("*.tsv"), key=lambda p: p.stat().st_mtime):
        with open(path) as handle:
            record = next(csv.DictReader(handle, delimiter="\t"))
        rows.append(
            (str(path.relative_to(work / "benchmarks" / "rules")), float(record["s"]), float(record["max_rss"]))
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=1900)
    parser.add_argument("--rows", type=int, default=800_000)
    parser.add_argument("--work", type=Path, default=Path("/tmp/ucf_scale"))
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--epochs", type=int, nargs=3, default=list(PAPER_EPOCHS), metavar=("G", "D", "LOOP"))
    args = parser.parse_args()
    if min(args.epochs) < 1:
        parser.error("--epochs: every stage needs at least one epoch")
    print("machine:", describe(), flush=True)
    started = time.perf_counter()
    dataset = write_features(args.work, args.videos, args.rows)
    print(f"wrote {args.videos} videos of published features in {time.perf_counter() - started:.0f} s", flush=True)
    work = workdir(args.work, dataset, args.epochs)
    started = time.perf_counter()
    command = [sys.executable, "-m", "snakemake", "--cores", str(args.cores), "results/ucf_scale/auc.json"]
    subprocess.run(command, cwd=work, check=True)
    total = time.perf_counter() - started
    print(f"{'job':70s} {'s':>8s} {'peak RSS MiB':>13s}")
    estimate = total
    for job, seconds, rss in rule_figures(work):
        stage = Path(job).stem
        per_epoch = ""
        if stage in STAGE_EPOCHS:
            epochs = args.epochs[STAGE_EPOCHS[stage]]
            estimate += seconds * (PAPER_EPOCHS[STAGE_EPOCHS[stage]] / epochs - 1)
            per_epoch = f"  ({seconds / epochs:.0f} s per epoch over {epochs})"
        print(f"{job:70s} {seconds:8.0f} {rss:13.0f}{per_epoch}")
    result = yaml.safe_load((work / "results/ucf_scale/auc.json").read_text())
    print(f"whole GCL_PT run: {total / 60:.1f} min measured with epochs {args.epochs}", end="; ")
    print(f"{result['frames']} test frames, AUC {result['auc']:.3f}")
    if list(args.epochs) != list(PAPER_EPOCHS):
        # each training job's whole time scaled by its epoch ratio: its loading and scoring
        # counted more than once, so an upper estimate
        print(
            f"the paper's epochs {list(PAPER_EPOCHS)}: at most about {estimate / 60:.0f} min (estimated, not measured)"
        )
    print("machine after:", describe())


if __name__ == "__main__":
    main()
