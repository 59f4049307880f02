"""Training speed and memory of GCL at the paper's scale (d = 2048, batch 8192).

Speed: samples/s of the full cooperative iteration (G labels, D step, D labels, G step),
and, for reference, of the autoencoder alone, measured through `gclvad.gcl.train` itself on
random features, in fp32 and bf16. The first epoch (warm-up, allocator growth) is not counted.

Memory (--memory, needs ~8 GB free and a few minutes): a UCF-Crime-sized training matrix,
800,000 x 2048 float32 (6.5 GB), goes through temporal-difference cleaning, one cooperative
epoch and scoring of every row; the peak resident memory of the process is printed and
checked against 24 GiB.

    .venv/bin/python benchmarks/train.py [--threads N] [--epochs 3] [--rows 32768] [--memory]
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import torch
from machine import describe

from gclvad.cleaning import CleaningConfig, temporal_difference_mask
from gclvad.gcl.data import TrainingData
from gclvad.gcl.store import score
from gclvad.gcl.train import train
from gclvad.gcl.variants import get_variant

DIM = 2048
BATCH = 8192


def random_training_data(rows: int, videos: int, seed: int = 0) -> TrainingData:
    rng = np.random.default_rng(seed)
    # non-negative, like pooled post-ReLU CNN features
    features = rng.standard_normal((rows, DIM), dtype=np.float32)
    np.abs(features, out=features)  # in place: no second 6.5 GB array at full scale
    video = np.arange(rows) * videos // rows
    position = np.arange(rows) - np.searchsorted(video, video)
    return TrainingData(features, video.astype(np.int64), position.astype(np.int64))


def throughput(variant: str, data: TrainingData, precision: str, epochs: int) -> tuple[float, int]:
    """Steady-state samples/s of a variant's training (epochs after the first), and steps timed."""
    config = get_variant(
        variant, preset="paper", precision=precision, **{"loop.epochs": epochs, "pretrain_g.epochs": epochs}
    )
    result = train(config, data, seed=0)
    timed = result.log[1:]
    samples = sum(row["rows"] for row in timed)
    return samples / sum(row["seconds"] for row in timed), sum(row["steps"] for row in timed)


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux reports KiB


def memory_check(rows: int) -> None:
    started = time.perf_counter()
    data = random_training_data(rows, videos=1900)
    print(
        f"memory: built {rows} x {DIM} float32 ({data.features.nbytes / 1e9:.1f} GB) in "
        f"{time.perf_counter() - started:.0f}s; peak RSS {peak_rss_gib():.2f} GiB",
        flush=True,
    )
    started = time.perf_counter()
    _, summary = temporal_difference_mask(
        data.features, data.video, data.position, CleaningConfig(mode="percentile", threshold=70)
    )
    print(
        f"memory: TD cleaning in {time.perf_counter() - started:.0f}s, kept {summary['kept_fraction']:.0%}; "
        f"peak RSS {peak_rss_gib():.2f} GiB",
        flush=True,
    )
    started = time.perf_counter()
    config = get_variant("GCL_B", preset="paper", precision="bf16", **{"loop.epochs": 1})
    result = train(config, data, seed=0)
    print(
        f"memory: one cooperative epoch ({result.steps['gcl_loop']} steps of {BATCH}) in "
        f"{time.perf_counter() - started:.0f}s; peak RSS {peak_rss_gib():.2f} GiB",
        flush=True,
    )
    started = time.perf_counter()
    scores = score(result.models, data.features)
    print(
        f"memory: scored {len(scores['d'])} rows in {time.perf_counter() - started:.0f}s; "
        f"peak RSS {peak_rss_gib():.2f} GiB",
        flush=True,
    )
    peak = peak_rss_gib()
    print(f"memory: peak RSS {peak:.2f} GiB -> {'within' if peak < 24 else 'OVER'} 24 GiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--rows", type=int, default=4 * BATCH, help="rows of the speed benchmark (default 32768)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per precision; the first is not timed")
    parser.add_argument("--memory", action="store_true", help="also run the 800k x 2048 memory check")
    parser.add_argument("--memory-rows", type=int, default=800_000)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print("machine:", describe(), flush=True)
    data = random_training_data(args.rows, videos=max(1, args.rows // 400))
    for precision in ("fp32", "bf16"):
        rate, steps = throughput("GCL_B", data, precision, args.epochs)
        print(
            f"GCL iteration d={DIM} batch={BATCH} {precision}: {rate:,.0f} samples/s ({steps} timed steps)", flush=True
        )
    for precision in ("fp32", "bf16"):  # reference: the autoencoder alone (one G step per batch)
        rate, steps = throughput("AE_AllData", data, precision, args.epochs)
        print(
            f"autoencoder alone d={DIM} batch={BATCH} {precision}: {rate:,.0f} samples/s ({steps} timed steps)",
            flush=True,
        )
    print("machine after:", describe())
    if args.memory:
        memory_check(args.memory_rows)


if __name__ == "__main__":
    main()
