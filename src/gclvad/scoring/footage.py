"""`gclvad score`: new videos scored with a trained run, per frame, as the workflow scores its own.

The run is opened with gclvad.scoring.run.open_run (the same extractor, weights checked by
sha256). Each video is extracted into out/features/<id>.h5 (a cache: reused while the
source, weights and settings are unchanged), its segments scored exactly as the workflow
scores test videos and spread onto frames, and out/<id>.csv and out/<id>.png written.

Inputs are found as `gclvad extract` finds them (`gclvad.decode.inputs.collect_videos`:
files, frame folders, folders of videos). A video that cannot be decoded is a bad video,
handled as extraction handles one (`on_bad_video`): "stop" raises BadVideoError naming it,
"skip" reports it (a warning, and in the ScoreReport) and scores the others.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from gclvad.atomic import write_atomic
from gclvad.decode.inputs import ON_BAD_VIDEO, collect_videos, videos_in_folder
from gclvad.errors import BadVideoError, GclvadError
from gclvad.evaluation.plots import plot_video_scores
from gclvad.extract.one_video import extract_video
from gclvad.features.feature_set import single_video, use_crops
from gclvad.features.files import read_video_features
from gclvad.scoring.frames import SCORE_COLUMNS, write_scores_csv
from gclvad.scoring.run import RunRecord, open_run
from gclvad.scoring.scorer import score_feature_set

log = logging.getLogger(__name__)

# Attributes a cached feature file must share with the run (and the source must not have
# changed) to be reused instead of extracting again.
CACHE_KEYS = ("extractor", "weights_sha256", "segment_length", "preprocessing", "source", "source_fingerprint")


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


@dataclass
class ScoreReport:
    """What a call scored, and the videos it skipped as bad (video id -> problem)."""

    scored: list[ScoredVideo] = field(default_factory=list)
    bad: dict[str, str] = field(default_factory=dict)


# ---------------------------------------------------------------- videos


def source_fingerprint(source: Path) -> str:
    """Size and modification time of a video file (or of a frame folder's files): changes
    when the source is replaced, so a stale cached feature file is not reused."""
    files = sorted(p for p in source.iterdir() if p.is_file()) if source.is_dir() else [source]
    stats = [p.stat() for p in files]
    return f"{len(stats)}:{sum(s.st_size for s in stats)}:{max((s.st_mtime_ns for s in stats), default=0)}"


# ---------------------------------------------------------------- features and scores


def cached_features(path: Path, expected: dict) -> tuple[np.ndarray, dict] | None:
    """(features, attrs) of a cached feature file that matches `expected`, else None."""
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
    expected = {
        "extractor": extractor.name,
        "weights_sha256": extractor.weights_sha256,
        "segment_length": record.segment_length,
        "segment_stride": record.segment_stride if record.segment_stride != record.segment_length else None,
        "frame_step": record.frame_step if record.frame_step != 1 else None,
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
        frame_step=record.frame_step,
    )
    # Read back rather than kept: the stored dtype's rounding is part of what the run saw.
    return read_video_features(path)


def video_frame_scores(
    scorer, features: np.ndarray, attrs: dict, video: str, record: RunRecord
) -> dict[str, np.ndarray]:
    """Per-frame scores of one video, by the code that scores the workflow's test videos
    (its crops used and its scores post-processed as the run's)."""
    feature_set = single_video(
        use_crops(features, record.crops), video, int(attrs["frames"]), int(attrs["padded_tail"]), attrs
    )
    scores = score_feature_set(scorer, feature_set, record.segment_length, record.postprocess.smoothing_sigma)[video]
    return {name: scores[name] for name in SCORE_COLUMNS if name in scores}


def score_one(
    scorer, extractor, record: RunRecord, video: str, source: Path, out_dir: Path, batch_size: int
) -> ScoredVideo:
    """Extract (or reuse) one video's features, score them, write its CSV and plot."""
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
    on_bad_video: str = "stop",
    precision: str | None = None,
    frame_step: int | None = None,
) -> ScoreReport:
    """Score each video with the run. A bad video (one that does not decode into a segment)
    stops the call with "stop" (BadVideoError) and is reported and passed over with "skip".
    precision and frame_step: see gclvad.scoring.run.open_run (default: the run's)."""
    if on_bad_video not in ON_BAD_VIDEO:
        raise GclvadError(f"on_bad_video must be one of {', '.join(ON_BAD_VIDEO)}; got {on_bad_video!r}")
    sources = collect_videos(videos)  # before any slow work: a typo fails at once
    opened = open_run(run, weights=weights, device=device, precision=precision, frame_step=frame_step)
    record, extractor, scorer = opened.record, opened.extractor, opened.scorer
    out_dir = Path(out_dir)
    (out_dir / "features").mkdir(parents=True, exist_ok=True)
    batch_size = int(batch_size or record.extractor.get("batch_size", 4))
    report = ScoreReport()
    # Log lines go through tqdm.write, so they do not break the progress bar.
    with logging_redirect_tqdm(), tqdm(sources.items(), desc="scoring", unit="video") as progress:
        for video, source in progress:
            progress.set_postfix_str(video)
            try:
                scored = score_one(scorer, extractor, record, video, source, out_dir, batch_size)
            except BadVideoError as error:
                _bad_video(report, video, source, error, on_bad_video)
                continue
            report.scored.append(scored)
            log.info("%s: %d frames scored, highest score %.3f", video, scored.frames, scored.max_score)
    return report


def _bad_video(report: ScoreReport, video: str, source: Path, error: BadVideoError, on_bad_video: str) -> None:
    """Stop at a bad video, or note it and go on: the words `gclvad extract` uses."""
    problem = error.problem if error.path == source else str(error)
    if on_bad_video == "stop":
        raise BadVideoError(
            source, f"{problem} (to score the other videos, skip such ones: `gclvad score --on-bad-video skip`)"
        ) from error
    report.bad[video] = problem
    log.warning("%s: skipped, %s", source, problem)


def score_videos(
    run: str | Path,
    videos: Sequence[str | Path],
    out_dir: str | Path,
    weights: str | Path | None = None,
    device: str = "auto",
    batch_size: int | None = None,
    on_bad_video: str = "stop",
) -> list[Path]:
    """Score videos (files, frame folders, folders of videos) with a trained run; returns the
    files written: <id>.csv and <id>.png for each video scored, in order.

    run: the run folder (or its models.pt). weights: the extractor weights file, or the
    "random"/"package" marker; None takes the run's recorded weights (relative paths are read
    from the current folder). batch_size: clips per extractor call (default: the run's).
    """
    report = score_all(
        run, videos, out_dir, weights=weights, device=device, batch_size=batch_size, on_bad_video=on_bad_video
    )
    return [path for video in report.scored for path in (video.csv, video.png)]


def score_folder(
    run: str | Path,
    folder: str | Path,
    out_dir: str | Path,
    summary_path: str | Path,
    weights: str | Path | None = None,
    device: str = "auto",
) -> list[ScoredVideo]:
    """Score every video in `folder` and write a TSV summary, one row per video."""
    scored = score_all(run, videos_in_folder(folder), out_dir, weights=weights, device=device).scored
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
