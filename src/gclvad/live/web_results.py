"""The page of finished results (`gclvad view`): each video played with its frame scores beneath.

What it shows comes from a workflow run folder (scores.h5; sources and fps from the dataset's
segments.tsv; frame ground truth from the dataset's reader where annotations are known) or a
`gclvad score` output folder (<id>.csv; the source from features/<id>.h5), or from every such
folder below a results folder. Browsers play H.264 and VP9 but not MPEG-4 Part 2 (the demo's
videos) nor frame folders, so each video is transcoded once, when first played, into an H.264
MP4 in a cache folder (VP9 WebM where FFmpeg lacks libx264) at a constant frame rate: frame i
is shown at i / fps, where the page's cursor puts it on the curve.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import h5py
import numpy as np
import pandas as pd
import yaml
from aiohttp import web

from gclvad.atomic import atomic_path
from gclvad.datasets.readers import load_dataset
from gclvad.datasets.segment_index import read_segment_index
from gclvad.decode.video import iter_frames
from gclvad.errors import GclvadError
from gclvad.live.web import json_ready
from gclvad.live.web_server import PageServer, new_app, page_response
from gclvad.scoring.frames import SCORE_COLUMNS, read_scores

log = logging.getLogger(__name__)

MAX_COLLECTIONS = 200  # runs and score folders listed from one results folder
_WORKFLOW_KEYS = ("extractor", "training", "train_on", "generate", "crops", "variant")  # not the reader's


@dataclass
class ViewedVideo:
    """One video of a collection: its frame scores (name -> (frames,)), source, fps, truth."""

    video: str
    scores: dict
    source: Path | None
    fps: float
    truth: np.ndarray | None = None  # bool (frames,), None where unknown

    def listing(self) -> dict:
        return {
            "video": self.video,
            "frames": len(self.scores["score"]),
            "fps": self.fps,
            "has_truth": self.truth is not None,
            "max_score": float(np.max(self.scores["score"])),
            "playable": self.source is not None,
        }


@dataclass
class Collection:
    """A run's scores or a `gclvad score` folder: its label and videos by id."""

    label: str
    videos: dict[str, ViewedVideo]


# ---------------------------------------------------------------- reading results


def truth_intervals(truth: np.ndarray) -> list[list[int]]:
    """[start, end) frame ranges where `truth` is set."""
    edges = np.diff(np.concatenate([[0], truth.astype(np.int8), [0]]))
    return [[int(s), int(e)] for s, e in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True)]


def dataset_folder(run: Path) -> Path | None:
    """The results/{dataset} folder above a run (the one holding segments.tsv)."""
    for folder in list(run.parents)[:5]:
        if (folder / "segments.tsv").is_file():
            return folder
    return None


def reader_spec(dataset: Path, config: Path | None) -> dict | None:
    """The dataset reader's spec: the config's entry for the dataset (its generated manifest
    filled in, as the workflow does), else the generated files in results/{dataset}/videos."""
    generated = {"manifest": dataset / "videos" / "videos.csv", "annotations": dataset / "videos" / "annotations.csv"}
    entry = None
    if config is not None and config.is_file():
        entry = (yaml.safe_load(config.read_text()) or {}).get("datasets", {}).get(dataset.name)
    if entry is not None:
        spec = {key: value for key, value in entry.items() if key not in _WORKFLOW_KEYS}
        if "generate" in entry:
            spec.update({key: str(path) for key, path in generated.items()})
        return spec
    if generated["manifest"].is_file():
        return {"format": "generic", **{key: str(path) for key, path in generated.items() if path.is_file()}}
    return None


def frame_truths(spec: dict | None, frames: dict[str, int]) -> dict:
    """Frame truth (or None) of each video; a dataset that cannot be read gives no truth."""
    if spec is None:
        return {}
    try:
        by_id = {video.id: video for video in load_dataset(spec)}
        return {v: by_id[v].truth(n) if v in by_id else None for v, n in frames.items()}
    except (GclvadError, OSError) as error:
        log.warning("no ground truth shown: the dataset's annotations cannot be read: %s", error)
        return {}


def run_collection(run: Path, config: Path | None) -> Collection:
    """A workflow run's scores.h5, with sources, fps and truth from its dataset."""
    scores = read_scores(run / "scores.h5")
    dataset = dataset_folder(run)
    index = read_segment_index(dataset / "segments.tsv").set_index("video") if dataset else None
    frames = {video: len(named["score"]) for video, named in scores.items()}
    truths = frame_truths(reader_spec(dataset, config), frames) if dataset else {}
    videos = {}
    for video, named in scores.items():
        known = index is not None and video in index.index
        videos[video] = ViewedVideo(
            video,
            {name: named[name] for name in SCORE_COLUMNS if name in named},
            Path(index.loc[video, "source"]) if known else None,
            float(index.loc[video, "fps"]) if known else 0.0,
            truths.get(video),
        )
    return Collection(str(run), videos)


def scored_video(csv: Path) -> ViewedVideo | None:
    """One <id>.csv of `gclvad score` (None for a CSV of another kind)."""
    table = pd.read_csv(csv)
    if not {"frame", "score"} <= set(table.columns):
        return None
    features = csv.parent / "features" / f"{csv.stem}.h5"
    attrs = {}
    if features.is_file():
        with h5py.File(features, "r") as file:
            attrs = {key: file.attrs[key] for key in ("source", "fps") if key in file.attrs}
    fps = float(attrs.get("fps", 0.0))
    if not fps and "time_s" in table and len(table) > 1:
        fps = round(1.0 / float(table["time_s"].diff().median()), 3)
    scores = {name: table[name].to_numpy(np.float32) for name in SCORE_COLUMNS if name in table}
    return ViewedVideo(csv.stem, scores, Path(str(attrs["source"])) if "source" in attrs else None, fps)


def score_collection(folder: Path) -> Collection:
    videos = {video.video: video for csv in sorted(folder.glob("*.csv")) if (video := scored_video(csv))}
    return Collection(str(folder), videos)


def is_score_folder(folder: Path) -> bool:
    return (folder / "features").is_dir() and any(folder.glob("*.csv"))


def find_collections(path: Path, config: Path | None = None) -> list[Collection]:
    """The run, the score folder, or every run and score folder below `path`."""
    path = Path(path)
    if not path.is_dir():
        raise GclvadError(
            f"{path} is not a folder: pass a run folder, a `gclvad score` output folder or a results folder"
        )
    if (path / "scores.h5").is_file():
        found = [run_collection(path, config)]
    elif is_score_folder(path):
        found = [score_collection(path)]
    else:
        runs = sorted(p.parent for p in path.rglob("scores.h5"))
        scored = sorted({p.parent.parent for p in path.rglob("features/*.h5") if is_score_folder(p.parent.parent)})
        folders = (runs + [folder for folder in scored if folder not in runs])[:MAX_COLLECTIONS]
        found = [run_collection(f, config) if f in runs else score_collection(f) for f in folders]
    found = [collection for collection in found if collection.videos]
    if not found:
        raise GclvadError(f"no scores found in {path}: no scores.h5 of a run and no <video>.csv of `gclvad score`")
    return found


# ---------------------------------------------------------------- playable videos


def playable_codec() -> tuple[str, str, str]:
    """(codec, container, suffix) of the transcoded videos."""
    if "libx264" in av.codecs_available:
        return "libx264", "mp4", ".mp4"
    return "libvpx-vp9", "webm", ".webm"


def cache_name(video: ViewedVideo) -> str:
    """A file name that changes when the source is replaced (path, size and time in its hash)."""
    stat = video.source.stat()
    key = f"{video.source.absolute()}:{stat.st_size}:{stat.st_mtime_ns}:{video.fps}"
    return f"{video.video}-{hashlib.sha256(key.encode()).hexdigest()[:12]}{playable_codec()[2]}"


def transcode(source: Path, fps: float, out: Path) -> Path:
    """Every decoded frame of `source` into a browser-playable video at a constant `fps`."""
    codec, container_format, _ = playable_codec()
    rate = Fraction(fps).limit_denominator(1001) if fps > 0 else Fraction(25)
    out.parent.mkdir(parents=True, exist_ok=True)
    options = {"movflags": "+faststart"} if container_format == "mp4" else {}
    with atomic_path(out) as temporary, av.open(str(temporary), "w", format=container_format, options=options) as file:
        stream = None
        for index, pixels in enumerate(iter_frames(source)):
            if stream is None:
                encoder = {"preset": "veryfast", "crf": "23"} if codec == "libx264" else {"deadline": "realtime"}
                stream = file.add_stream(codec, rate=rate, options=encoder)
                stream.height, stream.width = pixels.shape[0] // 2 * 2, pixels.shape[1] // 2 * 2
                stream.pix_fmt, stream.thread_count = "yuv420p", 2
            frame = av.VideoFrame.from_ndarray(pixels[: stream.height, : stream.width], format="rgb24")
            frame.pts, frame.time_base = index, 1 / rate
            file.mux(stream.encode(frame))
        file.mux(stream.encode(None))
    return out


class PlayableVideos:
    """Transcoded copies in `cache`, each made once (concurrent requests wait for the first)."""

    def __init__(self, cache: Path):
        self.cache = Path(cache)
        self._locks: dict[Path, threading.Lock] = {}
        self._guard = threading.Lock()

    def path(self, video: ViewedVideo) -> Path:
        out = self.cache / cache_name(video)
        with self._guard:
            lock = self._locks.setdefault(out, threading.Lock())
        with lock:
            if not out.is_file():
                log.info("transcoding %s for the browser into %s", video.source, out)
                transcode(video.source, video.fps, out)
        return out


# ---------------------------------------------------------------- the application


def view_app(collections: list[Collection], playable: PlayableVideos, token: str | None) -> web.Application:
    app = new_app(token)

    def video_of(request) -> ViewedVideo:
        try:
            return collections[int(request.match_info["collection"])].videos[request.match_info["video"]]
        except (IndexError, KeyError, ValueError):
            raise web.HTTPNotFound(text="no such video\n") from None

    async def index(_request):
        return page_response("view.html")

    async def listing(_request):
        body = [{"label": c.label, "videos": [v.listing() for v in c.videos.values()]} for c in collections]
        return web.json_response(json_ready(body))

    async def scores(request):
        video = video_of(request)
        body = {
            **video.listing(),
            "scores": {name: values.tolist() for name, values in video.scores.items()},
            "truth": truth_intervals(video.truth) if video.truth is not None else None,
        }
        return web.json_response(json_ready(body))

    async def play(request):
        video = video_of(request)
        if video.source is None or not video.source.exists():
            raise web.HTTPNotFound(text=f"the source of {video.video} is not known or not found\n")
        try:
            path = await asyncio.get_running_loop().run_in_executor(None, playable.path, video)
        except GclvadError as error:
            raise web.HTTPInternalServerError(text=f"{video.video} cannot be transcoded: {error}\n") from None
        return web.FileResponse(path)

    app.router.add_get("/", index)
    app.router.add_get("/api/collections", listing)
    app.router.add_get("/api/scores/{collection}/{video}", scores)
    app.router.add_get("/video/{collection}/{video}", play)
    return app


def results_page(
    path: Path, cache: Path, host: str, port: int, token: str | None, config: Path | None = None
) -> PageServer:
    """The (not yet started) server of the results page of `path`."""
    collections = find_collections(path, config)
    return PageServer(view_app(collections, PlayableVideos(cache), token), host, port, token)
