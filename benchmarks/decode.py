"""Decode speed and memory of gclvad.decode.video on generated 320x240 H.264 surveillance-like video.

Prints frames/s of `probe_video`, and, for the ResNeXt (short side 112, crop 112) and I3D
(224, 224) preprocessing with 1 and the default number of torch threads, frames/s of
decode + resize + crop + normalize into segment tensors (`iter_segments`); then the peak RSS
of a fresh process that decodes a short video and one ten times longer, which should be about
equal if decoding streams. Also prints the machine.

    .venv/bin/python benchmarks/decode.py [--seconds 30] [--long-factor 10]
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np
import torch
from machine import cpu_model

from gclvad.datasets.synthetic.demo import Event, write_demo_video
from gclvad.decode.preprocessing import Preprocessing
from gclvad.decode.video import iter_segments, probe_video

FPS = 25
SIZE = (240, 320)
PREPROCESSINGS = {
    "resnext101 (112/112)": Preprocessing(size=112, crop=112),
    "i3d (224/224)": Preprocessing(size=224, crop=224, scale=2 / 255, mean=(1, 1, 1)),
    # torchvision's R3D/MC3/R(2+1)D transform (resized in torch, no antialias) against the
    # FFmpeg resize those networks had before (same sizes): what matching torchvision costs.
    "r3d_18 torchvision": Preprocessing(size=(128, 171), crop=112, antialias=False, rounding="torchvision"),
    "r3d_18 FFmpeg resize": Preprocessing(size=(128, 171), crop=112),
}


def print_machine() -> None:
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"CPU: {cpu_model()}; cores: {os.cpu_count()} (usable {usable}); torch threads {torch.get_num_threads()}")
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(
        f"python {platform.python_version()}, torch {torch.__version__}, PyAV {av.__version__}, "
        f"libavcodec {'.'.join(map(str, av.library_versions['libavcodec']))}"
    )


def make_video(path: Path, frames: int) -> Path:
    # A red vehicle crossing in the middle, so the content is not static.
    event = Event("vehicle", frames // 2, frames // 2 + 40)
    return write_demo_video(path, np.random.default_rng(0), frames, SIZE, FPS, event)


def measure_throughput(video: Path, frames: int) -> None:
    for prep in PREPROCESSINGS.values():  # warm up: first imports, thread pools, file cache
        next(iter_segments(video, prep))
    start = time.perf_counter()
    info = probe_video(video)
    elapsed = time.perf_counter() - start
    assert info.frames == frames, info
    print(f"  probe_video (decode only, no RGB): {frames / elapsed:8.0f} frames/s")
    # normalize() runs on torch's intra-op threads; on a busy machine their spin-waiting
    # can cost more than it saves, so both settings are shown.
    default_threads = torch.get_num_threads()
    for threads in sorted({1, default_threads}):
        torch.set_num_threads(threads)
        for name, prep in PREPROCESSINGS.items():
            start = time.perf_counter()
            decoded = sum(segment.real_frames for segment in iter_segments(video, prep))
            elapsed = time.perf_counter() - start
            assert decoded == frames
            print(
                f"  iter_segments {name:20s} torch threads {threads}: "
                f"{frames / elapsed:6.0f} frames/s ({elapsed:.2f} s)"
            )
    torch.set_num_threads(default_threads)


def peak_rss_child(video: str) -> None:
    """Runs in a fresh process: decode the whole video into I3D segments, print peak RSS (MiB)."""
    if video != "none":
        for _ in iter_segments(Path(video), PREPROCESSINGS["i3d (224/224)"]):
            pass
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)  # Linux: KiB


def peak_rss(video: Path | str) -> float:
    output = subprocess.run(
        [sys.executable, __file__, "--rss-child", str(video)], check=True, capture_output=True, text=True
    ).stdout
    return float(output.split()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=30, help="length of the short video")
    parser.add_argument("--long-factor", type=int, default=10, help="the long video is this many times longer")
    parser.add_argument("--rss-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_child:
        peak_rss_child(args.rss_child)
        return
    print_machine()
    short_frames = args.seconds * FPS
    long_frames = short_frames * args.long_factor
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        short = make_video(Path(folder) / "short.mp4", short_frames)
        long = make_video(Path(folder) / "long.mp4", long_frames)
        print(
            f"generated {short_frames} + {long_frames} frames of {SIZE[1]}x{SIZE[0]} H.264 "
            f"in {time.perf_counter() - start:.1f} s"
        )
        print(f"throughput on the {args.seconds} s video ({short_frames} frames):")
        measure_throughput(short, short_frames)
        print("peak RSS of a fresh process decoding into i3d segments:")
        print(f"  imports only:                  {peak_rss('none'):7.0f} MiB")
        print(f"  {args.seconds:4d} s video ({short_frames:6d} frames): {peak_rss(short):7.0f} MiB")
        print(f"  {args.seconds * args.long_factor:4d} s video ({long_frames:6d} frames): {peak_rss(long):7.0f} MiB")
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
