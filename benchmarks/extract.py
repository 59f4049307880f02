"""Feature-extraction speed of ResNeXt-101 (Hara et al.) on this machine, and against the classic pipeline.

Measures, with random weights (speed does not depend on the weights' values):
  1. the model alone, clips/s, fp32 as published vs fp32/bf16 with BatchNorm folded and
     channels_last_3d, at batch 1/4/8; relative error of bf16 features vs fp32;
  2. end to end on a generated 320x240 H.264 video (decode + resize + normalise + model +
     HDF5 write, with decoding in a background thread), and decoding alone, to say which bounds;
  3. peak RSS of a whole extraction for a short video and one 10x longer (own subprocesses);
  4. the classic pipeline of Hara's video-classification-3d-cnn-pytorch on the same video:
     ffmpeg CLI dumps JPEG frames, PIL loads and scales (shorter side 112, centre crop), fp32
     model at batch 1; and the ratio ours / classic.

Usage: .venv/bin/python benchmarks/extract.py [--clips 16] [--seconds 20] [--device auto]
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import av
import numpy as np
import torch
from machine import cpu_model

from gclvad.decode.video import iter_segments
from gclvad.device import resolve_device
from gclvad.extract.networks.base import RandomWeightsWarning, TorchExtractor
from gclvad.extract.networks.resnext import RESNEXT_PREPROCESSING, ResNeXt3D
from gclvad.extract.one_video import extract_video

warnings.simplefilter("ignore", RandomWeightsWarning)
SEGMENT = 16
FPS = 30
SIZE = (240, 320)  # height, width: UCF-Crime's frame size


# ---------------------------------------------------------------- machine and inputs


def print_machine(device: torch.device) -> None:
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    print(f"CPU: {cpu_model()}, {os.cpu_count()} cores, avx512_bf16: {'avx512_bf16' in flags}")
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, PyAV {av.__version__}, device {device}")
    if device.type == "cuda":
        print(f"GPU: {torch.cuda.get_device_name(device)}")
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())} (machine shared)")


def make_video(path: Path, seconds: float, seed: int = 0) -> Path:
    """A 320x240 30 fps H.264 video with texture that moves (so it does not compress to nothing)."""
    rng = np.random.default_rng(seed)
    height, width = SIZE
    texture = rng.integers(0, 256, (height * 2, width * 2, 3), dtype=np.uint8)
    texture = (texture.astype(np.float32) * 0.3 + 90).astype(np.uint8)
    yy, xx = np.mgrid[0:height, 0:width]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=FPS, options={"preset": "veryfast", "crf": "23"})
        stream.height, stream.width, stream.pix_fmt = height, width, "yuv420p"
        for i in range(int(seconds * FPS)):
            dy, dx = (i * 2) % height, (i * 3) % width
            frame = texture[dy : dy + height, dx : dx + width].copy()
            blob = ((xx - (i * 4) % width) ** 2 + (yy - height // 2) ** 2) < 900  # a moving disc
            frame[blob] = (230, 60, 40)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode(None))
    return path


def video_clips(video: Path, count: int) -> torch.Tensor:
    clips = [s.clip for _, s in zip(range(count), iter_segments(video, RESNEXT_PREPROCESSING, SEGMENT), strict=False)]
    while len(clips) < count:
        clips += clips[: count - len(clips)]
    return torch.stack(clips)


# ---------------------------------------------------------------- 1. model alone


def resnext_extractor(network: ResNeXt3D, device, precision="fp32", fold=True, channels_last=True):
    return TorchExtractor(
        "resnext101",
        copy.deepcopy(network),
        2048,
        RESNEXT_PREPROCESSING,
        "random",
        device,
        precision,
        bf16_mode="cast",
        fold_batchnorm=fold,
        channels_last=channels_last,
    )


def clips_per_second(extractor, clips: torch.Tensor, batch: int, total: int) -> float:
    """Clips/s from the median time of repeated batches (robust to other jobs on a shared machine)."""
    extractor.extract(clips[:batch])  # warm-up: oneDNN builds its kernels on first use
    batch_clips = clips[:batch]
    times = []
    for _ in range(max(3, -(-total // batch))):
        started = time.perf_counter()
        extractor.extract(batch_clips)
        if extractor.device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - started)
    return batch / float(np.median(times))


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


def bench_model(network, clips, device, total) -> dict:
    variants = {
        "fp32 as published": dict(precision="fp32", fold=False, channels_last=False),
        "fp32 folded+CL3d": dict(precision="fp32"),
        "bf16 folded+CL3d": dict(precision="bf16"),
    }
    print("\n1. ResNeXt-101 alone (16x112x112 clips/s, median of repeated batches)")
    print(f"  {'variant':22s}" + "".join(f"  batch {b:<3d}" for b in (1, 4, 8)))
    rates, features = {}, {}
    for label, options in variants.items():
        extractor = resnext_extractor(network, device, **options)
        row = [clips_per_second(extractor, clips, b, max(total, b)) for b in (1, 4, 8)]
        rates[label] = row
        features[label] = extractor.extract(clips[:8])
        print(f"  {label:22s}" + "".join(f"  {r:9.1f}" for r in row), flush=True)
        del extractor
    reference = features["fp32 as published"]
    for label in ("fp32 folded+CL3d", "bf16 folded+CL3d"):
        print(
            f"  relative error of {label} features vs fp32 as published: "
            f"{relative_error(features[label], reference):.2e}"
        )
    return rates


# ---------------------------------------------------------------- 2. end to end


def decode_rate(video: Path) -> tuple[float, int]:
    started, count = time.perf_counter(), 0
    for _ in iter_segments(video, RESNEXT_PREPROCESSING, SEGMENT):
        count += 1
    return count / (time.perf_counter() - started), count


def bench_end_to_end(network, video: Path, device, workdir: Path) -> dict:
    print(f"\n2. End to end on {video.name} ({SIZE[1]}x{SIZE[0]} H.264, {FPS} fps): decode + preprocess + model + HDF5")
    rate, segments = decode_rate(video)
    print(f"  decode + resize + normalise alone: {rate:.1f} clips/s ({segments} clips)")
    results = {"decode": rate}
    for precision, batch in (("fp32", 4), ("bf16", 4), ("bf16", 8)):
        extractor = resnext_extractor(network, device, precision)
        extractor.extract(torch.zeros(1, 3, SEGMENT, 112, 112))  # warm-up outside the timing
        out = workdir / f"e2e-{precision}-{batch}.h5"
        summary = extract_video(extractor, video, out, SEGMENT, batch, "float16")
        results[(precision, batch)] = summary["segments"] / summary["seconds"]
        print(
            f"  {precision} batch {batch}: {results[(precision, batch)]:.1f} clips/s "
            f"({summary['segments']} clips in {summary['seconds']:.1f} s)",
            flush=True,
        )
        del extractor
    return results


# ---------------------------------------------------------------- 3. peak memory


def peak_rss_mib() -> float:
    """This process's peak resident memory. VmHWM belongs to the address space made by exec;
    getrusage's ru_maxrss would instead carry over the parent's peak across fork + exec."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_extract(video: Path, device: str, precision: str, batch: int) -> None:
    """Subprocess body: one whole extraction, then the process's peak RSS as JSON."""
    from gclvad.extract.networks.resnext import build_resnext101

    extractor = build_resnext101("random", device, precision)
    with tempfile.TemporaryDirectory() as folder:
        summary = extract_video(extractor, video, Path(folder) / "f.h5", SEGMENT, batch, "float16")
    print(json.dumps({"peak_rss_mib": peak_rss_mib(), "segments": summary["segments"], "seconds": summary["seconds"]}))


def peak_rss(video: Path, device: str) -> dict:
    command = [sys.executable, __file__, "--child", str(video), "--device", device]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


# ---------------------------------------------------------------- 4. the classic pipeline


def classic_clip(frame_files: list[Path]) -> torch.Tensor:
    """Hara's spatial transform: Scale(112) (shorter side, PIL bilinear), CenterCrop(112),
    ToTensor without /255, minus the mean."""
    from PIL import Image

    mean = torch.tensor(RESNEXT_PREPROCESSING.mean).view(3, 1, 1)
    frames = []
    for path in frame_files:
        with Image.open(path) as image:
            image = image.convert("RGB")
            w, h = image.size
            ow, oh = (112, int(112 * h / w)) if w < h else (int(112 * w / h), 112)
            image = image.resize((ow, oh), Image.BILINEAR)
            left, top = round((ow - 112) / 2.0), round((oh - 112) / 2.0)
            image = image.crop((left, top, left + 112, top + 112))
            array = torch.from_numpy(np.asarray(image, dtype=np.float32).copy()).permute(2, 0, 1)
            frames.append(array - mean)
    return torch.stack(frames, dim=1)  # (3, T, 112, 112)


def bench_classic(network, video: Path, device, workdir: Path) -> float:
    print("\n4. Classic pipeline (ffmpeg -> JPEG files -> PIL -> fp32 model, batch 1)")
    if shutil.which("ffmpeg") is None:
        print("  ffmpeg CLI not found (apt-get install -y ffmpeg); skipped")
        return float("nan")
    model = resnext_extractor(network, device, "fp32", fold=False, channels_last=False)
    model.extract(torch.zeros(1, 3, SEGMENT, 112, 112))
    frames_dir = workdir / "tmp_frames"
    started = time.perf_counter()
    frames_dir.mkdir()
    subprocess.run(["ffmpeg", "-loglevel", "error", "-i", str(video), str(frames_dir / "image_%06d.jpg")], check=True)
    files = sorted(frames_dir.iterdir())
    dumped = time.perf_counter() - started
    clips = 0
    for first in range(0, len(files), SEGMENT):
        chunk = files[first : first + SEGMENT]
        chunk = (chunk * SEGMENT)[:SEGMENT]  # Hara's LoopPadding for the last clip
        model.extract(classic_clip(chunk).unsqueeze(0))
        clips += 1
    shutil.rmtree(frames_dir)
    seconds = time.perf_counter() - started
    print(
        f"  {clips} clips in {seconds:.1f} s ({dumped:.1f} s of it ffmpeg writing JPEGs): {clips / seconds:.1f} clips/s"
    )
    return clips / seconds


# ---------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clips", type=int, default=16, help="clips per model-only measurement")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the generated test video")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child_extract(args.child, args.device, "bf16", 4)
        return

    device = resolve_device(args.device)
    print_machine(device)
    torch.manual_seed(0)
    network = ResNeXt3D().eval()
    network.last_fc = False
    with tempfile.TemporaryDirectory() as folder:
        workdir = Path(folder)
        video = make_video(workdir / "short.mp4", args.seconds)
        long_video = make_video(workdir / "long.mp4", 10 * args.seconds, seed=1)
        model = bench_model(network, video_clips(video, 8), device, args.clips)
        e2e = bench_end_to_end(network, video, device, workdir)
        print("\n3. Peak RSS of a whole extraction (bf16, batch 4, own process)")
        for label, path in (("short", video), ("10x longer", long_video)):
            report = peak_rss(path, str(device))
            print(
                f"  {label:10s} ({report['segments']:4d} clips): {report['peak_rss_mib']:.0f} MiB, "
                f"{report['segments'] / report['seconds']:.1f} clips/s",
                flush=True,
            )
        classic = bench_classic(network, video, device, workdir)

    ours = e2e[("bf16", 4)]
    best_model = max(model["bf16 folded+CL3d"])
    print("\nSummary")
    print(
        f"  ours end to end (bf16, batch 4): {ours:.1f} clips/s; classic: {classic:.1f} clips/s; "
        f"ratio {ours / classic:.1f}x"
    )
    bound = "decoding" if e2e["decode"] < best_model else "the model"
    print(f"  bound: {bound} (decode alone {e2e['decode']:.1f} clips/s, model alone up to {best_model:.1f} clips/s)")
    print(f"  load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
