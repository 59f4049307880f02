"""The cost of one camera-second (issue 19): crops and frame sampling against frame AUC.

For the default for unlabelled footage (the demo entry: I3D, three crops each its own training
track, a GCL_PT seed ensemble of 3, preset `unlabelled`) and the same with fewer crops and/or
`frame_step`, on the two development benchmarks (the demo generator with seed 0, and the
walkway generator as benchmarks/configs/alert_datasets.yaml configures it), this prints:
  * frame AUC (delivered, and raw: before smoothing) from each dataset's results/<name>/auc.json;
  * counted cost: network clips per camera-second at 25 fps (crops x 25 / (16 x frame_step)),
    and GFLOP per camera-second (FLOPs per clip counted with torch.utils.flop_counter);
  * measured: the workflow's extraction seconds (Snakemake's benchmark files of the shard
    jobs) per second of video, and `gclvad watch` reading a demo test video as fast as it goes
    (decoding waits for scoring, one run at a time, side by side in this process): frames per
    second end to end, i.e. camera-seconds per second at 25 fps, and per core; and the GFLOP/s
    that is, as a fraction of the fp32 matrix-multiply ceiling measured here (benchmarks/ceiling.py).

Usage, after the workflow has made every dataset's results (the README's command at the top of
benchmarks/configs/camera_second.yaml):
    .venv/bin/python benchmarks/camera_second.py [--targets] [--watch-videos 2]
--targets prints the workflow targets and stops. --realtime SETTING also plays every demo test
video back to back at 25 fps in real time (as a camera delivers it) to that setting's run and
prints the segments it scored and dropped and their latency.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import warnings
from pathlib import Path

import pandas as pd
import yaml
from ceiling import fp32_ceiling  # benchmarks/ is on sys.path when run
from machine import describe

from gclvad.decode.crops import crop_count
from gclvad.extract.networks.base import RandomWeightsWarning
from gclvad.extract.networks.registry import build_extractor

REPO = Path(__file__).resolve().parents[1]
CONFIGS = [REPO / "config/config.yaml", REPO / "benchmarks/configs/alert_datasets.yaml",
           REPO / "benchmarks/configs/camera_second.yaml"]  # fmt: skip
FPS = 25.0
# setting -> dataset name on each benchmark, and the variant when not the dataset's own
DENSITY = "GCL_PT~ensemble=3~density=1"  # the second opinion of issue 18 (gclvad.scoring.density)
SETTINGS = {
    "default before density (3 crops, every frame)": {"demo": "demo", "walkway": "walkway_alerts",
                                                       "variant": "GCL_PT~ensemble=3"},
    "3 crops, frame_step 2": {"demo": "demo_step2", "walkway": "walkway_step2"},
    "3 crops, frame_step 4": {"demo": "demo_step4", "walkway": "walkway_step4"},
    "centre crop, every frame": {"demo": "demo_centre", "walkway": "walkway_centre"},
    "centre crop, frame_step 2": {"demo": "demo_centre_step2", "walkway": "walkway_centre_step2"},
    "centre crop, bf16 (native here)": {"demo": "demo_centre_bf16", "walkway": "walkway_centre_bf16"},
    "default: 3 crops + density": {"demo": "demo", "walkway": "walkway_alerts", "variant": DENSITY},
    "live: centre crop + density": {"demo": "demo_centre", "walkway": "walkway_centre", "variant": DENSITY},
    "centre crop, frame_step 2 + density": {"demo": "demo_centre_step2", "walkway": "walkway_centre_step2",
                                            "variant": DENSITY},
    "centre crop, bf16 + density": {"demo": "demo_centre_bf16", "walkway": "walkway_centre_bf16",
                                    "variant": DENSITY},
}  # fmt: skip
BENCHMARKS = ("demo", "walkway")


def merged_config() -> dict:
    config: dict = {}
    for path in CONFIGS:
        loaded = yaml.safe_load(path.read_text())
        for key, value in loaded.items():
            config[key] = {**config.get(key, {}), **value} if isinstance(value, dict) else value
    return config


def dataset_facts(config: dict, name: str) -> dict:
    entry = config["datasets"][name]
    extractor = config["extractors"][entry["extractor"]]
    return {
        "extractor": entry["extractor"],
        "network": extractor.get("network", entry["extractor"]),
        "crops": crop_count(extractor.get("crops", "centre")),
        "frame_step": int(entry.get("frame_step", 1)),
    }


def run_folder(config: dict, name: str, variant: str | None = None) -> Path:
    entry = config["datasets"][name]
    variant = variant or entry["variant"]
    return REPO / "results" / name / entry["extractor"] / variant / f"seed{config['seed']}"


def extraction_seconds_per_video_second(name: str, extractor: str) -> float | None:
    shards = sorted((REPO / "benchmarks/rules" / name / "extract" / extractor).glob("shard*.tsv"))
    index_path = REPO / "results" / name / "segments.tsv"
    if not shards or not index_path.is_file():
        return None
    seconds = sum(float(pd.read_csv(path, sep="\t")["s"].iloc[-1]) for path in shards)
    index = pd.read_csv(index_path, sep="\t")
    return seconds / float((index["frames"] / index["fps"]).sum())


def watch_capacity(run: Path, videos: list[Path]) -> float:
    """Frames per second `gclvad watch` decodes and scores, reading the files as fast as it goes."""
    from gclvad.live.watcher import watch

    frames = seconds = 0.0
    with tempfile.TemporaryDirectory() as out:
        for i, video in enumerate(videos):
            summary = watch(run, str(video), Path(out) / str(i), device="cpu")
            frames, seconds = frames + summary["frames"], seconds + summary["seconds"]
    return frames / seconds


def realtime_watch(run: Path, videos: list[Path]) -> dict:
    """The videos back to back as one 25 fps MPEG-TS stream, watched in real time."""
    sys.path.insert(0, str(REPO / "tests"))
    from watch_support import write_ts  # the tests' TS writer, as benchmarks/watch.py uses it

    from gclvad.decode.video import iter_frames
    from gclvad.live.source import SourceSettings
    from gclvad.live.watcher import WatchSettings, watch

    with tempfile.TemporaryDirectory() as folder:
        stream = write_ts(Path(folder) / "cameras.ts", (f for v in videos for f in iter_frames(v)), fps=25)
        settings = WatchSettings(source=SourceSettings(realtime=True))
        summary = watch(run, str(stream), Path(folder) / "out", settings, device="cpu")
    keys = ("frames", "seconds", "scored_segments", "dropped_segments", "latency_s")
    return {key: summary[key] for key in keys}


def test_videos(name: str, count: int | None) -> list[Path]:
    table = pd.read_csv(REPO / "results" / name / "videos" / "videos.csv", dtype={"video": str})
    names = table.loc[table["split"] == "test", "video"].tolist()[:count]
    return [REPO / "results" / name / "videos" / f"{video}.mp4" for video in names]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--targets", action="store_true", help="print the workflow targets and stop")
    parser.add_argument("--watch-videos", type=int, default=2, help="demo test videos each run watches")
    parser.add_argument("--realtime", choices=list(SETTINGS), help="play the demo test videos to this run at 25 fps")
    args = parser.parse_args()
    config = merged_config()
    if args.targets:
        runs = {run_folder(config, names[b], names.get("variant")) for names in SETTINGS.values() for b in BENCHMARKS}
        print(" ".join(sorted(str((run / "auc.json").relative_to(REPO)) for run in runs)))
        return
    warnings.simplefilter("ignore", RandomWeightsWarning)
    print(describe())
    matmul, conv = fp32_ceiling(3.0)
    ceiling = max(matmul, conv)
    print(f"fp32 ceiling: {ceiling:.1f} GFLOP/s (matmul {matmul:.1f}, 3x3x3 convolution {conv:.1f})", flush=True)
    flops = {}
    rows = []
    # one watch untimed first: the first one in a process pays for what later ones reuse (the
    # kernels' first calls), which would otherwise be charged to the first setting alone
    first = next(iter(SETTINGS.values()))
    watch_capacity(run_folder(config, first["demo"], first.get("variant")), test_videos(first["demo"], 1))
    for setting, names in SETTINGS.items():
        facts = dataset_facts(config, names["demo"])
        if facts["network"] not in flops:
            network = build_extractor(facts["network"], "random", device="cpu", precision="fp32")
            flops[facts["network"]] = network.clip_flops(config["segment_length"])
        clips = facts["crops"] * FPS / (config["segment_length"] * facts["frame_step"])
        row = {"setting": setting, "clips per camera-s": clips,
               "GFLOP per camera-s": clips * flops[facts["network"]] / 1e9}  # fmt: skip
        for benchmark in BENCHMARKS:
            name = names[benchmark]
            result_path = run_folder(config, name, names.get("variant")) / "auc.json"
            if result_path.is_file():
                result = json.loads(result_path.read_text())
                row[f"{benchmark} auc"], row[f"{benchmark} auc_raw"] = result["auc"], result["auc_raw"]
            row[f"{benchmark} extract s per video-s"] = extraction_seconds_per_video_second(name, facts["extractor"])
        run = run_folder(config, names["demo"], names.get("variant"))
        if (run / "models.pt").is_file() or (run / "postprocess.json").is_file():
            capacity = watch_capacity(run, test_videos(names["demo"], args.watch_videos))
            row["watch fps"] = capacity
            row["watch camera-s per s per core"] = capacity / FPS / os.cpu_count()
            row["watch GFLOP/s"] = capacity / FPS * row["GFLOP per camera-s"]
            row["watch fraction of fp32 ceiling"] = row["watch GFLOP/s"] / ceiling
        rows.append(row)
        print(json.dumps(row), flush=True)
    table = pd.DataFrame(rows).set_index("setting")
    base = table.iloc[0]
    table["cost vs default (counted)"] = base["clips per camera-s"] / table["clips per camera-s"]  # the first row
    if "watch fps" in table:
        table["watch speed-up (measured)"] = table["watch fps"] / base["watch fps"]
    with pd.option_context("display.width", 250, "display.max_columns", 30, "display.float_format", "{:.3f}".format):
        print(table.T)
    if args.realtime:
        names = SETTINGS[args.realtime]
        run = run_folder(config, names["demo"], names.get("variant"))
        played = realtime_watch(run, test_videos(names["demo"], None))
        print(f"{args.realtime}, demo test videos at 25 fps in real time: {json.dumps(played)}")
    print(describe())


if __name__ == "__main__":
    main()
