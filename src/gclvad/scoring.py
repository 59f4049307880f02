"""Scoring new videos with a trained run: the same extraction the run was trained on, then its
networks, giving per-frame anomaly scores of footage the workflow never saw.

A run (results/{dataset}/{extractor}/{variant}/seed{seed}/) records in its models.pt which
extractor made its features (name, weights, precision, batch size, stored dtype), the segment
length, and the sha256 of the weights and the preprocessing of those features. Scoring builds
the same extractor, refuses weights whose sha256 differs (features of other weights would make
the scores meaningless), extracts each video into out/features/<id>.h5 (a cache: reused while
the source, weights and settings are unchanged), scores its segments exactly as the workflow
scores test videos and spreads them onto frames, and writes out/<id>.csv and out/<id>.png.

"random" weights (untrained network, tests only) are a marker, not a file: a run trained on
random features accepts only that marker, and a run trained on a weights file never accepts it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gclvad.atomic import write_atomic
from gclvad.errors import BadVideoError, GclvadError
from gclvad.postprocess import PostprocessConfig
from gclvad.video import VIDEO_SUFFIXES
from gclvad.weights import MARKERS, RANDOM_WEIGHTS, sha256_file

log = logging.getLogger(__name__)

MODELS_FILE = "models.pt"
# Written by the workflow's score_run beside scores.h5: how the run's scores are
# post-processed, how its crops are used, and which models file scores (a variant that only
# post-processes differently scores with its training variant's networks).
POSTPROCESS_FILE = "postprocess.json"
# Attributes a cached feature file must share with the run (and the source must not have
# changed) to be reused instead of extracting again.
CACHE_KEYS = ("extractor", "weights_sha256", "segment_length", "preprocessing", "source", "source_fingerprint")
# CSV columns after frame and time_s: the run's score first, then D's and G's.
SCORE_COLUMNS = ("score", "score_raw", "d", "g")


@dataclass(frozen=True)
class RunRecord:
    """How a run's features were made, as its models file records it."""

    models_path: Path
    extractor: dict  # name, weights, precision, batch_size, dtype
    segment_length: int
    weights_sha256: str
    preprocessing: str | None
    postprocess: PostprocessConfig = field(default_factory=PostprocessConfig)
    crops: str = "mean"  # how the run used features with several crops per segment
    segment_stride: int = 0  # frames between window starts (the segment length: consecutive)
    scoring: dict = field(default_factory=dict)  # the workflow's postprocess.json of the run, if any

    def __post_init__(self) -> None:
        if not self.segment_stride:
            object.__setattr__(self, "segment_stride", self.segment_length)

    @property
    def folder(self) -> Path:
        return self.models_path.parent


@dataclass(frozen=True)
class ScoredVideo:
    """One scored video: where it came from, its size, and the files written for it."""

    video: str
    source: Path
    frames: int
    segments: int
    fps: float
    max_score: float
    csv: Path
    png: Path


# ---------------------------------------------------------------- the run


def read_run(run: str | Path) -> RunRecord:
    """The record of a run folder (or of its models.pt given directly)."""
    from gclvad.gcl.store import read_models_metadata

    run = Path(run)
    folder = run.parent if run.is_file() else run
    scoring = json.loads((folder / POSTPROCESS_FILE).read_text()) if (folder / POSTPROCESS_FILE).is_file() else {}
    models_path = run if run.is_file() else folder / scoring.get("models", MODELS_FILE)
    if not models_path.is_file():
        raise GclvadError(
            f"{run}: not a trained run (expected {models_path}, written by the workflow's rule gcl_loop, "
            "autoencoder or ensemble)"
        )
    metadata = read_models_metadata(models_path)
    if metadata.get("weights_sha256") == "published":
        raise GclvadError(
            f"{models_path}: the run was trained on published features ({metadata.get('feature_source', '?')}); "
            "scoring new videos extracts their features, which needs a run trained on features gclvad "
            "extracted itself (a dataset of videos)"
        )
    missing = [key for key in ("extractor", "segment_length", "weights_sha256") if key not in metadata]
    if missing:
        raise GclvadError(
            f"{models_path}: records no {', '.join(missing)} (models saved outside the workflow); "
            "only runs trained by the workflow can score new videos"
        )
    return RunRecord(
        models_path=models_path,
        extractor=dict(metadata["extractor"]),
        segment_length=int(metadata["segment_length"]),
        weights_sha256=metadata["weights_sha256"],
        preprocessing=metadata.get("preprocessing"),
        postprocess=PostprocessConfig(**scoring.get("postprocess", {})),
        crops=scoring.get("crops", metadata.get("crops", "mean")),
        segment_stride=int(metadata.get("segment_stride") or metadata["segment_length"]),
        scoring=scoring,
    )


# ---------------------------------------------------------------- the extractor and its weights


def weights_argument(weights: str | Path | None, record: RunRecord) -> str | Path:
    """What build_extractor takes: the "random" or "package" marker, or an existing file.

    `weights` (None: the run's recorded weights) is read relative to the current folder.
    """
    given = weights is not None
    text = str(weights if given else record.extractor.get("weights", ""))
    if text in MARKERS:
        return text
    path = Path(text).absolute()
    if not text or not path.is_file():
        if given:
            raise GclvadError(f"weights file {path} does not exist")
        raise GclvadError(
            f"{record.models_path}: the run was trained with extractor weights {text!r}, which are not at "
            f"{path} (relative paths are read from the current folder); pass --weights "
            "(weights= in Python) with the path of that file"
        )
    return path


def check_weights_digest(digest: str, weights: str | Path, record: RunRecord) -> None:
    """Refuse weights other than those the run's features were extracted with."""
    if digest != record.weights_sha256:
        raise GclvadError(
            f"weights {weights} have sha256 {digest}, but run {record.folder} was trained on features of weights "
            f"with sha256 {record.weights_sha256} ({record.extractor.get('weights')}); features of other weights "
            "would make its scores meaningless: pass the weights the run was trained with"
        )


def build_run_extractor(record: RunRecord, weights: str | Path | None, device: str):
    """The run's extractor, with its weights checked by sha256 (before loading, where a file)."""
    from gclvad.extractors import build_extractor

    argument = weights_argument(weights, record)
    if isinstance(argument, Path):
        check_weights_digest(sha256_file(argument), argument, record)
    elif argument == RANDOM_WEIGHTS:
        check_weights_digest(RANDOM_WEIGHTS, argument, record)
        log.warning(
            "run %s was trained on features of an untrained (random) network; its scores of new videos "
            "match its own only where the random network is rebuilt identically (tests only)",
            record.folder,
        )
    extractor = build_extractor(
        record.extractor["name"],
        argument,
        device=device,
        precision=record.extractor.get("precision", "fp32"),
        crops=record.extractor.get("crops", "centre"),
    )
    # "package" is hashed by the builder; for the others this confirms what was checked above.
    check_weights_digest(extractor.weights_sha256, argument, record)
    described = extractor.preprocessing.describe()
    if record.preprocessing is not None and described != record.preprocessing:
        raise GclvadError(
            f"run {record.folder} was trained on frames prepared as {record.preprocessing!r}, but extractor "
            f"{extractor.name!r} now prepares them as {described!r}; its scores would not be comparable"
        )
    return extractor


# ---------------------------------------------------------------- videos


def video_ids(videos: Iterable[str | Path]) -> dict[str, Path]:
    """Video id (file stem, or folder name for frame folders) -> source; each must exist and
    ids must be distinct, since they name the output files."""
    by_id: dict[str, list[Path]] = {}
    for video in videos:
        source = Path(video)
        if not source.exists():
            raise BadVideoError(source, "not found: expected a video file or a folder of frame images")
        by_id.setdefault(source.name if source.is_dir() else source.stem, []).append(source)
    if not by_id:
        raise GclvadError("no videos to score")
    clashes = {video: paths for video, paths in by_id.items() if len(paths) > 1}
    if clashes:
        listed = "; ".join(f"{video}: {', '.join(map(str, paths))}" for video, paths in clashes.items())
        raise GclvadError(
            f"videos must have distinct names (they name the output files), but these share one: {listed}"
        )
    return {video: paths[0] for video, paths in by_id.items()}


def videos_in_folder(folder: str | Path) -> list[Path]:
    """The video files (by suffix) and frame folders directly inside `folder`, sorted."""
    folder = Path(folder)
    if not folder.is_dir():
        raise GclvadError(f"{folder}: folder of videos to score not found")
    found = sorted(
        entry
        for entry in folder.iterdir()
        if not entry.name.startswith(".") and (entry.is_dir() or entry.suffix.lower() in VIDEO_SUFFIXES)
    )
    if not found:
        raise GclvadError(
            f"{folder}: holds no videos to score (files ending in {', '.join(sorted(VIDEO_SUFFIXES))}, "
            "or folders of frame images)"
        )
    return found


def source_fingerprint(source: Path) -> str:
    """Size and modification time of a video file (or of a frame folder's files): changes
    when the source is replaced, so a stale cached feature file is not reused."""
    files = sorted(p for p in source.iterdir() if p.is_file()) if source.is_dir() else [source]
    stats = [p.stat() for p in files]
    return f"{len(stats)}:{sum(s.st_size for s in stats)}:{max((s.st_mtime_ns for s in stats), default=0)}"


# ---------------------------------------------------------------- features and scores


def cached_features(path: Path, expected: dict) -> tuple[np.ndarray, dict] | None:
    """(features, attrs) of a cached feature file that matches `expected`, else None."""
    from gclvad.features import read_video_features

    if not path.is_file():
        return None
    try:
        features, attrs = read_video_features(path)
    except GclvadError:  # an unreadable cache is extracted again
        return None
    if any(attrs.get(key) != value for key, value in expected.items()):
        return None
    return features, attrs


def video_features(extractor, record: RunRecord, source: Path, path: Path, batch_size: int) -> tuple[np.ndarray, dict]:
    """Features of `source` exactly as the workflow stores them (same dtype), from the cache
    at `path` or freshly extracted into it."""
    from gclvad.extraction import extract_video
    from gclvad.features import read_video_features

    expected = {
        "extractor": extractor.name,
        "weights_sha256": extractor.weights_sha256,
        "segment_length": record.segment_length,
        "segment_stride": record.segment_stride if record.segment_stride != record.segment_length else None,
        "preprocessing": extractor.preprocessing.describe(),
        "source": str(source.absolute()),
        "source_fingerprint": source_fingerprint(source),
    }
    cached = cached_features(path, expected)
    if cached is not None:
        log.info("%s: features cached in %s", source, path)
        return cached
    extract_video(
        extractor,
        source,
        path,
        segment_length=record.segment_length,
        batch_size=batch_size,
        dtype=record.extractor.get("dtype", "float16"),
        extra_attrs={key: expected[key] for key in ("source", "source_fingerprint")},
        stride=record.segment_stride,
    )
    # Read back rather than kept: the stored dtype's rounding is part of what the run saw.
    return read_video_features(path)


def video_frame_scores(
    scorer, features: np.ndarray, attrs: dict, video: str, record: RunRecord
) -> dict[str, np.ndarray]:
    """Per-frame scores of one video, by the code that scores the workflow's test videos
    (its crops used and its scores post-processed as the run's)."""
    from gclvad.features import single_video, use_crops
    from gclvad.frame_scores import score_feature_set

    feature_set = single_video(
        use_crops(features, record.crops), video, int(attrs["frames"]), int(attrs["padded_tail"]), attrs
    )
    scores = score_feature_set(scorer, feature_set, record.segment_length, record.postprocess.smoothing_sigma)[video]
    return {name: scores[name] for name in SCORE_COLUMNS if name in scores}


def score_one(
    scorer, extractor, record: RunRecord, video: str, source: Path, out_dir: Path, batch_size: int
) -> ScoredVideo:
    """Extract (or reuse) one video's features, score them, write its CSV and plot."""
    from gclvad.frame_scores import write_scores_csv
    from gclvad.plots import plot_video_scores

    features, attrs = video_features(extractor, record, source, out_dir / "features" / f"{video}.h5", batch_size)
    scores = video_frame_scores(scorer, features, attrs, video, record)
    fps = float(attrs.get("fps", 0.0))
    csv, png = out_dir / f"{video}.csv", out_dir / f"{video}.png"
    write_scores_csv(csv, scores, fps)
    plot_video_scores([(video, scores["score"], None)], png)
    return ScoredVideo(
        video=video,
        source=source,
        frames=int(attrs["frames"]),
        segments=len(features),
        fps=fps,
        max_score=float(np.max(scores["score"])),
        csv=csv,
        png=png,
    )


# ---------------------------------------------------------------- entry points


def score_all(
    run: str | Path,
    videos: Sequence[str | Path],
    out_dir: str | Path,
    weights: str | Path | None = None,
    device: str = "auto",
    batch_size: int | None = None,
) -> list[ScoredVideo]:
    """Score each video with the run; a bad video stops the whole call (BadVideoError)."""
    from tqdm import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    from gclvad.device import resolve_device
    from gclvad.scorer import load_scorer

    sources = video_ids(videos)  # before any slow work: a typo fails at once
    record = read_run(run)
    resolved = resolve_device(device)
    extractor = build_run_extractor(record, weights, str(resolved))
    scorer = load_scorer(record.models_path, record.postprocess, device=str(resolved))
    if scorer.dim != extractor.dim:
        raise GclvadError(
            f"{record.models_path}: the networks take {scorer.dim}-d features but extractor "
            f"{extractor.name!r} gives {extractor.dim}-d ones"
        )
    out_dir = Path(out_dir)
    (out_dir / "features").mkdir(parents=True, exist_ok=True)
    batch_size = int(batch_size or record.extractor.get("batch_size", 4))
    scored = []
    # Log lines go through tqdm.write, so they do not break the progress bar.
    with logging_redirect_tqdm(), tqdm(sources.items(), desc="scoring", unit="video") as progress:
        for video, source in progress:
            progress.set_postfix_str(video)
            scored.append(score_one(scorer, extractor, record, video, source, out_dir, batch_size))
            log.info("%s: %d frames scored, highest score %.3f", video, scored[-1].frames, scored[-1].max_score)
    return scored


def score_videos(
    run: str | Path,
    videos: Sequence[str | Path],
    out_dir: str | Path,
    weights: str | Path | None = None,
    device: str = "auto",
    batch_size: int | None = None,
) -> list[Path]:
    """Score videos (files or frame folders) with a trained run; returns the files written:
    <id>.csv and <id>.png for each video, in order.

    run: the run folder (or its models.pt). weights: the extractor weights file, or the
    "random"/"package" marker; None takes the run's recorded weights (relative paths are read
    from the current folder). batch_size: clips per extractor call (default: the run's).
    """
    scored = score_all(run, videos, out_dir, weights=weights, device=device, batch_size=batch_size)
    return [path for video in scored for path in (video.csv, video.png)]


def score_folder(
    run: str | Path,
    folder: str | Path,
    out_dir: str | Path,
    summary_path: str | Path,
    weights: str | Path | None = None,
    device: str = "auto",
) -> list[ScoredVideo]:
    """Score every video in `folder` and write a TSV summary, one row per video."""
    import pandas as pd

    scored = score_all(run, videos_in_folder(folder), out_dir, weights=weights, device=device)
    table = pd.DataFrame(
        [
            {
                "video": s.video,
                "source": str(s.source),
                "frames": s.frames,
                "segments": s.segments,
                "fps": s.fps,
                "max_score": s.max_score,
                "csv": str(s.csv),
                "png": str(s.png),
            }
            for s in scored
        ]
    )
    write_atomic(summary_path, lambda temporary: table.to_csv(temporary, sep="\t", index=False, float_format="%.6g"))
    return scored
