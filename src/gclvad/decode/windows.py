"""Where a video's segments lie: how many windows of segment_length frames (taken every
frame_step-th frame, starting every stride taken frames) cover a video, and how far the last
reaches past its end. Pure arithmetic, shared by decoding, the segment index, scoring and
evaluation, which all count frames of the video itself.
"""

from __future__ import annotations

from gclvad.errors import GclvadError


def segment_count(frames: int, segment_length: int, stride: int | None = None, frame_step: int = 1) -> int:
    """Segments (windows starting every `stride` sampled frames, default segment_length) that
    cover `frames` frames when the last is padded to a full segment. With frame_step k a
    segment takes every k-th frame, so it spans segment_length * k frames of the video."""
    span, every = window_frames(segment_length, stride, frame_step)
    return 1 + -(-max(frames - span, 0) // every)


def padded_tail(frames: int, segment_length: int, stride: int | None = None, frame_step: int = 1) -> int:
    """Frames of the video the last segment's span reaches past its end (0 when the windows end at the last frame)."""
    span, every = window_frames(segment_length, stride, frame_step)
    return (segment_count(frames, segment_length, stride, frame_step) - 1) * every + span - frames


def window_frames(segment_length: int, stride: int | None = None, frame_step: int = 1) -> tuple[int, int]:
    """(frames of the video one segment spans, frames between window starts): segment_length
    and stride, both times frame_step."""
    return segment_length * frame_step, (stride or segment_length) * frame_step


def check_stride(segment_length: int, stride: int | None) -> int:
    """The stride windows start at (default: segment_length, non-overlapping: the paper's)."""
    stride = segment_length if stride is None else int(stride)
    if not 1 <= stride <= segment_length:
        raise GclvadError(f"segment_stride must be between 1 and segment_length ({segment_length}); got {stride}")
    return stride


def check_frame_step(frame_step: int | None) -> int:
    """Every frame_step-th frame feeds a segment (default 1: every frame, the paper's protocol)."""
    step = 1 if frame_step is None else int(frame_step)
    if step < 1:
        raise GclvadError(f"frame_step must be a whole number of at least 1; got {frame_step}")
    return step


def shortest_video(segment_length: int, frame_step: int = 1) -> int:
    """The fewest frames that give one segment: segment_length sampled frames."""
    return (segment_length - 1) * frame_step + 1


def too_short_problem(frames: int, segment_length: int, frame_step: int = 1) -> str:
    """What is wrong with a video of `frames` frames too short for one segment (decoding and the
    segment index say it in the same words)."""
    taken = f" frames taken every {frame_step} frames" if frame_step > 1 else ""
    return f"has {frames} frames, fewer than one segment of {segment_length}{taken}"
