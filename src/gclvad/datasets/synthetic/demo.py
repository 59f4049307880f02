"""A synthetic surveillance dataset for the demo: pedestrians on a pavement, plus a few anomalies.

Every video shows a static textured pavement seen from above-front, with figures walking
at walking speed, nearly all in the video's direction of flow. A minority of videos of each
split contain one anomalous event, visible exactly during its annotated interval:
  "vehicle": a large red vehicle-like box drives across,
  "runner":  a figure crosses far faster than walking,
  "wrong_way": a figure runs against the flow.
The events are big, fast and colourful so a Kinetics-pretrained feature sees them, while the
normal scenes look alike across videos. Anomalous frames stay under 15 % of all frames.

`generate_demo` writes MPEG-4 (Part 2) .mp4 files, `videos.csv` (video, path, split, label; path
relative to the csv's folder) and `annotations.csv` (video, start_frame, end_frame; 0-based,
end exclusive). Everything is drawn with numpy slicing from one seed, so a seed always gives
the same videos. The drawing helpers (`paint`, `smooth_noise`, `Figure`, `wrap_position`), the
encoder (`encode_mpeg4`) and `write_dataset_files` are shared with `gclvad.datasets.synthetic.walkway`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from gclvad.atomic import atomic_path, write_atomic
from gclvad.datasets.base import TEST, TRAIN
from gclvad.errors import GclvadError

ANOMALY_KINDS = ("vehicle", "runner", "wrong_way")
MAX_ANOMALOUS_FRACTION = 0.15
# An event lasts this fraction of its video; with at most 2 in 5 videos anomalous
# (`anomalous_count`), anomalous frames stay at or under 0.3 * 0.4 = 12 % of all frames.
_EVENT_FRACTION = (0.2, 0.3)
_WALKING_SPEED = (1.0, 1.6)  # pixels per frame at width 320: about 1.4 m/s at 25 fps
_FIGURES_PER_VIDEO = (5, 8)


@dataclass(frozen=True)
class Event:
    """An anomaly visible during frames [start, end)."""

    kind: str
    start: int
    end: int


@dataclass(frozen=True)
class DemoVideo:
    name: str
    split: str
    event: Event | None


def anomalous_count(n_videos: int) -> int:
    """How many videos of a split get an event: about a third, always a strict minority."""
    return max(0, min((n_videos + 1) // 3, (n_videos - 1) // 2))


def _plan_split(rng: np.random.Generator, split: str, n_videos: int, frames: int) -> list[DemoVideo]:
    anomalous = set(rng.choice(n_videos, size=anomalous_count(n_videos), replace=False).tolist())
    kinds = iter(rng.permutation(np.resize(ANOMALY_KINDS, len(anomalous))).tolist())
    plans = []
    for i in range(n_videos):
        event = None
        if i in anomalous:
            length = max(2, round(rng.uniform(*_EVENT_FRACTION) * frames))
            start = int(rng.integers(0, frames - length + 1))
            event = Event(next(kinds), start, start + length)
        plans.append(DemoVideo(f"{split}_{i:03d}", split, event))
    return plans


# ---------------------------------------------------------------- drawing


def smooth_noise(rng: np.random.Generator, size: tuple[int, int], cell: int) -> np.ndarray:
    """Noise in [-1, 1] with blobs about `cell` pixels wide (bilinear upsampling of a coarse grid)."""
    height, width = size
    coarse = rng.uniform(-1, 1, (1, 1, height // cell + 2, width // cell + 2)).astype(np.float32)
    fine = F.interpolate(torch.from_numpy(coarse), size=(height, width), mode="bilinear", align_corners=False)
    return fine[0, 0].numpy()


def _walkway(size: tuple[int, int]) -> tuple[int, int]:
    """Rows [top, bottom) of the pavement the figures walk on."""
    height = size[0]
    return round(0.30 * height), round(0.95 * height)


def draw_background(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    """A static pavement scene (float32 (H, W, 3), 0..255): grass, kerb, paving slabs."""
    height, width = size
    top, bottom = _walkway(size)
    scene = np.empty((height, width, 3), np.float32)
    grass = np.array([70, 110, 60], np.float32) + rng.uniform(-8, 8, 3)
    paving = np.array([140, 136, 128], np.float32) + rng.uniform(-10, 10, 3)
    scene[:top] = grass
    scene[top:] = paving
    scene += 18 * smooth_noise(rng, size, max(4, width // 20))[..., None]
    scene += rng.normal(0, 4, (height, width, 1)).astype(np.float32)  # grain of the stone
    kerb = max(2, height // 60)
    scene[top - kerb : top] = 185
    # Joints between slabs: darker lines, rows every ~height/10, columns every ~width/8.
    row_step, col_step = max(6, height // 10), max(8, width // 8)
    scene[top + row_step : bottom : row_step] -= 35
    offset = int(rng.integers(0, col_step))
    scene[top:, offset::col_step] -= 35
    return np.clip(scene, 0, 255)


def paint(canvas: np.ndarray, top: float, left: float, height: float, width: float, colour, shape=None) -> None:
    """Fill a rectangle (or a boolean `shape` stretched to it), clipped to the canvas."""
    top_row, left_col = round(top), round(left)
    h, w = max(1, round(height)), max(1, round(width))
    t0, l0 = max(top_row, 0), max(left_col, 0)
    t1, l1 = min(top_row + h, canvas.shape[0]), min(left_col + w, canvas.shape[1])
    if t0 >= t1 or l0 >= l1:
        return
    if shape is None:
        canvas[t0:t1, l0:l1] = colour
        return
    rows = (np.arange(t0, t1) - top_row) * shape.shape[0] // h
    cols = (np.arange(l0, l1) - left_col) * shape.shape[1] // w
    mask = shape[np.ix_(rows, cols)]
    canvas[t0:t1, l0:l1][mask] = colour


DISK = np.hypot(*np.meshgrid(np.arange(16) - 7.5, np.arange(16) - 7.5)) <= 8  # stretched to ellipses
SHADOW = np.float32(60)


@dataclass
class Figure:
    """A walker: its feet at row `foot` move along x; heights shrink towards the back."""

    x0: float
    foot: float
    speed: float  # pixels per frame, signed
    height: float
    shirt: np.ndarray
    trousers: np.ndarray
    skin: np.ndarray
    phase: float
    period: float  # frames per stride

    def draw(self, canvas: np.ndarray, t: float, x: float) -> None:
        h = self.height
        w = 0.32 * h
        swing = 0.22 * w * np.sin(2 * np.pi * t / self.period + self.phase)
        left = x - w / 2
        # Shadow first, so the figure stands on it.
        paint(canvas, self.foot - 0.06 * h, left - 0.1 * w, 0.1 * h, 1.3 * w, SHADOW, DISK)
        leg_top, leg_h = self.foot - 0.48 * h, 0.48 * h
        paint(canvas, leg_top, left + 0.05 * w + swing, leg_h, 0.4 * w, self.trousers)
        paint(canvas, leg_top, left + 0.55 * w - swing, leg_h, 0.4 * w, self.trousers)
        paint(canvas, self.foot - 0.85 * h, left, 0.4 * h, w, self.shirt)
        paint(canvas, self.foot - h, left + 0.15 * w, 0.17 * h, 0.7 * w, self.skin, DISK)


def _random_figure(rng: np.random.Generator, size: tuple[int, int], speed: float, nearest: float = 0.25) -> Figure:
    """A walker with feet in the front `1 - nearest` of the walkway's depth."""
    height, width = size
    top, bottom = _walkway(size)
    foot = rng.uniform(top + nearest * (bottom - top), bottom)
    depth = (foot - top) / (bottom - top)  # 0 at the back, 1 at the front
    along = rng.uniform()  # where on its loop the walker starts (see below)
    figure_height = height * (0.16 + 0.14 * depth) * rng.uniform(0.9, 1.1)
    return Figure(
        # Uniform over the whole wrap-around loop, off-screen margins included (`wrap_position`):
        # that is where walkers are at any later frame too. Starting them all on screen
        # made the first frames more crowded than the rest, and every video's first
        # segments scored anomalous, drifting down as walkers spread onto the margins.
        x0=-figure_height + along * (width + 2 * figure_height),
        foot=foot,
        speed=speed,
        height=figure_height,
        shirt=np.array([60, 70, 95], np.float32) + rng.uniform(-40, 40, 3),
        trousers=np.array([45, 45, 55], np.float32) + rng.uniform(-15, 15, 3),
        skin=np.array([200, 160, 130], np.float32) + rng.uniform(-30, 20, 1),
        phase=rng.uniform(0, 2 * np.pi),
        period=rng.uniform(14, 20),
    )


def wrap_position(x: float, width: int, margin: float) -> float:
    """Walkers leaving one side come back on the other after `margin` pixels off-screen, so
    the crowd stays the same size; positions lie in [-margin, width + margin)."""
    return (x + margin) % (width + 2 * margin) - margin


def _draw_vehicle(canvas: np.ndarray, x: float, size: tuple[int, int], colour: np.ndarray, direction: int) -> None:
    """A red van-like box (body, cabin facing `direction`, window, wheels) centred at column x."""
    height, width = size
    _top, bottom = _walkway(size)
    body_h, body_w = 0.32 * height, 0.45 * width
    base = bottom - 0.04 * height
    left = x - body_w / 2
    paint(canvas, base - 0.03 * height, left - 0.03 * body_w, 0.06 * height, 1.06 * body_w, np.float32(40), None)
    paint(canvas, base - body_h, left, body_h * 0.8, body_w, colour)
    cabin_left = left + (0.45 if direction > 0 else 0.05) * body_w
    paint(canvas, base - body_h * 1.45, cabin_left, body_h * 0.7, 0.5 * body_w, colour)
    window = np.array([90, 130, 170], np.float32)
    paint(canvas, base - body_h * 1.35, cabin_left + 0.08 * body_w, body_h * 0.45, 0.34 * body_w, window)
    wheel = 0.16 * height
    for centre in (0.2, 0.8):
        paint(
            canvas,
            base - 0.3 * body_h,
            left + centre * body_w - wheel / 2,
            wheel,
            wheel,
            np.float32(20),
            DISK,
        )


class _Scene:
    """Everything needed to draw frame t of one video."""

    def __init__(self, rng: np.random.Generator, size: tuple[int, int], event: Event | None):
        self.size, self.event = size, event
        _height, width = size
        scale = width / 320
        self.direction = 1 if rng.random() < 0.5 else -1
        self.background = draw_background(rng, size)
        count = int(rng.integers(_FIGURES_PER_VIDEO[0], _FIGURES_PER_VIDEO[1] + 1))
        self.walkers = [
            _random_figure(rng, size, self.direction * scale * rng.uniform(*_WALKING_SPEED)) for _ in range(count)
        ]
        self.vehicle_colour = np.array([205, 25, 30], np.float32) + rng.uniform(-20, 20, 3)
        self.intruder = None
        if event is not None and event.kind in ("runner", "wrong_way"):
            # Near the camera, large and brightly dressed, so the event fills part of the view.
            self.intruder = _random_figure(rng, size, 0.0, nearest=0.7)
            self.intruder.height *= 1.15
            self.intruder.period = 8  # quick running strides
            jersey = (240, 200, 20) if event.kind == "runner" else (235, 60, 200)
            self.intruder.shirt = np.array(jersey, np.float32)

    def _crossing_x(self, t: int, span: float, direction: int) -> float:
        """x of an object that enters at the event's start and has left by its end."""
        width = self.size[1]
        progress = (t - self.event.start + 0.5) / (self.event.end - self.event.start)
        x = -span / 2 + progress * (width + span)
        return x if direction > 0 else width - x

    def frame(self, t: int) -> np.ndarray:
        canvas = self.background.copy()
        width = self.size[1]
        # Paint back to front so nearer figures cover farther ones.
        for walker in sorted(self.walkers, key=lambda f: f.foot):
            walker.draw(canvas, t, wrap_position(walker.x0 + walker.speed * t, width, walker.height))
        event = self.event
        if event is not None and event.start <= t < event.end:
            if event.kind == "vehicle":
                x = self._crossing_x(t, 0.5 * width, self.direction)
                _draw_vehicle(canvas, x, self.size, self.vehicle_colour, self.direction)
            else:
                runner = self.intruder
                direction = self.direction if event.kind == "runner" else -self.direction
                runner.draw(canvas, t, self._crossing_x(t, 0.4 * runner.height, direction))
        return np.clip(canvas + 0.5, 0, 255).astype(np.uint8)


def scene_frames(
    rng: np.random.Generator, frames: int, size: tuple[int, int], event: Event | None = None
) -> Iterator[np.ndarray]:
    """The uint8 (H, W, 3) RGB frames of one scene drawn with `rng`, before encoding.

    The event draws its random numbers last, so the same rng state gives the same scene
    with or without it.
    """
    scene = _Scene(rng, size, event)
    for t in range(frames):
        yield scene.frame(t)


def encode_mpeg4(path: Path, frames: Iterable[np.ndarray], size: tuple[int, int], fps: int = 25) -> Path:
    """Encode uint8 (H, W, 3) RGB frames as MPEG-4 Part 2 (yuv420p) into `path`, reproducibly."""
    height, width = size
    if height % 2 or width % 2:
        raise GclvadError(f"synthetic video size must be even for yuv420p video; got {height}x{width}")
    with atomic_path(path) as temporary, av.open(str(temporary), "w", format="mp4") as container:
        # FFmpeg's own MPEG-4 encoder, on one thread: a seed must reproduce the same video,
        # and libx264 here encoded the same frames differently from run to run (even on one
        # thread), which made the demo's features, and so its AUC, vary.
        # A fixed quantiser (q 3; 118 = FFmpeg's QP-to-lambda factor): with rate control the
        # encoder spent the first frames of every video converging, and that start alone
        # looked anomalous to the networks.
        options = {"flags": "+qscale", "global_quality": str(3 * 118)}
        stream = container.add_stream("mpeg4", rate=fps, options=options)
        stream.codec_context.thread_count = 1
        stream.height, stream.width, stream.pix_fmt = height, width, "yuv420p"
        for pixels in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")))
        container.mux(stream.encode(None))
    return Path(path)


def write_demo_video(
    path: Path,
    rng: np.random.Generator,
    frames: int,
    size: tuple[int, int] = (240, 320),
    fps: int = 25,
    event: Event | None = None,
) -> Path:
    """Draw one scene with `rng` and encode it as MPEG-4 Part 2 (yuv420p) into `path`."""
    return encode_mpeg4(path, scene_frames(rng, frames, size, event), size, fps)


def write_dataset_files(out_dir: Path, videos: list[tuple[str, str, int]], spans: list[tuple[str, int, int]]) -> Path:
    """annotations.csv (video, start_frame, end_frame) and videos.csv (video, path, split,
    label) of videos written as <video>.mp4 into `out_dir`; returns videos.csv.

    videos: (name, split, label); spans: anomalous frames [start, end) per video.
    The manifest comes last: its presence means the whole dataset is there.
    """
    annotations = pd.DataFrame(spans, columns=["video", "start_frame", "end_frame"])
    write_atomic(out_dir / "annotations.csv", lambda temporary: annotations.to_csv(temporary, index=False))
    manifest = pd.DataFrame(
        [(name, f"{name}.mp4", split, int(label)) for name, split, label in videos],
        columns=["video", "path", "split", "label"],
    )
    write_atomic(out_dir / "videos.csv", lambda temporary: manifest.to_csv(temporary, index=False))
    return out_dir / "videos.csv"


# ---------------------------------------------------------------- dataset


def _check_arguments(n_train: int, n_test: int, frames: int, size: tuple[int, int]) -> None:
    if n_train < 0 or n_test < 0 or n_train + n_test == 0:
        raise GclvadError(f"the demo needs at least one video; got n_train={n_train}, n_test={n_test}")
    if frames < 16:
        raise GclvadError(f"demo videos need at least one 16-frame segment; got frames={frames}")
    if min(size) < 16:
        raise GclvadError(f"demo video size must be at least 16x16; got {size[0]}x{size[1]}")


def generate_demo(
    out_dir: Path,
    seed: int = 0,
    n_train: int = 12,
    n_test: int = 6,
    frames: int = 160,
    size: tuple[int, int] = (240, 320),
    fps: int = 25,
) -> Path:
    """Write the demo videos, videos.csv and annotations.csv into `out_dir`; return videos.csv."""
    size = (int(size[0]), int(size[1]))
    _check_arguments(n_train, n_test, frames, size)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    # One independent stream per video, so a video does not change when another one does.
    streams = np.random.SeedSequence(seed).spawn(1 + n_train + n_test)
    plan_rng, *video_rngs = [np.random.default_rng(s) for s in streams]
    plans = _plan_split(plan_rng, TRAIN, n_train, frames) + _plan_split(plan_rng, TEST, n_test, frames)
    anomalous_frames = sum(p.event.end - p.event.start for p in plans if p.event)
    assert anomalous_frames <= MAX_ANOMALOUS_FRACTION * frames * len(plans), "event planning broke its bound"
    for plan, rng in zip(plans, video_rngs, strict=False):
        write_demo_video(out_dir / f"{plan.name}.mp4", rng, frames, size, fps, plan.event)
    return write_dataset_files(
        out_dir,
        [(p.name, p.split, p.event is not None) for p in plans],
        [(p.name, p.event.start, p.event.end) for p in plans if p.event],
    )
