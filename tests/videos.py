"""Small test videos written with PyAV, whose frame contents are known.

Import from tests (pytest puts tests/ on sys.path): ``from videos import make_video``.

Patterns (`frame_pixels`):
  "index": frame i is one flat colour, `index_colour(i)`; with a lossless codec
      (the default: FFV1 in .mkv with RGB pixels) every decoded pixel is exact.
  "grey": frame i is flat grey `grey_level(i)` (coarse steps that survive H.264 roughly).
  "ramp": a horizontal ramp whose brightness shifts with i (texture for resize checks).
Lossless pixel formats: "bgr0" (RGB) and "gray" with FFV1; PNG frame folders.
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np


def index_colour(i: int) -> tuple[int, int, int]:
    """A flat RGB colour unique for i < 256 * 256."""
    return (i % 256, (i // 256 * 16 + 40) % 256, (255 - 3 * i) % 256)


def grey_level(i: int) -> int:
    """A grey that identifies i modulo 24 even after lossy coding (steps of 10)."""
    return 10 * (i % 24) + 10


def frame_pixels(i: int, size: tuple[int, int], pattern: str = "index") -> np.ndarray:
    """uint8 (H, W, 3) RGB content of frame i."""
    height, width = size
    if pattern == "index":
        return np.broadcast_to(np.array(index_colour(i), np.uint8), (height, width, 3)).copy()
    if pattern == "grey":
        return np.full((height, width, 3), grey_level(i), np.uint8)
    if pattern == "ramp":
        row = (np.arange(width) * 200 // max(width - 1, 1) + 2 * i) % 256
        plane = np.broadcast_to(row.astype(np.uint8), (height, width))
        return np.stack([plane, 255 - plane, np.full_like(plane, 128)], axis=-1)
    raise ValueError(f"unknown pattern {pattern!r}")


def make_video(
    path: Path,
    frames: int,
    size: tuple[int, int] = (24, 32),
    pattern: str = "index",
    codec: str = "ffv1",
    pix_fmt: str = "bgr0",
    fps: int = 25,
    options: dict[str, str] | None = None,
) -> Path:
    """Write `frames` frames of `pattern` at size (height, width); returns `path`.

    Defaults are lossless (FFV1, RGB). For H.264 use codec="libx264", pix_fmt="yuv420p"
    (even sizes only); for odd sizes with a lossy codec use codec="mpeg4".
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    height, width = size
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps, options=options or {})
        stream.height, stream.width, stream.pix_fmt = height, width, pix_fmt
        for i in range(frames):
            pixels = frame_pixels(i, size, pattern)
            if pix_fmt == "gray":
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(pixels[..., 0]), format="gray")
            else:
                frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def make_h264(path: Path, frames: int, size: tuple[int, int] = (24, 32), pattern: str = "grey") -> Path:
    """An H.264 .mp4 (yuv420p), the format of most real datasets."""
    return make_video(path, frames, size, pattern, codec="libx264", pix_fmt="yuv420p")


def make_frame_folder(
    folder: Path, frames: int, size: tuple[int, int] = (24, 32), pattern: str = "index", ext: str = "png"
) -> Path:
    """One image per frame named 1.ext, 2.ext, ... (unpadded, to exercise natural order)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(frames):
        write_image(folder / f"{i + 1}.{ext}", frame_pixels(i, size, pattern))
    return folder


def write_image(path: Path, pixels: np.ndarray) -> Path:
    """One uint8 (H, W, 3) RGB image as PNG (lossless) or JPEG (by suffix), written by PyAV."""
    codec, pix_fmt = ("png", "rgb24") if Path(path).suffix.lower() == ".png" else ("mjpeg", "yuvj444p")
    with av.open(str(path), "w", format="image2") as container:
        stream = container.add_stream(codec, rate=1)
        stream.height, stream.width, stream.pix_fmt = pixels.shape[0], pixels.shape[1], pix_fmt
        if codec == "mjpeg":
            stream.codec_context.qmax = 2  # near-lossless, so colours stay within a few levels
        container.mux(stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")))
        container.mux(stream.encode(None))
    return Path(path)


def truncate_copy(source: Path, target: Path, keep_fraction: float) -> Path:
    """A copy of `source` cut after `keep_fraction` of its bytes."""
    data = Path(source).read_bytes()
    Path(target).write_bytes(data[: int(len(data) * keep_fraction)])
    return Path(target)


def make_empty_file(path: Path) -> Path:
    Path(path).write_bytes(b"")
    return Path(path)


def make_text_file(path: Path) -> Path:
    """Text under a video name (e.g. notes.mp4)."""
    Path(path).write_text("this is not a video\n" * 50)
    return Path(path)
