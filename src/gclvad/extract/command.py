"""`gclvad extract`: per-video feature files for videos outside the workflow.

Each input is a video file, a frame folder (a folder of images) or a folder of videos (its
video files and frame folders), found as `gclvad score` finds them
(`gclvad.decode.inputs.collect_videos`); each video becomes `<out>/<id>.h5` (id: the file's
stem or the folder's name), written by the same shard runner as the workflow's extraction jobs
(`gclvad.extract.shards`), so a second run keeps the files that are complete and does
the rest. Files record the source's absolute path; a file made from another source with the
same id is extracted again.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from gclvad.decode.inputs import collect_videos
from gclvad.errors import GclvadError
from gclvad.extract.shards import VideoJob, extract_videos
from gclvad.weights import PACKAGE_WEIGHTS

# Weights used when none are given: only I3D has weights that need no download.
DEFAULT_WEIGHTS = {"i3d": PACKAGE_WEIGHTS}


def weights_for(extractor: str, weights: str | None) -> str:
    if weights:
        return weights
    if extractor in DEFAULT_WEIGHTS:
        return DEFAULT_WEIGHTS[extractor]
    raise GclvadError(
        f"extractor {extractor!r} needs --weights: a weights file (README.md says where to get it), "
        "or 'random' for an untrained network (tests and speed runs only)"
    )


def extract_to_folder(
    inputs: Sequence[str | Path],
    out_dir: str | Path,
    *,
    extractor: str,
    weights: str | None = None,
    device: str = "auto",
    decoders: int | str = "auto",
    batch_size: int = 4,
    precision: str = "auto",
    dtype: str = "float16",
    segment_length: int = 16,
    on_bad_video: str = "stop",
    progress: bool | None = None,
    stride: int | None = None,
    crops: str = "centre",
    frame_step: int = 1,
):
    """Write `<out_dir>/<id>.h5` for every input video that has no complete one; the ShardReport."""
    out_dir = Path(out_dir)
    videos = collect_videos(inputs)  # before anything slow: a typo fails at once
    if out_dir.exists() and not out_dir.is_dir():
        raise GclvadError(f"{out_dir}: exists and is not a folder; give -o a folder for the feature files")
    jobs = [
        VideoJob(video, source, out_dir / f"{video}.h5", extra_attrs={"source": str(source.absolute())})
        for video, source in videos.items()
    ]
    return extract_videos(
        jobs,
        extractor=extractor,
        weights=weights_for(extractor, weights),
        precision=precision,
        device=device,
        segment_length=segment_length,
        batch_size=batch_size,
        dtype=dtype,
        decoders=decoders,
        on_bad_video=on_bad_video,
        progress=progress,
        stride=stride,
        crops=crops,
        frame_step=frame_step,
    )
