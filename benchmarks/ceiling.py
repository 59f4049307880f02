"""The ceiling of this machine's arithmetic and how near feature extraction comes to it.

Sections (all by default; choose with --sections):
  matmul     sustained 2048x2048 matmul rate on torch's threads, best 1 s window of --seconds:
             fp32 always, bf16 and int8 where the CPU has them natively (avx512_bf16/amx_bf16,
             avx512_vnni/amx_int8); for fp32 also a large 3x3x3 convolution, and the fp32
             ceiling is the higher of the two (oneDNN's convolutions can outrun its matrix
             product, and extraction is convolutions);
  flops      each extractor's FLOPs per clip (torch.utils.flop_counter on one 16-frame clip at
             its native crop, BatchNorm folded as it runs), counted, not quoted;
  network    achieved GFLOP/s of a bare forward (batch 4, best of 3) and its fraction of the
             ceiling of the same precision;
  shard      achieved GFLOP/s of gclvad.extract.shards.extract_videos on a few short synthetic
             videos (wall, and network time alone), fraction of the ceiling;
  avx2       what bf16 costs without native bf16: I3D fp32 and bf16 forward in a subprocess with
             ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 (the kernels of an AVX2-only CPU);
  tolerance  relative difference of I3D bf16 and fp32 features (package weights) of the clips of
             a synthetic street video: what scoring with a precision other than the run's allows.

    .venv/bin/python benchmarks/ceiling.py [--sections matmul,flops,...] [--seconds 3]
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch
from machine import describe

from gclvad.extract.networks import speed
from gclvad.extract.networks.registry import EXTRACTOR_NAMES, build_extractor

SIZE = 2048
FRAMES = 16
BATCH = 4
AVX2_ENV = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}
# Random weights are the point here (speed does not depend on the values): no warning per build.
logging.getLogger("gclvad.extract.networks.base").setLevel(logging.ERROR)


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def build(name: str, precision: str = "fp32"):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return build_extractor(name, "package" if name == "i3d" else "random", "cpu", precision)


# ---------------------------------------------------------------- 1. the ceiling


def matmul_rate(dtype: torch.dtype, seconds: float) -> float:
    """Best GFLOP/s of 1 s windows of back-to-back SIZE x SIZE products over `seconds`."""
    if dtype == torch.int8:
        a = torch.randint(-128, 127, (SIZE, SIZE), dtype=torch.int8)
        product = lambda: torch._int_mm(a, a)  # noqa: E731 (int8 x int8 -> int32)
    else:
        a = torch.randn(SIZE, SIZE).to(dtype)
        out = torch.empty_like(a)
        product = lambda: torch.mm(a, a, out=out)  # noqa: E731
    return best_rate(product, 2 * SIZE**3, seconds)


def best_rate(work, flops: int, seconds: float) -> float:
    """Best GFLOP/s of 1 s windows of back-to-back calls of `work` (`flops` each) over `seconds`."""
    work()
    best, deadline = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        count, started = 0, time.perf_counter()
        while time.perf_counter() - started < 1.0:
            work()
            count += 1
        best = max(best, flops * count / (time.perf_counter() - started) / 1e9)
    return best


def conv_rate(dtype: torch.dtype, seconds: float) -> float:
    """Best GFLOP/s of 1 s windows of a large 3x3x3 convolution (192 -> 192 channels on 4 clips of
    8x28x28, an Inception-sized layer): oneDNN's convolutions can outrun its matrix product."""
    conv = torch.nn.Conv3d(192, 192, 3, padding=1).eval().to(dtype)
    batch = torch.randn(4, 192, 8, 28, 28).to(dtype)
    with torch.inference_mode():
        return best_rate(lambda: conv(batch), speed.forward_flops(conv, batch), seconds)


def fp32_ceiling(seconds: float) -> tuple[float, float]:
    """(matmul, convolution) fp32 GFLOP/s: the ceiling is the higher of the two."""
    return matmul_rate(torch.float32, seconds), conv_rate(torch.float32, seconds)


def ceilings(seconds: float) -> dict[str, float]:
    flags = speed.cpu_flags()
    matmul, conv = fp32_ceiling(seconds)
    print(f"\n  fp32 3x3x3 convolution: {conv:.1f} GFLOP/s, matmul {matmul:.1f}: the ceiling is the higher")
    rates = {"fp32": max(matmul, conv)}
    if speed.cpu_has_native_bf16():
        rates["bf16"] = matmul_rate(torch.bfloat16, seconds)
    if {"avx512_vnni", "amx_int8"} & flags:
        try:
            rates["int8"] = matmul_rate(torch.int8, seconds)
        except RuntimeError as error:  # torch._int_mm not built for this CPU
            print(f"  int8: not measured ({error})")
    print(f"\n1. Ceiling: {SIZE}x{SIZE} matmul on {torch.get_num_threads()} threads, best 1 s window of {seconds:g} s")
    for label, rate in rates.items():
        print(f"  {label:5s} {rate:8.1f} G{'OP' if label == 'int8' else 'FLOP'}/s  load {load()}", flush=True)
    return rates


# ---------------------------------------------------------------- 2. FLOPs, 3. forward


def clip_flops() -> dict[str, int]:
    print(f"\n2. FLOPs per clip (FlopCounterMode, one {FRAMES}-frame clip at the native crop, BN folded)")
    counted = {}
    for name in EXTRACTOR_NAMES:
        extractor = build(name)
        counted[name] = extractor.clip_flops(FRAMES)
        print(f"  {name:12s} crop {extractor.preprocessing.crop}: {counted[name] / 1e9:7.1f} GFLOP", flush=True)
    return counted


def forward_seconds(extractor, clips: torch.Tensor, repeats: int = 3) -> float:
    extractor.extract(clips)  # warm-up: oneDNN picks its kernels on the first call per shape
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        extractor.extract(clips)
        best = min(best, time.perf_counter() - started)
    return best


def bench_network(flops: dict[str, int], rates: dict[str, float], names: list[str]) -> None:
    print(f"\n3. Bare forward, batch {BATCH}, best of 3: achieved GFLOP/s and fraction of the same precision's ceiling")
    for name in names:
        for precision in [p for p in ("fp32", "bf16") if p in rates]:
            extractor = build(name, precision)
            crop = extractor.preprocessing.crop
            clips = torch.randn(BATCH, 3, FRAMES, crop, crop)
            achieved = flops[name] * BATCH / forward_seconds(extractor, clips) / 1e9
            print(f"  {name:12s} {precision}: {achieved:7.1f} GFLOP/s = {achieved / rates[precision]:5.1%} of "
                  f"{rates[precision]:.0f}  load {load()}", flush=True)  # fmt: skip


# ---------------------------------------------------------------- 4. the shard job


def bench_shard(flops: dict[str, int], rates: dict[str, float], videos: int, segments: int) -> None:
    from shard_extract import make_videos

    from gclvad.extract.shards import VideoJob, extract_videos

    print(f"\n4. Shard extraction (extract_videos, decoders auto) of {videos} videos x {segments} segments, 320x240")
    with tempfile.TemporaryDirectory(prefix="ceiling-") as folder:
        manifest = make_videos(Path(folder) / "videos", videos, segments)
        sources = sorted(manifest.parent.glob("*.mp4"))
        for precision in [p for p in ("fp32", "bf16") if p in rates]:
            out = Path(folder) / f"features-{precision}"
            jobs = [VideoJob(s.stem, s, out / f"{s.stem}.h5") for s in sources]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                report = extract_videos(jobs, extractor="i3d", weights="package", precision=precision,
                                        device="cpu", batch_size=BATCH, progress=False)  # fmt: skip
            work = flops["i3d"] * report.clips / 1e9
            wall, network = work / report.seconds, work / report.network_seconds
            print(f"  i3d {precision}: {report.clips} clips in {report.seconds:.1f} s: {wall:.1f} GFLOP/s = "
                  f"{wall / rates[precision]:.1%} of the ceiling; network alone {network:.1f} GFLOP/s = "
                  f"{network / rates[precision]:.1%}  load {load()}", flush=True)  # fmt: skip


# ---------------------------------------------------------------- 5. bf16 without native support


def avx2_worker() -> None:
    """In the subprocess: I3D fp32 and bf16 seconds per forward of one clip under AVX2 kernels."""
    print(f"  capability {torch.backends.cpu.get_cpu_capability()}, native bf16 {speed.cpu_has_native_bf16()}")
    clip = torch.randn(1, 3, FRAMES, 224, 224)
    times = {p: forward_seconds(build("i3d", p), clip, repeats=2) for p in ("fp32", "bf16")}
    print(f"  i3d batch 1, best of 2: fp32 {times['fp32']:.2f} s, bf16 {times['bf16']:.2f} s: "
          f"bf16 costs {times['bf16'] / times['fp32']:.1f}x fp32  load {load()}", flush=True)  # fmt: skip


def bench_avx2() -> None:
    settings = " ".join(f"{k}={v}" for k, v in AVX2_ENV.items())
    print(f"\n5. bf16 without native support: I3D in a subprocess with {settings}")
    command = [sys.executable, __file__, "--sections", "avx2-worker"]
    subprocess.run(command, env={**os.environ, **AVX2_ENV}, check=True)
    print("  the same on this CPU's own kernels:")
    subprocess.run(command, check=True)


# ---------------------------------------------------------------- 6. bf16 against fp32 features


def bench_tolerance(segments: int) -> None:
    from shard_extract import make_videos

    from gclvad.decode.video import iter_segments

    print(f"\n6. I3D (package weights) bf16 vs fp32 features of the {segments} clips of a synthetic street video: "
          "||bf16 - fp32|| / ||fp32|| per clip")  # fmt: skip
    fp32, bf16 = build("i3d", "fp32"), build("i3d", "bf16")
    with tempfile.TemporaryDirectory(prefix="ceiling-") as folder:
        video = sorted(make_videos(Path(folder), 1, segments).parent.glob("*.mp4"))[0]
        differences = []
        for segment in iter_segments(video, fp32.preprocessing, FRAMES):
            clip = segment.clip[None]
            reference = fp32.extract(clip)
            differences.append(float(torch.linalg.vector_norm(bf16.extract(clip) - reference) /
                                     torch.linalg.vector_norm(reference)))  # fmt: skip
    differences.sort()
    print(f"  median {differences[len(differences) // 2]:.2e}, max {differences[-1]:.2e} over {len(differences)} "
          f"clips; random-noise clip: {speed_noise_difference(fp32, bf16):.2e}", flush=True)  # fmt: skip


def speed_noise_difference(fp32, bf16) -> float:
    clip = torch.randn(1, 3, FRAMES, 224, 224, generator=torch.Generator().manual_seed(0))
    reference = fp32.extract(clip)
    return float(torch.linalg.vector_norm(bf16.extract(clip) - reference) / torch.linalg.vector_norm(reference))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sections", default="matmul,flops,network,shard,avx2,tolerance")
    parser.add_argument("--seconds", type=float, default=3.0, help="matmul measuring time per precision")
    parser.add_argument("--networks", nargs="+", default=["i3d", "resnext101"], help="for the bare forward")
    parser.add_argument("--videos", type=int, default=3)
    parser.add_argument("--segments", type=int, default=4)
    args = parser.parse_args()
    sections = set(args.sections.split(","))
    if sections == {"avx2-worker"}:
        return avx2_worker()
    print(describe())
    rates = ceilings(args.seconds) if sections & {"matmul", "network", "shard"} else {}
    flops = clip_flops() if sections & {"flops", "network", "shard"} else {}
    if "network" in sections:
        bench_network(flops, rates, args.networks)
    if "shard" in sections:
        bench_shard(flops, rates, args.videos, args.segments)
    if "avx2" in sections:
        bench_avx2()
    if "tolerance" in sections:
        bench_tolerance(args.segments * 2)
    print(f"\nload average at end: {load()}")


if __name__ == "__main__":
    main()
