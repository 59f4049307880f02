"""A harder synthetic benchmark for development decisions: a grey, noisy walkway, small anomalies.

A static camera looks at a pedestrian walkway (like the UCSD pedestrian benchmarks): grey,
low-colour pictures with per-frame sensor noise and a slight flicker of the exposure; people walk
at walking speed in both directions, near and far. Each video is filmed from one of `scenes`
camera positions (where the walkway lies in the picture, how large people look, the paving,
the surroundings), with its own light level, noise and crowd, so normal footage varies in
earnest. Anomalies are small, grey like everything else, and enter at the left or right edge:
    "cyclist": a rider on a bicycle, person-sized, at 3-4x walking speed;
    "skater":  a person gliding on a board without steps, at 2-3x walking speed;
    "cart":    a small service cart, wider than a person, at 1.5-2.2x walking speed.
An anomalous video holds one event: one crossing, or several in a row, so an event lasts from
about one crossing to most of the video. Anomalous frames make up about `train_fraction` of the
training split and `test_fraction` of the test split (defaults 10 % and 35 %). A frame is
annotated anomalous exactly when some anomaly has a pixel inside the picture; the annotation is
taken from the drawing itself, so it matches what is drawn.

`generate_walkway` writes the videos (MPEG-4 Part 2 at a fixed quantiser on one encoder thread,
as the demo does, so a seed always gives the same decoded frames), `videos.csv` and
`annotations.csv` in the generic format. Drawing helpers and the encoder are the demo's
(`gclvad.datasets.synthetic.demo`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gclvad.datasets.base import TEST, TRAIN
from gclvad.datasets.synthetic.demo import (
    DISK,
    Figure,
    encode_mpeg4,
    paint,
    smooth_noise,
    wrap_position,
    write_dataset_files,
)
from gclvad.errors import GclvadError

KINDS = ("cyclist", "skater", "cart")
SPEED_FACTORS = {"cyclist": (3.0, 4.0), "skater": (2.0, 3.0), "cart": (1.5, 2.2)}  # x WALKING_UNIT
LENGTHS = {"cyclist": 1.0, "skater": 0.5, "cart": 1.3}  # drawn extent along x, in person heights
WALKING_UNIT = 1.15  # pixels per frame at width 320 (~1.3 m/s at 25 fps); walkers: 0.7-1.3 of it
_WALKING_RANGE = (0.7, 1.3)
_WALKERS_PER_VIDEO = (3, 10)
_TOLERANCE = 0.03  # planned anomalous fraction of a split within this of its target
_GREY = np.array([0.299, 0.587, 0.114], np.float32)


@dataclass(frozen=True)
class EventPlan:
    """How long events are and how many videos of a split may hold one."""

    length: tuple[float, float] = (0.15, 0.9)  # target length of one event, fraction of its video
    typical: float = 0.65  # mean planned event length (crossings run to their end), fraction of its video
    most_videos: float = 0.8  # at most this share of a split's videos holds an event


WALKWAY_EVENTS = EventPlan()


@dataclass(frozen=True)
class Crossing:
    """One anomaly crossing the picture: its leading edge reaches the entry edge at `start`."""

    kind: str
    start: int
    direction: int  # +1 enters at the left edge, -1 at the right
    depth: float  # 0 at the back of the walkway, 1 at the front
    speed_factor: float  # times WALKING_UNIT
    grey: float  # grey level of its body


@dataclass(frozen=True)
class WalkwayVideo:
    """The plan of one video: everything needed to draw it."""

    name: str
    split: str
    scene: int
    crossings: tuple[Crossing, ...]
    scene_seed: np.random.SeedSequence
    draw_seed: np.random.SeedSequence  # walkers, light
    noise_seed: np.random.SeedSequence  # sensor noise: independent of what is drawn


@dataclass(frozen=True)
class Layout:
    """One camera position: walkway rows, person heights at its back and front, looks."""

    top: float  # walkway rows [top, bottom) as fractions of the picture height
    bottom: float
    far: float  # person height at the back / front, fraction of the picture height
    near: float
    saturation: float  # colour left in the picture (0 = grey)

    def foot_row(self, height: int, depth: float) -> float:
        return height * (self.top + depth * (self.bottom - self.top))

    def person_height(self, height: int, depth: float) -> float:
        return height * (self.far + depth * (self.near - self.far))


# ---------------------------------------------------------------- planning


def _duration(kind: str, speed_factor: float, depth: float, layout: Layout, size: tuple[int, int]) -> int:
    """Frames from entering at one edge to having left at the other."""
    height, width = size
    length = LENGTHS[kind] * layout.person_height(height, depth)
    return math.ceil((width + length) / (speed_factor * WALKING_UNIT * width / 320))


def _plan_event(rng, frames: int, layout: Layout, size, events: EventPlan) -> tuple[tuple[Crossing, ...], int]:
    """Crossings in a row until the event reaches its target length (a crossing that would
    outlast the video ends the chain), placed anywhere in the video where it fits (a single
    crossing longer than the video starts at frame 0 and is cut at its end);
    (crossings, planned anomalous frames)."""
    target = max(1, round(rng.uniform(*events.length) * frames))
    chain, end, enters = [], 0, 0  # frames counted from the event's start
    while end < target:
        kind = str(rng.choice(KINDS))
        speed, depth = rng.uniform(*SPEED_FACTORS[kind]), rng.uniform(0.1, 1.0)
        duration = _duration(kind, speed, depth, layout, size)
        if chain and enters + duration > frames:
            break
        chain.append((kind, enters, int(rng.choice((-1, 1))), depth, speed, rng.uniform(50, 190)))
        end = max(end, enters + duration)
        enters += max(1, round(rng.uniform(0.4, 1.0) * duration))  # the next one enters before this one leaves
    start = int(rng.integers(0, max(0, frames - end) + 1))
    crossings = tuple(Crossing(kind, start + at, *rest) for kind, at, *rest in chain)
    return crossings, min(end, frames - start)


def _plan_split(
    rng, split: str, n: int, frames: int, layouts: list[Layout], size, fraction: float, events: EventPlan
) -> list:
    """(scene, crossings) per video, with anomalous frames within _TOLERANCE of `fraction`."""
    scenes = [i % len(layouts) for i in range(n)]
    if fraction <= 0 or n == 0:
        return [(scene, ()) for scene in scenes]
    anomalous_videos = max(1, min(round(events.most_videos * n), round(n * fraction / events.typical)))
    for _ in range(500):
        chosen = set(rng.choice(n, size=anomalous_videos, replace=False).tolist())
        planned_events = {i: _plan_event(rng, frames, layouts[scenes[i]], size, events) for i in sorted(chosen)}
        planned = sum(length for _, length in planned_events.values()) / (n * frames)
        if abs(planned - fraction) <= _TOLERANCE:
            return [(scene, planned_events[i][0] if i in planned_events else ()) for i, scene in enumerate(scenes)]
    raise GclvadError(
        f"walkway benchmark: could not plan the {split} split's anomalous frames at {fraction:.0%} "
        f"(+-{_TOLERANCE:.0%}) with {n} videos of {frames} frames; use more or longer videos or another fraction"
    )


def _layout(rng: np.random.Generator) -> Layout:
    top = rng.uniform(0.2, 0.45)
    return Layout(
        top=top,
        bottom=min(0.98, top + rng.uniform(0.4, 0.6)),
        far=rng.uniform(0.1, 0.16),
        near=rng.uniform(0.22, 0.34),
        saturation=rng.uniform(0.0, 0.3),
    )


def plan_walkway(
    seed: int,
    n_train: int,
    n_test: int,
    frames: int,
    size: tuple[int, int],
    scenes: int,
    train_fraction: float,
    test_fraction: float,
    events: EventPlan = WALKWAY_EVENTS,
) -> tuple[list[WalkwayVideo], list[Layout]]:
    """The videos of a walkway benchmark (nothing drawn yet) and the scenes' camera layouts."""
    streams = np.random.SeedSequence(seed).spawn(1 + scenes + 2 * (n_train + n_test))
    plan_rng = np.random.default_rng(streams[0])
    scene_seeds, video_seeds = streams[1 : 1 + scenes], streams[1 + scenes :]
    layouts = [_layout(np.random.default_rng(s)) for s in scene_seeds]
    videos = []
    for split, n, fraction in ((TRAIN, n_train, train_fraction), (TEST, n_test, test_fraction)):
        for i, (scene, crossings) in enumerate(
            _plan_split(plan_rng, split, n, frames, layouts, size, fraction, events)
        ):
            draw_seed, noise_seed = video_seeds[2 * len(videos)], video_seeds[2 * len(videos) + 1]
            videos.append(
                WalkwayVideo(f"{split}_{i:03d}", split, scene, crossings, scene_seeds[scene], draw_seed, noise_seed)
            )
    return videos, layouts


# ---------------------------------------------------------------- drawing


def _background(rng: np.random.Generator, size: tuple[int, int], layout: Layout) -> np.ndarray:
    """The scene's static picture (float32 (H, W, 3), 0..255): lawn or wall, paving, props."""
    height, width = size
    top, bottom = round(layout.top * height), round(layout.bottom * height)
    scene = np.empty((height, width, 3), np.float32)
    surround = np.array([95, 110, 90], np.float32) + rng.uniform(-25, 25, 3)
    scene[:] = surround
    paving = np.full(3, rng.uniform(110, 170), np.float32) + rng.uniform(-6, 6, 3)
    scene[top:bottom] = paving
    scene += rng.uniform(8, 20) * smooth_noise(rng, size, max(4, int(width * rng.uniform(0.03, 0.08))))[..., None]
    scene += rng.normal(0, rng.uniform(2, 6), (height, width, 1)).astype(np.float32)  # grain of the stone
    # Joints between slabs, wider apart towards the camera (perspective).
    rows = top + (bottom - top) * np.linspace(0, 1, int(rng.integers(5, 10))) ** rng.uniform(1.2, 1.8)
    for row in rows[1:-1].round().astype(int):
        scene[row] -= 25
    step, offset = int(width / rng.uniform(5, 12)), int(rng.integers(0, width // 5))
    scene[top:bottom, offset :: max(4, step)] -= 20
    scene[max(0, top - 2) : top] = rng.uniform(150, 200)  # kerbs
    scene[bottom : bottom + 2] = rng.uniform(150, 200)
    for _ in range(int(rng.integers(1, 4))):  # lamp posts and benches at the back edge
        x = rng.uniform(0, width)
        if rng.random() < 0.5:
            paint(scene, top - 0.35 * height, x, 0.35 * height, 0.015 * width + 1, np.float32(45))
        else:
            paint(scene, top - 0.06 * height, x, 0.05 * height, 0.12 * width, np.float32(70))
    return np.clip(scene, 0, 255)


def _walker(rng: np.random.Generator, size: tuple[int, int], layout: Layout) -> Figure:
    """A pedestrian somewhere on the walkway, walking left or right at walking speed."""
    height, width = size
    depth = rng.uniform(0, 1)
    person = layout.person_height(height, depth) * rng.uniform(0.9, 1.1)
    speed = rng.uniform(*_WALKING_RANGE) * WALKING_UNIT * width / 320 * rng.choice((-1, 1))
    tone = rng.uniform(40, 200)
    return Figure(
        x0=-person + rng.uniform() * (width + 2 * person),  # anywhere on its loop (see the demo)
        foot=layout.foot_row(height, depth),
        speed=speed,
        height=person,
        shirt=np.full(3, tone, np.float32) + rng.uniform(-20, 20, 3),
        trousers=np.full(3, rng.uniform(30, 120), np.float32),
        skin=np.full(3, rng.uniform(120, 200), np.float32),
        phase=rng.uniform(0, 2 * np.pi),
        period=rng.uniform(14, 20),
    )


def _draw_cyclist(canvas, x: float, foot: float, h: float, t: int, grey: float) -> None:
    wheel = 0.38 * h
    for centre in (-0.3 * h, 0.3 * h):
        paint(canvas, foot - wheel, x + centre - wheel / 2, wheel, wheel, np.float32(25), DISK)
        paint(canvas, foot - 0.75 * wheel, x + centre - wheel / 4, wheel / 2, wheel / 2, np.float32(grey), DISK)
    paint(canvas, foot - 0.55 * h, x - 0.3 * h, 0.05 * h, 0.6 * h, np.float32(40))  # frame
    pedal = 0.08 * h * np.sin(2 * np.pi * t / 10)
    paint(canvas, foot - 0.7 * h + pedal, x - 0.05 * h, 0.4 * h, 0.1 * h, np.float32(grey * 0.6))  # legs
    paint(canvas, foot - 1.05 * h, x - 0.12 * h, 0.4 * h, 0.28 * h, np.float32(grey))  # torso
    paint(canvas, foot - 1.25 * h, x - 0.05 * h, 0.18 * h, 0.18 * h, np.float32(170), DISK)  # head


def _draw_cart(canvas, x: float, foot: float, h: float, grey: float) -> None:
    half = 0.65 * h
    paint(canvas, foot - 0.55 * h, x - half, 0.42 * h, 2 * half, np.float32(grey))  # body
    paint(canvas, foot - 0.45 * h, x - 0.6 * half, 0.15 * h, 1.2 * half, np.float32(grey * 0.7))  # window
    paint(canvas, foot - 1.0 * h, x - half, 0.06 * h, 2 * half, np.float32(grey * 0.8))  # canopy
    for post in (-half, half - 0.04 * h):
        paint(canvas, foot - 1.0 * h, x + post, 0.45 * h, 0.04 * h, np.float32(50))
    for centre in (-0.6 * half, 0.6 * half):
        paint(canvas, foot - 0.2 * h, x + centre - 0.1 * h, 0.2 * h, 0.2 * h, np.float32(20), DISK)


def _draw_skater(canvas, x: float, foot: float, h: float, grey: float) -> None:
    paint(canvas, foot - 0.03 * h, x - 0.25 * h, 0.04 * h, 0.5 * h, np.float32(30))  # board
    skater = Figure(
        0.0,
        foot - 0.04 * h,
        0.0,
        h,
        np.full(3, grey, np.float32),
        np.full(3, 50, np.float32),
        np.full(3, 170, np.float32),
        phase=0.0,
        period=math.inf,
    )  # no steps: it glides
    skater.draw(canvas, t=0, x=x)


def _crossing_x(crossing: Crossing, t: int, length: float, width: int) -> float:
    """Centre column: the leading edge is at the entry edge at `start`, then it moves at its speed."""
    travelled = (t - crossing.start) * crossing.speed_factor * WALKING_UNIT * width / 320
    return -length / 2 + travelled if crossing.direction > 0 else width + length / 2 - travelled


class _Video:
    """Draws frame t of one planned video (with or without its anomalies)."""

    def __init__(self, video: WalkwayVideo, layout: Layout, size: tuple[int, int], frames: int):
        self.video, self.layout, self.size = video, layout, size
        self.background = _background(np.random.default_rng(video.scene_seed), size, layout)
        draw = np.random.default_rng(video.draw_seed)
        self.walkers = [
            _walker(draw, size, layout)
            for _ in range(int(draw.integers(_WALKERS_PER_VIDEO[0], _WALKERS_PER_VIDEO[1] + 1)))
        ]
        self.gain, self.offset = draw.uniform(0.85, 1.15), draw.uniform(-10, 10)
        t = np.arange(frames)
        amplitude, period, phase = draw.uniform(0.005, 0.02), draw.uniform(40, 120), draw.uniform(0, 2 * np.pi)
        noise = np.random.default_rng(video.noise_seed)
        self.flicker = 1 + amplitude * np.sin(2 * np.pi * t / period + phase) + noise.normal(0, 0.004, frames)
        self.noise_sigma, self.noise = draw.uniform(2.5, 5.0), noise

    def _anomalies(self, t: int) -> list[tuple[float, callable]]:
        """(foot row, draw(canvas)) of the anomalies that may touch the picture at frame t."""
        height, width = self.size
        out = []
        for crossing in self.video.crossings:
            h = self.layout.person_height(height, crossing.depth)
            length = LENGTHS[crossing.kind] * h
            x = _crossing_x(crossing, t, length, width)
            if not -length < x < width + length:  # cannot touch the picture
                continue
            foot = self.layout.foot_row(height, crossing.depth)
            if crossing.kind == "cyclist":
                out.append((foot, lambda c, x=x, f=foot, h=h, g=crossing.grey: _draw_cyclist(c, x, f, h, t, g)))
            elif crossing.kind == "cart":
                out.append((foot, lambda c, x=x, f=foot, h=h, g=crossing.grey: _draw_cart(c, x, f, h, g)))
            else:
                out.append((foot, lambda c, x=x, f=foot, h=h, g=crossing.grey: _draw_skater(c, x, f, h, g)))
        return out

    def frame(self, t: int, events: bool = True) -> tuple[np.ndarray, bool]:
        """(uint8 (H, W, 3) RGB picture, whether an anomaly has a pixel in it) of frame t."""
        width = self.size[1]
        canvas = self.background.copy()
        drawers = [
            (w.foot, lambda c, w=w: w.draw(c, t, wrap_position(w.x0 + w.speed * t, width, w.height)))
            for w in self.walkers
        ]
        anomalies = self._anomalies(t) if events else []
        for _, draw in sorted(drawers + anomalies, key=lambda item: item[0]):  # back to front
            draw(canvas)
        visible = False
        if anomalies:  # drawn once more on an empty layer: does any pixel land in the picture?
            layer = np.full(canvas.shape, np.nan, np.float32)
            for _, draw in anomalies:
                draw(layer)
            visible = bool(np.isfinite(layer[..., 0]).any())
        grey = canvas @ _GREY
        picture = grey[..., None] + self.layout.saturation * (canvas - grey[..., None])
        picture = picture * (self.gain * self.flicker[t]) + self.offset
        picture += self.noise.normal(0, self.noise_sigma, picture.shape[:2])[..., None]
        return np.clip(picture + 0.5, 0, 255).astype(np.uint8), visible


def walkway_frames(
    video: WalkwayVideo, layout: Layout, frames: int, size: tuple[int, int], events: bool = True
) -> Iterator[tuple[np.ndarray, bool]]:
    """(picture, anomaly visible) for every frame of a planned video, before encoding.

    events=False draws the same video without its anomalies (same walkers, light and noise)."""
    drawer = _Video(video, layout, size, frames)
    for t in range(frames):
        yield drawer.frame(t, events)


def spans_of(visible: list[bool]) -> list[tuple[int, int]]:
    """Runs of True as half-open [start, end) frame intervals."""
    flags = np.concatenate([[False], np.asarray(visible, bool), [False]])
    edges = np.flatnonzero(np.diff(flags.astype(np.int8)))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=False)]


# ---------------------------------------------------------------- dataset


def generate_walkway(
    out_dir: Path,
    seed: int = 0,
    n_train: int = 24,
    n_test: int = 24,
    frames: int = 240,
    size: tuple[int, int] = (240, 320),
    fps: int = 25,
    scenes: int = 4,
    train_fraction: float = 0.10,
    test_fraction: float = 0.35,
    events: EventPlan = WALKWAY_EVENTS,
) -> Path:
    """Write the walkway videos, videos.csv and annotations.csv into `out_dir`; return videos.csv."""
    size = (int(size[0]), int(size[1]))
    if n_train < 0 or n_test < 0 or n_train + n_test == 0 or scenes < 1:
        raise GclvadError(
            f"walkway benchmark: needs videos and scenes; got n_train={n_train}, n_test={n_test}, scenes={scenes}"
        )
    if frames < 16 or min(size) < 32:
        raise GclvadError(
            f"walkway benchmark: needs at least 16 frames of 32x32; got {frames} frames of {size[0]}x{size[1]}"
        )
    for name, value in (("train_fraction", train_fraction), ("test_fraction", test_fraction)):
        if not 0.0 <= value < 0.9:
            raise GclvadError(f"walkway benchmark: {name} must be in [0, 0.9); got {value}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    videos, layouts = plan_walkway(seed, n_train, n_test, frames, size, scenes, train_fraction, test_fraction, events)
    spans = []
    for video in videos:
        visible: list[bool] = []

        def pictures(video=video, visible=visible):
            for picture, seen in walkway_frames(video, layouts[video.scene], frames, size):
                visible.append(seen)
                yield picture

        encode_mpeg4(out_dir / f"{video.name}.mp4", pictures(), size, fps)
        spans += [(video.name, start, end) for start, end in spans_of(visible)]
    anomalous = {name for name, _, _ in spans}
    return write_dataset_files(out_dir, [(v.name, v.split, v.name in anomalous) for v in videos], spans)
