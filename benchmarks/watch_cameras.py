"""Many cameras, one `gclvad watch` process: how many 25 fps cameras this machine scores without
dropping a segment.

One run is trained (autoencoder) on features of a synthetic street scene
(gclvad.datasets.synthetic.demo) with the chosen extractor. Then for N = 1, 2, 3, ... cameras,
N files of the scene (each its own stretch of it, 320x240 at `--fps`) are played in real time
(`--realtime`: each decoded by its own thread and delivered at its frame rate, as cameras
deliver) into one watch for `--seconds`; all their segments are scored by the one network in
shared batches. Printed per camera: segments formed, scored and dropped, latency p95; per N:
the process RSS when watching started and when it ended. N grows until a camera drops
segments (or `--max-cameras`). The alert threshold is set above every score, so no event
plots are drawn: the figures are those of decoding, batching and scoring.

Usage: .venv/bin/python benchmarks/watch_cameras.py [--extractor r3d_18 | tiny] [--seconds 20] [--max-cameras 6]
The machine and its load are printed first and last: on a shared machine the counts are lower
bounds of what it does alone.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import pandas as pd
import psutil
from machine import describe  # benchmarks/ is on sys.path when run
from watch import RssSampler, scene  # benchmarks/watch.py: the scene and the RSS sampler

from gclvad.extract.networks.base import RandomWeightsWarning
from gclvad.extract.networks.registry import build_extractor
from gclvad.live.cameras import Camera
from gclvad.live.source import SourceSettings
from gclvad.live.watcher import WatchSettings, watch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from watch_support import tiny_extractor, train_run, write_ts  # the tests' extractor, run trainer, TS writer

warnings.simplefilter("ignore", RandomWeightsWarning)
TRAIN_FRAMES = 96


def trained_run(extractor, weights: str, base: Path) -> Path:
    train = write_ts(base / "train.ts", scene(0, TRAIN_FRAMES), fps=25)
    test = write_ts(base / "test.ts", scene(0, 16), fps=25)  # training records its scores per epoch
    return train_run(base, extractor, {"train": (train, "train"), "test": (test, "test")}, "AE_AllData", weights)


def camera_files(count: int, frames: int, fps: int, base: Path) -> list[Path]:
    """One file a camera, each a different stretch of the scene (not the same frames twice)."""
    return [
        write_ts(base / f"camera{k}.ts", scene(TRAIN_FRAMES + k * frames, frames), fps=fps, codec="mpeg4")
        for k in range(count)
    ]


def watch_cameras(run: Path, extractor, files: list[Path], out: Path) -> tuple[dict, float, float]:
    """One watch of these files as cameras in real time; its summary and RSS (MiB) at start and end."""
    cameras = [Camera(f"cam{k + 1}", str(path)) for k, path in enumerate(files)]
    settings = WatchSettings(threshold=1e30, source=SourceSettings(realtime=True))
    start_rss = psutil.Process().memory_info().rss / 2**20
    with RssSampler() as rss:
        summary = watch(run, cameras, out, settings, extractor=extractor)
    end_rss = rss.samples[-1][1] if rss.samples else float("nan")
    return summary, start_rss, end_rss


def rows_of(count: int, summary: dict, start_rss: float, end_rss: float) -> list[dict]:
    return [
        {
            "cameras": count,
            "camera": name,
            "segments_in": camera["segments"],
            "scored": camera["scored_segments"],
            "dropped": camera["dropped_segments"],
            "latency_p95_s": camera["latency_s"].get("p95"),
            "rss_start_mib": round(start_rss),
            "rss_end_mib": round(end_rss),
        }
        for name, camera in summary["cameras"].items()
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--extractor",
        default="r3d_18",
        help="a registry extractor (random weights), or 'tiny': the tests' 3-D convolution of 16-d features, "
        "which measures decoding, batching and scoring more than a network",
    )
    parser.add_argument("--seconds", type=float, default=20.0, help="how long each N is watched")
    parser.add_argument("--fps", type=int, default=25)
    parser.add_argument("--max-cameras", type=int, default=6)
    parser.add_argument("--work", type=Path, help="keep the files here (default: a temporary folder)")
    args = parser.parse_args()
    print(describe())
    print(f"process {os.getpid()}; {len(psutil.pids())} processes on the machine (shared: counts are lower bounds)")
    tiny = args.extractor == "tiny"
    extractor = tiny_extractor() if tiny else build_extractor(args.extractor, "random", device="cpu")
    frames = int(args.fps * args.seconds)
    results, sustained = [], 0
    with tempfile.TemporaryDirectory() as temporary:
        base = args.work or Path(temporary)
        run = trained_run(extractor, "random", base / "run")
        files = camera_files(args.max_cameras, frames, args.fps, base / "cameras")
        for count in range(1, args.max_cameras + 1):
            began = time.monotonic()
            summary, start_rss, end_rss = watch_cameras(run, extractor, files[:count], base / f"watch{count}")
            rows = rows_of(count, summary, start_rss, end_rss)
            results += rows
            dropped = sum(row["dropped"] for row in rows)
            took = time.monotonic() - began
            print(f"{count} camera(s) at {args.fps} fps for {took:.0f} s: {dropped} segments dropped")
            if dropped:
                break
            sustained = count
    print(f"\n{args.extractor} (random weights), 320x240 at {args.fps} fps, {args.seconds:g} s per N:")
    print(pd.DataFrame(results).to_string(index=False))
    print(f"\ncameras sustained without a drop: {sustained}")
    print(f"load average at the end: {', '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
