"""Clips per second of the I3D extractor (package weights) for each speed option, and how far
each option moves the features from the plain fp32 network.

    .venv/bin/python benchmarks/i3d_speed.py [--frames 16] [--size 224] [--batches 1 4] [--rounds 4]

Prints the machine (CPU model, cores, torch version, threads, load average) first. The variants
are timed round-robin, `--rounds` times each, and the best time is kept, so a burst of load
from other processes on a shared machine hurts all variants alike instead of one.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch
from machine import cpu_model

from gclvad.extract.networks.i3d import build_i3d

VARIANTS = {
    "fp32 unfolded": dict(fold=False),
    "fp32 folded": dict(),
    "fp32 folded channels_last": dict(channels_last=True),
    "bf16 autocast": dict(precision="bf16", bf16_mode="autocast"),
    "bf16 autocast channels_last": dict(precision="bf16", bf16_mode="autocast", channels_last=True),
    "bf16 cast": dict(precision="bf16", bf16_mode="cast"),
    "bf16 cast channels_last": dict(precision="bf16", bf16_mode="cast", channels_last=True),
}


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.linalg.vector_norm(a - b) / torch.linalg.vector_norm(b))


def seconds(extractor, clips: torch.Tensor) -> float:
    start = time.perf_counter()
    extractor.extract(clips)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--only", nargs="*", help="names of VARIANTS to run (default: all)")
    args = parser.parse_args()

    print(
        f"CPU: {cpu_model()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, load average {os.getloadavg()}"
    )
    if args.device != "cpu" and torch.cuda.is_available():
        print(f"GPU: {torch.cuda.get_device_name()}")
    generator = np.random.default_rng(0)
    clips = {
        batch: torch.from_numpy(
            generator.uniform(-1, 1, (batch, 3, args.frames, args.size, args.size)).astype(np.float32)
        )
        for batch in args.batches
    }
    chosen = {name: VARIANTS[name] for name in (args.only or VARIANTS)}
    extractors = {name: build_i3d("package", device=args.device, **options) for name, options in chosen.items()}

    reference = build_i3d("package", device=args.device, fold=False).extract(clips[args.batches[0]])
    errors = {name: relative_error(ext.extract(clips[args.batches[0]]), reference) for name, ext in extractors.items()}
    for ext in extractors.values():  # warm-up: oneDNN picks its kernels on the first call per shape
        for batch_clips in clips.values():
            ext.extract(batch_clips)

    best = {(name, batch): float("inf") for name in extractors for batch in args.batches}
    for _ in range(args.rounds):
        for name, ext in extractors.items():
            for batch, batch_clips in clips.items():
                best[name, batch] = min(best[name, batch], seconds(ext, batch_clips))

    print(
        f"{args.frames}x{args.size}x{args.size} clips, best of {args.rounds} rounds; load average now {os.getloadavg()}"
    )
    for name in extractors:
        speeds = ", ".join(f"batch {batch}: {batch / best[name, batch]:.2f} clips/s" for batch in args.batches)
        print(f"{name:30s} rel err vs fp32 unfolded {errors[name]:.2e}; {speeds}")


if __name__ == "__main__":
    main()
