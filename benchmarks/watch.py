"""Live scoring (`gclvad watch`) on this machine: the highest input frame rate it sustains without
dropping a segment, the alert latency from the first anomalous frame, and its memory over time.

For each extractor (I3D fp32 with the package weights; ResNeXt-101 bf16 with random weights,
whose speed does not depend on the weights' values), at 320x240:
  1. a run is trained (autoencoder, score = G's reconstruction error) on the features of
     `--train-frames` frames of one synthetic street scene (gclvad.datasets.synthetic.demo), and keeps
     its own unsupervised alert threshold (quantile 0.99 of its training scores);
  2. capacity: the same scene, continued, is watched as a file as fast as it goes (decoding
     waits for scoring): frames per second decoded and scored end to end;
  3. sustained: the scene, continued, with a flat magenta picture planted for `--plant-frames`
     frames every `--plant-every-s` seconds (at random offsets, not aligned to segments), is
     played in real time (`--realtime`, as a camera would deliver it) at a rate a little under
     the capacity for `--seconds`; if segments are dropped the rate is lowered and it is tried
     again; then once more at half that rate for half as long. Reported: the rate, drops,
     alert latency (alert opened minus arrival of the first planted frame; p50, p95 over the
     plants; the threshold is put between the training scores and the planted picture's, so
     the latency is the pipeline's), how many normal segments the run's own default threshold
     (quantile 0.99 of its training scores) would have alerted on, and RSS at half and at the
     end of the run.

Usage: .venv/bin/python benchmarks/watch.py [--extractors i3d resnext101] [--seconds 120]
The machine's load is printed before and after: on a shared machine the rates are lower
bounds of what it does alone.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
from machine import describe  # benchmarks/ is on sys.path when run

from gclvad.datasets.synthetic.demo import scene_frames
from gclvad.extract.networks.base import RandomWeightsWarning
from gclvad.extract.networks.registry import build_extractor
from gclvad.extract.one_video import compute_features
from gclvad.gcl.store import load_models, read_models_metadata, score
from gclvad.live.source import SourceSettings
from gclvad.live.threshold import run_threshold
from gclvad.live.watcher import WatchSettings, watch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from watch_support import train_run, write_ts  # the tests' run trainer and TS writer

warnings.simplefilter("ignore", RandomWeightsWarning)
SIZE = (240, 320)
CONFIGS = {"i3d": ("i3d", "package", "fp32"), "resnext101": ("resnext101", "random", "bf16")}
MAGENTA = np.array((255, 0, 255), np.uint8)


def scene(first: int, count: int, plants: list[int] | None = None, plant_frames: int = 0):
    """Frames [first, first + count) of the street scene of seed 0, with planted frames."""
    planted = {f for start in plants or [] for f in range(start, start + plant_frames)}
    for index, frame in enumerate(scene_frames(np.random.default_rng(0), first + count, SIZE)):
        if index >= first:
            yield np.broadcast_to(MAGENTA, frame.shape).copy() if index - first in planted else frame


class RssSampler:
    """This process's RSS once a second, with the time since the start."""

    def __init__(self):
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        started, process = time.monotonic(), psutil.Process()
        while not self._stop.wait(1.0):
            self.samples.append((time.monotonic() - started, process.memory_info().rss / 2**20))

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def at(self, seconds: float) -> float:
        return min(self.samples, key=lambda sample: abs(sample[0] - seconds))[1] if self.samples else float("nan")


def plant_latencies(out: Path, plants: list[int], plant_frames: int, rate: float) -> tuple[list[float], int, int]:
    """Alert latency of each plant (its alert opened minus the arrival of its first frame), and
    how many plants came while an alert was already open, and how many raised none."""
    table = pd.read_csv(out / "scores.csv")
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    opened = [event for event in events if event["state"] == "open"]
    found, already_open, missed = [], 0, 0
    for plant in plants:
        before = table[table["last_frame"] < plant]
        if len(before) and before["alert"].iloc[-1]:
            already_open += 1
            continue
        # Its alert opens on the segment holding its first frame, or on one of the plant's later ones.
        alerts = [event for event in opened if plant - 15 <= event["start_frame"] <= plant + plant_frames]
        holding = table[(table["first_frame"] <= plant) & (table["last_frame"] >= plant)]
        if not alerts or holding.empty:
            missed += 1
            continue
        row = holding.iloc[0]
        # Frames arrive at `rate` (real-time play): the first planted frame came this long before the segment's last.
        arrival = row["unix_time"] - row["latency_s"] - (row["last_frame"] - plant) / rate
        found.append(alerts[0]["opened_at"] - arrival)
    return found, already_open, missed


def planted_picture_score(extractor, run: Path, base: Path) -> float:
    """The run's score of one segment of the planted picture (features rounded as stored)."""
    path = write_ts(base / "planted.ts", (np.broadcast_to(MAGENTA, (*SIZE, 3)).copy() for _ in range(16)))
    features = compute_features(extractor, path, 16, 1)[0].astype(np.float16).astype(np.float32)
    return float(score(load_models(run / "models.pt"), features)["score"][0])


def plants_for(frames: int, rate: int, attempt: int, args) -> list[int]:
    """First frames of the planted pictures: one per `plant_every_s` seconds (at least room for
    the alert to close in between), at a random offset in its period."""
    rng = np.random.default_rng(attempt)
    spacing = max(int(rate * args.plant_every_s), args.plant_frames + 4 * 16)
    return [
        start + int(rng.integers(0, spacing - args.plant_frames)) for start in range(spacing, frames - spacing, spacing)
    ]


def sustained(name: str, extractor, run: Path, base: Path, rate: int, seconds: float, threshold: float, args) -> dict:
    """Play the planted scene in real time at `rate` for `seconds`; what happened."""
    frames = int(rate * seconds)
    plants = plants_for(frames, rate, rate, args)
    live_frames = scene(args.train_frames, frames, plants, args.plant_frames)
    live = write_ts(base / f"live{rate}.ts", live_frames, fps=rate, codec="mpeg4")
    out = base / f"live{rate}"
    settings = WatchSettings(threshold=threshold, hold_s=1.0, source=SourceSettings(realtime=True))
    with RssSampler() as rss:
        summary = watch(run, str(live), out, settings, extractor=extractor)
    found, already_open, missed = plant_latencies(out, plants, args.plant_frames, rate)
    table = pd.read_csv(out / "scores.csv")
    planted = np.zeros(frames, bool)
    for plant in plants:
        planted[plant : plant + args.plant_frames] = True
    normal = table[[not planted[row.first_frame : row.last_frame + 1].any() for row in table.itertuples()]]
    default = run_threshold(run / "models.pt", read_models_metadata(run / "models.pt"))
    result = {
        "extractor": name,
        "rate_fps": rate,
        "realtime_x": round(rate / 25, 2),
        "seconds": round(summary["seconds"]),
        "dropped_segments": summary["dropped_segments"],
        "segment_latency_p50_s": summary["latency_s"].get("p50"),
        "plants": len(plants),
        "plants_in_open_alert": already_open,
        "plants_missed": missed,
        "alert_latency_p50_s": round(float(np.percentile(found, 50)), 2) if found else None,
        "alert_latency_p95_s": round(float(np.percentile(found, 95)), 2) if found else None,
        "normal_segments_over_default_threshold": f"{int((normal['score'] > default.value).sum())}/{len(normal)}",
        "rss_half_mib": round(rss.at(summary["seconds"] / 2)),
        "rss_end_mib": round(rss.at(summary["seconds"])),
    }
    print("  " + json.dumps(result))
    return result


def measure(name: str, work: Path, args) -> list[dict]:
    extractor_name, weights, precision = CONFIGS[name]
    extractor = build_extractor(extractor_name, weights, device="cpu", precision=precision)
    base = work / name
    train = write_ts(base / "train.ts", scene(0, args.train_frames), fps=25)
    test = write_ts(base / "test.ts", scene(0, 16), fps=25)  # training records its scores per epoch
    run = train_run(base, extractor, {"train": (train, "train"), "test": (test, "test")}, "AE_AllData", weights)
    quantiles = read_models_metadata(run / "models.pt")["training_score_quantiles"]
    # Alert latency is the pipeline's, not the threshold's: the threshold is put half way (in
    # log) between the training scores and the planted picture's, so that every plant, and
    # only plants, alert. How the run's own default threshold fares is reported beside it.
    planted = planted_picture_score(extractor, run, base)
    threshold = float(np.sqrt(quantiles["max"] * planted))
    label = f"{name} {precision}"
    print(
        f"\n{label} ({weights} weights): run trained on {args.train_frames} frames; training scores up to "
        f"{quantiles['max']:.4g} (default threshold {quantiles['quantiles']['0.99']:.4g}), planted picture "
        f"{planted:.4g}, latency threshold {threshold:.4g}"
    )

    probe = write_ts(base / "probe.ts", scene(args.train_frames, args.probe_frames), fps=25)
    summary = watch(run, str(probe), base / "capacity", WatchSettings(threshold=threshold), extractor=extractor)
    capacity = summary["frames"] / summary["seconds"]
    print(f"  capacity (file, decoding waits for scoring): {capacity:.1f} frames/s")

    rate = max(1, int(capacity * args.margin))
    for _ in range(args.attempts):
        result = sustained(label, extractor, run, base, rate, args.seconds, threshold, args)
        if result["dropped_segments"] == 0:
            break
        rate = max(1, int(rate * 0.85))
    light = sustained(label, extractor, run, base, max(1, rate // 2), args.seconds / 2, threshold, args)
    return [result, light]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--extractors", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--seconds", type=float, default=120.0, help="length of each sustained run")
    parser.add_argument("--train-frames", type=int, default=160)
    parser.add_argument("--probe-frames", type=int, default=160)
    parser.add_argument("--plant-every-s", type=float, default=10.0, help="seconds between planted events")
    parser.add_argument("--plant-frames", type=int, default=24)
    parser.add_argument("--margin", type=float, default=0.9, help="first rate tried, as a fraction of the capacity")
    parser.add_argument("--attempts", type=int, default=2)
    parser.add_argument("--work", type=Path, help="keep the files here (default: a temporary folder)")
    args = parser.parse_args()
    print(describe())
    print(f"process: {os.getpid()}, others on the machine: {len(psutil.pids())} processes")
    with tempfile.TemporaryDirectory() as temporary:
        work = args.work or Path(temporary)
        results = [result for name in args.extractors for result in measure(name, work, args)]
    print("\nsummary:")
    print(pd.DataFrame(results).to_string(index=False))
    print(f"load average at the end: {', '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
