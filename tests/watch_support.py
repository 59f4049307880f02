"""Helpers of the live-scoring tests: a tiny extractor, tiny trained runs, a UDP stream sender.

Import from tests (pytest puts tests/ on sys.path): ``from watch_support import ...``. The
sender is in stream_sender.py, which imports nothing heavy, so that it starts at once.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import av
import numpy as np
import pandas as pd
import torch
from torch import nn

from gclvad.decode.preprocessing import Preprocessing
from gclvad.extract.networks.base import TorchExtractor
from gclvad.extract.one_video import extract_video
from gclvad.features.files import merge_video_features
from gclvad.gcl.config import Stage
from gclvad.stages.preparation import index_dataset
from gclvad.stages.settings import run_settings, stage_params
from gclvad.stages.training import train_stage

SEGMENT = 16
TINY_PRESET = {
    "base": "small",
    "loop": {"epochs": 2},
    "pretrain_g": {"epochs": 3},
    "optimiser": {"min_steps_per_stage": 10},
    "architecture": {"g_hidden": [16, 8, 16], "d_hidden": [8]},
}
TINY_PREPROCESSING = Preprocessing(size=32, crop=32, scale=1.0 / 255.0, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))


def tiny_extractor() -> TorchExtractor:
    """A random (seeded) 3-D convolution + global pooling: 16-d features in milliseconds per segment."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        module = nn.Sequential(
            nn.Conv3d(3, 16, kernel_size=3, stride=2), nn.ReLU(), nn.AdaptiveAvgPool3d(1), nn.Flatten()
        )
    return TorchExtractor("tiny3d", module, 16, TINY_PREPROCESSING, "random", torch.device("cpu"), channels_last=False)


def train_run(
    folder: Path,
    extractor,
    videos: dict[str, tuple[Path, str]],
    variant: str = "GCL_B",
    weights: str | None = None,
    crops: str = "mean",
    frame_step: int = 1,
) -> Path:
    """Extract `videos` (id -> (path, split)) with `extractor`, train `variant`'s final stage
    with the package's pipeline functions (as the workflow's rules do), and return the run
    folder, laid out as the workflow lays it out (results/demo/<extractor>/<variant>/seed0).
    weights: what the run records as its extractor weights (default "random", or "file").
    crops: how the run uses features of several crops a segment (the extractor's crop mode).
    frame_step: every k-th frame feeds a segment, in extraction and in what the run records."""
    dataset = folder / "results" / "demo"
    manifest = dataset / "videos" / "videos.csv"
    manifest.parent.mkdir(parents=True)
    pd.DataFrame(
        [(video, str(path), split) for video, (path, split) in videos.items()], columns=["video", "path", "split"]
    ).to_csv(manifest, index=False)
    index = dataset / "segments.tsv"
    index_dataset(
        spec={"format": "generic", "manifest": str(manifest)},
        segment_length=SEGMENT,
        on_bad_video="stop",
        out_path=index,
        frame_step=frame_step,
    )
    parts = {}
    for video, (path, _) in videos.items():
        parts[video] = dataset / "features" / extractor.name / f"{video}.h5"
        extract_video(
            extractor, path, parts[video], segment_length=SEGMENT, batch_size=4, dtype="float16", frame_step=frame_step
        )
    merged = dataset / "features" / f"{extractor.name}.h5"
    merge_video_features(parts, merged)
    run = dataset / extractor.name / variant / "seed0"
    settings = run_settings(TINY_PRESET, variant)
    stage = Stage.GCL_LOOP if settings.gcl.method == "gcl" else Stage.AUTOENCODER
    weights = weights or ("random" if extractor.weights_random else "file")
    train_stage(
        stage=stage,
        params=stage_params(settings, stage, 0),
        features_path=merged,
        index_path=index,
        train_on=["train"],
        out_path=run / "models.pt",
        checkpoint_path=run / f"{stage}.ckpt",
        epoch_scores_path=run / "epoch_scores.npz",
        log_path=run / "training_log.tsv",
        crops=crops,
        metadata={
            "extractor": {
                "name": extractor.name,
                "weights": weights,
                "precision": "fp32",
                "batch_size": 4,
                "dtype": "float16",
                "crops": extractor.preprocessing.crops,
            },
            "crops": crops,
            "segment_length": SEGMENT,
            "variant": variant,
            **({"frame_step": frame_step} if frame_step != 1 else {}),
        },
    )
    return run


# ---------------------------------------------------------------- videos and streams


def write_ts(path: Path, frames: Iterable[np.ndarray], fps: int = 25, gop: int = 8, codec: str = "mpeg2video") -> Path:
    """uint8 (H, W, 3) frames as an MPEG-2 video in MPEG-TS, what a camera would send (MPEG-2
    knows only the broadcast frame rates; codec="mpeg4" takes any)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format="mpegts") as container:
        stream = None
        for pixels in frames:
            if stream is None:
                # A fixed quantiser (3; 118 = FFmpeg's QP-to-lambda factor), as the demo videos use.
                options = {"flags": "+qscale", "global_quality": str(3 * 118), "g": str(gop)}
                stream = container.add_stream(codec, rate=fps, options=options)
                stream.height, stream.width, stream.pix_fmt = pixels.shape[0], pixels.shape[1], "yuv420p"
                stream.thread_count = 1
            container.mux(stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")))
        container.mux(stream.encode(None))
    return Path(path)


def textured_frames(
    count: int, size: tuple[int, int], seed: int = 0, planted: range = range(0)
) -> Iterator[np.ndarray]:
    """A moving random texture (normal footage); frames in `planted` are a flat bright magenta
    (a very different picture, so the networks' scores jump there). One frame at a time."""
    rng = np.random.default_rng(seed)
    height, width = size
    texture = rng.integers(40, 200, (height * 2, width * 2, 3), dtype=np.uint8)
    for i in range(count):
        dy, dx = (2 * i) % height, (3 * i) % width
        frame = texture[dy : dy + height, dx : dx + width]
        yield np.full_like(frame, (255, 0, 255)) if i in planted else np.ascontiguousarray(frame)


def wait_until_listening(port: int, timeout_s: float = 60.0) -> None:
    """Wait until a UDP socket is bound to `port` on this machine (Linux: /proc/net/udp), so that
    a sender started now loses none of its first packets."""
    wanted = f":{port:04X}"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for table in ("/proc/net/udp", "/proc/net/udp6"):
            lines = Path(table).read_text().splitlines()[1:] if Path(table).exists() else []
            if any(line.split()[1].endswith(wanted) for line in lines):
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on UDP port {port} after {timeout_s} s")
