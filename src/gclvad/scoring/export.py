"""`gclvad export`: a finished workflow run's frame scores as files other tools read.

A run folder (results/{dataset}/{extractor}/{variant}/seed{seed}/) holds its frame scores
in scores.h5 (`frames.read_scores`); the dataset's segment index (results/{dataset}/
segments.tsv, two folders up) holds each video's fps and the order of the videos. Written
into the export folder:

    <video>.csv                  one per scored video, the columns `gclvad score` writes
    frame_predictions.npy        float32: the delivered `score` of every frame of every scored
                                 video, concatenated in the index's row order (the dataset's
                                 test list order), as RTFM / UR-DMU style evaluation scripts
                                 `np.load` their predictions and compare them with their gt
    frame_predictions_videos.txt the videos of that concatenation, one id a line, in its order

Nothing is overwritten unless asked (force): a half-replaced export would mix two runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from gclvad.atomic import write_atomic, write_text_atomic
from gclvad.datasets.segment_index import read_segment_index
from gclvad.errors import GclvadError
from gclvad.scoring.frames import SCORE_COLUMNS, VideoScores, read_scores, write_scores_csv

SCORES_FILE = "scores.h5"
PREDICTIONS_FILE = "frame_predictions.npy"
ORDER_FILE = "frame_predictions_videos.txt"


@dataclass
class Export:
    csvs: list[Path]  # one per video, in `videos` order
    predictions: Path
    order: Path
    videos: list[str]  # the concatenation's order
    frames: int  # length of the concatenation


def default_index_path(run: Path) -> Path:
    """results/{dataset}/segments.tsv of results/{dataset}/{extractor}/{variant}/seed{seed}."""
    return run.resolve().parents[2] / "segments.tsv"


def export_run(
    run: str | Path, out_dir: str | Path, *, index_path: str | Path | None = None, force: bool = False
) -> Export:
    """Write the run's per-video CSVs and the concatenated frame predictions into `out_dir`."""
    run, out_dir = Path(run), Path(out_dir)
    scores = _run_scores(run)
    index_path = Path(index_path) if index_path is not None else default_index_path(run)
    if not index_path.is_file():
        raise GclvadError(
            f"{index_path}: segment index missing (the dataset's results/{{dataset}}/segments.tsv, which gives "
            "the videos' order and fps); point to it with --index"
        )
    index = read_segment_index(index_path)
    videos = _index_order(scores, index, index_path)
    csvs = [out_dir / f"{video}.csv" for video in videos]
    targets = [*csvs, out_dir / PREDICTIONS_FILE, out_dir / ORDER_FILE]
    _refuse_overwrite(targets, force)
    out_dir.mkdir(parents=True, exist_ok=True)
    fps = index.set_index("video")["fps"]
    for video, csv in zip(videos, csvs, strict=True):
        named = scores[video]  # scores.h5 gives them sorted by name: in `gclvad score`'s column order
        in_order = {name: named[name] for name in SCORE_COLUMNS if name in named}
        write_scores_csv(csv, in_order, float(fps[video]))  # fps 0 (unknown): no time column
    predictions = concatenated_predictions(scores, videos)
    predictions_path, order_path = targets[-2:]
    write_atomic(predictions_path, lambda temporary: _save_npy(temporary, predictions))
    write_text_atomic(order_path, "".join(f"{video}\n" for video in videos))
    return Export(csvs=csvs, predictions=predictions_path, order=order_path, videos=videos, frames=len(predictions))


def concatenated_predictions(scores: Mapping[str, VideoScores], videos: list[str]) -> np.ndarray:
    """(frames,) float32: the delivered `score` of `videos`, one after the other."""
    return np.concatenate([np.asarray(scores[video]["score"], np.float32) for video in videos])


def _save_npy(path: Path, values: np.ndarray) -> None:
    with open(path, "wb") as out:  # np.save would append .npy to the temporary's name
        np.save(out, values, allow_pickle=False)


def _run_scores(run: Path) -> dict[str, VideoScores]:
    """The frame scores in the run folder's scores.h5, each video with its delivered `score`."""
    if not run.is_dir():
        raise GclvadError(f"{run}: not a run folder (results/{{dataset}}/{{extractor}}/{{variant}}/seed{{seed}}/)")
    path = run / SCORES_FILE
    if not path.is_file():
        raise GclvadError(f"{path}: no {SCORES_FILE}; is {run} a finished workflow run (its score_run job done)?")
    try:
        scores = read_scores(path)
    except (OSError, KeyError) as error:
        raise GclvadError(f"{path}: cannot read frame scores ({error})") from error
    lacking = [video for video, named in scores.items() if "score" not in named]
    if not scores or lacking:
        raise GclvadError(f"{path}: no frame scores, or videos without a 'score' ({', '.join(lacking[:5])})")
    return scores


def _index_order(scores: Mapping[str, VideoScores], index: pd.DataFrame, index_path: Path) -> list[str]:
    """The scored videos in the index's row order; every one must be in the index."""
    listed = index["video"].tolist()
    unknown = sorted(set(scores) - set(listed))
    if unknown:
        raise GclvadError(
            f"{index_path}: {len(unknown)} scored video(s) are not in this segment index "
            f"({', '.join(unknown[:5])}); is it the index of the run's dataset?"
        )
    return [video for video in listed if video in scores]


def _refuse_overwrite(targets: list[Path], force: bool) -> None:
    existing = [path for path in targets if path.exists()]
    if existing and not force:
        more = f" (and {len(existing) - 1} more files of an earlier export)" if len(existing) > 1 else ""
        raise GclvadError(f"{existing[0]}: exists{more}; pass --force to overwrite it")
