"""Extraction at scale on this machine: per-video jobs (before issue 8) against shard jobs.

Sections (all by default; choose with --sections):
  model     model-only clips/s of each extractor at its configured precision and batch size;
  workflow  wall time of the workflow's extraction (segment index done beforehand, merged file
            included) of N generated 320x240 videos of S segments each, with the per-video jobs
            of a baseline commit (its own code and workflow, `git archive`) and with shard jobs
            (this checkout), side by side; the shard job's network time (measured inside it);
            fixed cost per video = (wall - clips / model-only rate) / videos for both;
  rss       peak memory of a shard job (Snakemake's benchmark: RSS and PSS summed over its
            processes) on N videos and on 4;
  decode    frames/s of 1 and 2 decoder processes (gclvad.extract.decoders) at 112 px and 224 px;
  bits      how much a clip's features change with the size of its forward pass (why every pass
            is filled up to batch_size), fp32 and bf16;
  demo      wall time of `make demo` (snakemake --cores 2 results/demo/auc.json, the shipped
            config) with the baseline and with this checkout;
  split     clips/s of one shard job (extract_videos, I3D at its shipped precision) of --split-videos
            videos for each split of the cores between K decoder processes and T torch threads
            (K, T in 1..cores), round-robin --split-rounds times, best kept; not in the default set.

Extractors: i3d with its package weights, resnext101 with a checkpoint in Hara's format (random
weights, written here: speed does not depend on the values). The machine is printed first; on
a shared machine run it once and read the load averages printed with each figure.

    .venv/bin/python benchmarks/shard_extract.py [--videos 48] [--segments 10] [--baseline-ref 491ece4]
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
import yaml
from machine import describe

REPO = Path(__file__).resolve().parents[1]
WORKFLOW_FILES = ["Snakefile", "workflow", "config", "profiles", "envs"]
SIZE = (240, 320)
FPS = 25
SEGMENT = 16
PRECISION = {"i3d": "fp32", "resnext101": "bf16"}  # the shipped config's
BATCH = 4


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


# ---------------------------------------------------------------- inputs


def make_videos(folder: Path, count: int, segments: int) -> Path:
    """`count` demo-like street videos of `segments` x 16 frames and a generic manifest."""
    from gclvad.datasets.synthetic.demo import Event, write_demo_video

    folder.mkdir(parents=True, exist_ok=True)
    frames = segments * SEGMENT
    rows = []
    for i in range(count):
        path = folder / f"v{i:03d}.mp4"
        write_demo_video(path, np.random.default_rng(i), frames, SIZE, FPS, Event("vehicle", frames // 3, frames // 2))
        rows.append({"video": path.stem, "path": path.name, "split": "train"})
    manifest = folder / "videos.csv"
    with open(manifest, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["video", "path", "split"])
        writer.writeheader()
        writer.writerows(rows)
    return manifest


def hara_checkpoint(path: Path) -> Path:
    from gclvad.extract.networks.resnext import ResNeXt3D

    torch.manual_seed(0)
    model = ResNeXt3D()
    state = {f"module.{key}": value for key, value in model.state_dict().items()}
    torch.save({"arch": "resnext-101", "epoch": 1, "state_dict": state, "optimizer": {}}, path)
    return path


def baseline_tree(ref: str, folder: Path) -> Path:
    """The repository at `ref` (its src/ and workflow), unpacked into `folder`."""
    archive = subprocess.run(["git", "-C", str(REPO), "archive", ref], check=True, capture_output=True).stdout
    folder.mkdir(parents=True)
    with tarfile.open(fileobj=__import__("io").BytesIO(archive)) as tar:
        tar.extractall(folder, filter="data")
    return folder


# ---------------------------------------------------------------- 1. model alone


def build(name: str, weights: str):
    from gclvad.extract.networks.registry import build_extractor

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return build_extractor(name, weights, "cpu", PRECISION[name])


def model_rate(name: str, weights: str, batch: int = BATCH, repeats: int = 6) -> float:
    """Clips/s of the network alone on batches of `batch`, median of repeats (after a warm-up)."""
    extractor = build(name, weights)
    size = extractor.preprocessing.crop
    clips = torch.randn(batch, 3, SEGMENT, size, size)
    extractor.extract(clips)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        extractor.extract(clips)
        times.append(time.perf_counter() - started)
    return batch / float(np.median(times))


# ---------------------------------------------------------------- 2. workflow runs


def workdir_for(tree: Path, folder: Path, dataset: dict, extractors: dict, extraction: dict | None) -> Path:
    folder.mkdir(parents=True)
    for name in WORKFLOW_FILES:
        source = tree / name
        (shutil.copytree if source.is_dir() else shutil.copy2)(source, folder / name)
    config = yaml.safe_load((folder / "config" / "config.yaml").read_text())
    config["datasets"] = {"bench": dataset}
    config["extractors"].update(extractors)
    if extraction is not None:
        config["extraction"] = extraction
    (folder / "config" / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return folder


def snakemake(workdir: Path, tree: Path, target: str, timeout: float = 3600) -> float:
    env = dict(os.environ, PYTHONPATH=str(tree / "src"))
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "2", target], cwd=workdir, env=env,
                            capture_output=True, text=True, timeout=timeout)  # fmt: skip
    if result.returncode != 0:
        raise RuntimeError(f"snakemake {target} in {workdir} failed:\n{result.stderr[-4000:]}")
    return time.perf_counter() - started


def extraction_run(tree: Path, folder: Path, manifest: Path, name: str, weights: str, extraction) -> dict:
    dataset = {"format": "generic", "manifest": str(manifest), "extractor": name, "training": "small"}
    extractors = {name: {"weights": weights, "precision": PRECISION[name], "batch_size": BATCH, "dtype": "float16"}}
    workdir = workdir_for(tree, folder, dataset, extractors, extraction)
    snakemake(workdir, tree, "results/bench/segments.tsv")
    load_before = load()
    seconds = snakemake(workdir, tree, f"results/bench/features/{name}.h5")
    logs = sorted((workdir / "logs/bench/extract" / name).glob("*.log"))
    network = sum(_network_seconds(log) for log in logs) if extraction is not None else None
    inside = network if extraction is not None else sum(_extract_video_seconds(log) for log in logs)
    rss = [_benchmark_row(tsv) for tsv in (workdir / "benchmarks/rules/bench/extract" / name).glob("*.tsv")]
    return {"seconds": seconds, "network": network, "inside": inside, "load": f"{load_before} -> {load()}",
            "jobs": len(rss),
            "max_rss": max(r["max_rss"] for r in rss), "max_pss": max(r["max_pss"] for r in rss)}  # fmt: skip


def _network_seconds(log: Path) -> float:
    found = re.findall(r"clips in [0-9.]+ s \([0-9.]+ clips/s\), network ([0-9.]+) s", log.read_text())
    return float(found[-1]) if found else 0.0


def _extract_video_seconds(log: Path) -> float:
    """Seconds a per-video job spent in extract_video (decode and network), from its log line."""
    found = re.findall(r": \d+ segments \(\d+ frames\) in ([0-9.]+) s", log.read_text())
    return float(found[-1]) if found else 0.0


def _benchmark_row(tsv: Path) -> dict:
    with open(tsv) as handle:
        row = next(csv.DictReader(handle, delimiter="\t"))
    return {key: float(row[key]) for key in ("s", "max_rss", "max_pss")}


def bench_workflow(args, root: Path, manifest: Path, baseline: Path, weights: dict, rates: dict) -> dict:
    videos, clips = args.videos, args.videos * args.segments
    print(f"\n2. Whole-workflow extraction of {videos} videos x {args.segments} segments ({clips} clips), "
          "segment index done beforehand, merge included. in-job: seconds inside the extraction code (per-video "
          "jobs: extract_video, decode + network; shards: the network alone); "
          "fixed = (wall - in-job) / videos")  # fmt: skip
    print(f"  {'extractor':11s} {'jobs':>10s} {'wall s':>8s} {'in-job s':>9s} {'fixed s/video':>14s} "
          f"{'in-job/wall':>12s} {'model-only/wall':>16s}  load before -> after")  # fmt: skip
    results = {}
    for name in args.extractors:
        model_seconds = clips / rates[name]
        for label, tree, extraction in (("per-video", baseline, None), ("shards", REPO, {})):
            run = extraction_run(tree, root / f"wf-{name}-{label}", manifest, name, weights[name], extraction)
            fixed = (run["seconds"] - run["inside"]) / videos
            print(f"  {name:11s} {label:>10s} {run['seconds']:8.1f} {run['inside']:9.1f} {fixed:14.2f} "
                  f"{run['inside'] / run['seconds']:12.0%} {model_seconds / run['seconds']:16.0%}  {run['load']}",
                  flush=True)  # fmt: skip
            results[(name, label)] = run
        speedup = results[(name, "per-video")]["seconds"] / results[(name, "shards")]["seconds"]
        print(f"  {name}: shards {speedup:.2f}x faster than per-video jobs", flush=True)
    return results


def bench_rss(args, root: Path, manifest: Path, weights: dict, many: dict) -> None:
    print("\n3. Peak memory of one shard job (Snakemake benchmark, summed over its processes), MiB")
    small = make_videos(root / "videos4", 4, args.segments)
    for name in args.extractors:
        few = extraction_run(REPO, root / f"wf-{name}-rss4", small, name, weights[name], {})
        big = many.get((name, "shards")) or extraction_run(
            REPO, root / f"wf-{name}-rss", manifest, name, weights[name], {}
        )
        print(
            f"  {name:11s} {args.videos} videos: RSS {big['max_rss']:.0f}, PSS {big['max_pss']:.0f};   "
            f"4 videos: RSS {few['max_rss']:.0f}, PSS {few['max_pss']:.0f}   (load {few['load']})",
            flush=True,
        )


# ---------------------------------------------------------------- 4. decoding


def bench_decode(manifest: Path, count: int = 12) -> None:
    from gclvad.extract.decoders import DecoderPool, DecodeTask, Finished
    from gclvad.extract.networks.i3d import I3D_PREPROCESSING
    from gclvad.extract.networks.resnext import RESNEXT_PREPROCESSING

    videos = sorted(manifest.parent.glob("*.mp4"))[:count]
    print(f"\n4. Decoding {len(videos)} videos with decoder processes (decode + resize + normalise), frames/s")
    for label, preprocessing in (("112 px", RESNEXT_PREPROCESSING), ("224 px", I3D_PREPROCESSING)):
        rates = []
        for workers in (1, 2):
            with DecoderPool(workers, max_queued=16) as pool:
                tasks = [DecodeTask(i, v, preprocessing, SEGMENT) for i, v in enumerate(videos)]
                started = time.perf_counter()
                frames = sum(m.frames for m in pool.decode(tasks) if isinstance(m, Finished))
                rates.append(frames / (time.perf_counter() - started))
        print(
            f"  {label}: 1 decoder {rates[0]:6.0f}, 2 decoders {rates[1]:6.0f} ({rates[1] / rates[0]:.2f}x)  "
            f"load {load()}",
            flush=True,
        )


# ---------------------------------------------------------------- 5. batch size and bits


def bench_bits(weights: dict) -> None:
    print("\n5. Features of the same clip in forward passes of different sizes (max |difference| / max |feature|)")
    for name in ("resnext101", "i3d"):
        for precision in ("fp32", "bf16"):
            from gclvad.extract.networks.registry import build_extractor

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                extractor = build_extractor(name, weights[name], "cpu", precision)
            size = extractor.preprocessing.crop
            clips = torch.randn(8, 3, SEGMENT, size, size, generator=torch.Generator().manual_seed(0))
            full = extractor.extract(clips[:BATCH])
            scale = float(full.abs().max())
            cells = []
            for n in (1, 2, 3, 8):
                other = extractor.extract(clips[:n])[: min(n, BATCH)]
                cells.append(f"N={n}: {float((other - full[: len(other)]).abs().max()) / scale:.1e}")
            companions = extractor.extract(torch.cat([clips[:1], clips[5:8]]))[0]
            cells.append(f"other companions, N={BATCH}: {float((companions - full[0]).abs().max()) / scale:.1e}")
            print(f"  {name} {precision} vs N={BATCH}: " + ", ".join(cells), flush=True)


# ---------------------------------------------------------------- 7. decoders against threads


def bench_split(root: Path, videos: int, segments: int, rounds: int, name: str = "i3d") -> None:
    from gclvad.extract.shards import VideoJob, extract_videos

    cores = os.cpu_count() or 1
    splits = [(k, t) for k in range(1, cores + 1) for t in range(1, cores + 1)]
    sources = sorted(make_videos(root / "split-videos", videos, segments).parent.glob("*.mp4"))
    print(f"\n7. One shard job of {videos} videos x {segments} segments ({name} {PRECISION[name]}, batch {BATCH}): "
          f"clips/s for K decoders x T torch threads on {cores} cores, best of {rounds} rounds")  # fmt: skip
    best = dict.fromkeys(splits, 0.0)
    for attempt in range(rounds):
        for decoders, threads in splits:
            out = root / f"split-{attempt}-{decoders}-{threads}"
            jobs = [VideoJob(source.stem, source, out / f"{source.stem}.h5") for source in sources]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                report = extract_videos(jobs, extractor=name, weights="package", precision=PRECISION[name],
                                        device="cpu", batch_size=BATCH, decoders=decoders, threads=threads,
                                        progress=False)  # fmt: skip
            rate = report.clips / report.seconds
            best[decoders, threads] = max(best[decoders, threads], rate)
            print(f"  round {attempt}: K={decoders} T={threads}: {rate:.2f} clips/s  load {load()}", flush=True)
    fastest = max(best, key=best.get)
    for (decoders, threads), rate in best.items():
        print(f"  K={decoders} T={threads}: best {rate:.2f} clips/s ({rate / best[fastest]:.0%} of the fastest)")
    print(f"  fastest: K={fastest[0]} decoders, T={fastest[1]} threads", flush=True)
    torch.set_num_threads(cores)


# ---------------------------------------------------------------- 6. the demo


def bench_demo(root: Path, baseline: Path, repeats: int) -> None:
    print("\n6. `make demo` (snakemake --cores 2 results/demo/auc.json, shipped config), wall s")
    for attempt in range(repeats):
        cells = []
        for label, tree in (("per-video", baseline), ("shards", REPO)):
            workdir = root / f"demo-{label}-{attempt}"
            workdir.mkdir(parents=True)
            for name in WORKFLOW_FILES:
                source = tree / name
                (shutil.copytree if source.is_dir() else shutil.copy2)(source, workdir / name)
            before = load()
            cells.append(f"{label} {snakemake(workdir, tree, 'results/demo/auc.json'):.1f} (load {before})")
        print("  " + ";  ".join(cells), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=48)
    parser.add_argument("--segments", type=int, default=10)
    parser.add_argument("--extractors", nargs="+", default=["i3d", "resnext101"])
    parser.add_argument("--baseline-ref", default="491ece4", help="a commit with per-video extraction jobs")
    parser.add_argument("--sections", default="model,workflow,rss,decode,bits,demo")
    parser.add_argument("--demo-repeats", type=int, default=1)
    parser.add_argument("--split-videos", type=int, default=4)
    parser.add_argument("--split-rounds", type=int, default=2)
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it (default: a temporary one)")
    args = parser.parse_args()
    sections = set(args.sections.split(","))
    print(describe())
    root = args.keep or Path(tempfile.mkdtemp(prefix="shard-bench-"))
    try:
        if sections == {"split"}:  # needs neither the baseline nor the big video set
            return bench_split(root, args.split_videos, 4, args.split_rounds)
        baseline = baseline_tree(args.baseline_ref, root / "baseline")
        manifest = make_videos(root / "videos", args.videos, args.segments)
        weights = {"i3d": "package", "resnext101": str(hara_checkpoint(root / "resnext-101-kinetics.pth"))}
        print(f"baseline: {args.baseline_ref}; {args.videos} videos of {args.segments * SEGMENT} frames, "
              f"{SIZE[1]}x{SIZE[0]} H.264, in {root}")  # fmt: skip
        rates = {}
        if sections & {"model", "workflow"}:
            print(f"\n1. Model alone, batch {BATCH}, clips/s (median of 6 passes)")
            for name in args.extractors:
                rates[name] = model_rate(name, weights[name])
                print(f"  {name} {PRECISION[name]}: {rates[name]:.2f}  load {load()}", flush=True)
        many = bench_workflow(args, root, manifest, baseline, weights, rates) if "workflow" in sections else {}
        if "rss" in sections:
            bench_rss(args, root, manifest, weights, many)
        if "decode" in sections:
            bench_decode(manifest)
        if "bits" in sections:
            bench_bits(weights)
        if "demo" in sections:
            bench_demo(root, baseline, args.demo_repeats)
        if "split" in sections:
            bench_split(root, args.split_videos, 4, args.split_rounds)
        print(f"\nload average at end: {load()}")
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
