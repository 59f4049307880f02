"""The segment index of a dataset: one row per video saying whether and how it can be used.

Building it decodes every video once (`probe_video`), so frame counts, and the number of
segments each video gives, come from decoding rather than container headers. It also checks
each video's annotation against that frame count. Later steps read the index instead of
probing again, and use only the videos `usable_videos` returns.

Columns: video, source, split (missing, NaN, for unsplit footage), frames, fps, width,
height, segments, padded_tail, status ("ok", "truncated", "bad") and reason ("" when ok).
A bad video has 0 segments, and 0 in the columns decoding could not measure.

A video is bad when its reader found a problem (a listed file that does not exist), when
it does not decode into one segment, or when its annotation does not fit it. Every video
is probed before anything is refused, so one run reports every bad video and every
duplicated id (with the lines that list it) at once.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from gclvad.atomic import write_atomic
from gclvad.datasets.base import Video, is_scored, is_trained
from gclvad.decode.inputs import ON_BAD_VIDEO
from gclvad.decode.video import OK, TRUNCATED, VideoInfo, probe_video
from gclvad.decode.windows import padded_tail, segment_count, shortest_video, too_short_problem
from gclvad.errors import BadDatasetError, BadVideoError, GclvadError
from gclvad.features.npy import check_finite, video_shape

BAD = "bad"
COLUMNS = [
    "video", "source", "split", "frames", "fps", "width", "height",
    "segments", "padded_tail", "status", "reason",
]  # fmt: skip
_INT_COLUMNS = ["frames", "width", "height", "segments", "padded_tail"]
# Below this many videos a progress bar is noise.
_PROGRESS_FROM = 20


def _one_line(text: str) -> str:
    # Reasons go into a TSV cell and into one line of a message.
    return " ".join(str(text).split())


def _bad_row(video: Video, reason: str, info: VideoInfo | None = None) -> dict:
    """A row for an unusable video: 0 segments; what decoding measured, if it got that far."""
    if info is None:
        info = VideoInfo(frames=0, fps=0.0, width=0, height=0)
    row = _row(video, frames=info.frames, fps=info.fps, width=info.width, height=info.height, segments=0, tail=0)
    row.update(status=BAD, reason=_one_line(reason))
    return row


def _row(video: Video, *, frames, fps, width, height, segments, tail) -> dict:
    return {
        "video": video.id, "source": str(video.source), "split": video.split,
        "frames": frames, "fps": fps, "width": width, "height": height,
        "segments": segments, "padded_tail": tail, "status": OK, "reason": "",
    }  # fmt: skip


def index_row(video: Video, segment_length: int, stride: int | None = None, frame_step: int = 1) -> dict:
    """Probe one video and check its annotation; a dict with the index's columns."""
    if video.problem:
        return _bad_row(video, video.problem)
    if video.kind == "features":
        stride, frame_step = None, 1  # published features: consecutive rows, whatever windows videos are cut into
    try:
        info = probe_features(video, segment_length) if video.kind == "features" else probe_video(video.source)
    except BadVideoError as error:
        return _bad_row(video, error.problem)
    if info.frames < shortest_video(segment_length, frame_step):
        return _bad_row(video, too_short_problem(info.frames, segment_length, frame_step), info)
    try:
        video.truth(info.frames)
    except BadDatasetError as error:
        return _bad_row(video, f"annotation does not fit the video: {error}", info)
    row = _row(
        video, frames=info.frames, fps=info.fps, width=info.width, height=info.height,
        segments=segment_count(info.frames, segment_length, stride, frame_step),
        tail=padded_tail(info.frames, segment_length, stride, frame_step),
    )  # fmt: skip
    if info.status == TRUNCATED:
        row.update(status=TRUNCATED, reason=_one_line(info.reason))
    return row


def probe_features(video: Video, segment_length: int) -> VideoInfo:
    """What the published features of a video amount to: segment_length frames per row, after
    checking that they can be read in place and hold no NaN or infinity."""
    try:
        rows = video_shape(video.parts)[0]
        for part in video.parts:
            check_finite(part)
    except GclvadError as error:
        raise BadVideoError(video.source, str(error)) from None
    return VideoInfo(frames=rows * segment_length, fps=0.0, width=0, height=0)


def duplicated_ids(videos: list[Video]) -> list[str]:
    """One line per id that more than one video has, naming where each is listed."""
    places: dict[str, list[str]] = {}
    for video in videos:
        places.setdefault(video.id, []).append(video.listed_at or str(video.source))
    return [f"  {video_id}: {', '.join(where)}" for video_id, where in places.items() if len(where) > 1]


def _bad_video_lines(videos: list[Video], rows: list[dict]) -> list[str]:
    lines = []
    for video, row in zip(videos, rows, strict=True):
        if row["status"] == BAD:
            where = f", {video.listed_at}" if video.listed_at else ""
            lines.append(f"  {row['source']} (video {row['video']}{where}): {row['reason']}")
    return lines


def _problem_message(duplicates: list[str], bad: list[str], total: int, on_bad_video: str) -> str:
    """Every problem that stops indexing, in one message."""
    parts = []
    if duplicates:
        parts += [
            (
                f"video ids must be unique (they name result files), but {len(duplicates)} id(s) are listed "
                "more than once; give each video its own id (`on_bad_video: skip` does not skip these):"
            ),
            *duplicates,
        ]
    if bad and on_bad_video == "stop":
        parts += [
            f"{len(bad)} of {total} videos cannot be used:",
            *bad,
            "Fix or remove them, or set `on_bad_video: skip` in the config to exclude them from the run.",
        ]
    elif bad:
        parts += [f"Besides, {len(bad)} of {total} videos cannot be used (`on_bad_video: skip` will skip them):", *bad]
    return "\n".join(parts)


def build_segment_index(
    videos: list[Video],
    segment_length: int,
    on_bad_video: str = "stop",
    progress: bool | None = None,
    stride: int | None = None,
    frame_step: int = 1,
) -> pd.DataFrame:
    """Probe every video and tabulate it (see the module docstring for the columns).

    on_bad_video: "stop" raises GclvadError listing every bad video (after probing all of
    them, so one run shows every problem); "skip" keeps them as rows with status "bad".
    Duplicated ids raise in both cases (an id names the video's files), after probing too,
    so that the message also lists every bad video.
    progress: show a tqdm bar on stderr; None shows it for 20 videos or more.
    stride: frames between window starts (default segment_length): `segments` counts the
    windows (and `padded_tail` the last one's padding) of overlapping windows.
    frame_step: every frame_step-th frame feeds a segment, which then spans frame_step times
    segment_length frames (`segments` and `padded_tail` count those).
    """
    if on_bad_video not in ON_BAD_VIDEO:
        raise GclvadError(f"on_bad_video must be one of {', '.join(ON_BAD_VIDEO)}; got {on_bad_video!r}")
    if segment_length < 1:
        raise GclvadError(f"segment_length must be at least 1; got {segment_length}")
    show = len(videos) >= _PROGRESS_FROM if progress is None else progress
    rows = [
        index_row(video, segment_length, stride, frame_step)
        for video in tqdm(videos, desc="probing videos", unit="video", file=sys.stderr, disable=not show)
    ]
    duplicates, bad = duplicated_ids(videos), _bad_video_lines(videos, rows)
    if duplicates or (bad and on_bad_video == "stop"):
        raise GclvadError(_problem_message(duplicates, bad, len(videos), on_bad_video))
    return pd.DataFrame(rows, columns=COLUMNS)


def index_summary(index: pd.DataFrame, shown: int = 10) -> list[str]:
    """Console lines about an index: counts, then each skipped video and each truncated one
    with its reason (at most `shown` of each, then how many more)."""
    usable = index["status"].isin([OK, TRUNCATED])
    lines = [f"{len(index)} videos indexed, {int(usable.sum())} usable"]
    for status, what in ((BAD, "skipped (on_bad_video: skip)"), (TRUNCATED, "truncated, used up to the damage")):
        rows = index[index["status"] == status]
        if len(rows):
            lines.append(f"{len(rows)} {what}:")
            lines += [f"  {row.video} ({row.source}): {row.reason}" for row in rows.head(shown).itertuples()]
            if len(rows) > shown:
                lines.append(f"  ... and {len(rows) - shown} more (status {status} in the segment index)")
    return lines


def write_segment_index(index: pd.DataFrame, path: Path) -> None:
    """Write the index as TSV; a reader never sees a half-written file (temp file + rename)."""
    write_atomic(path, lambda temporary: index.to_csv(temporary, sep="\t", index=False, columns=COLUMNS))


def read_segment_index(path: Path) -> pd.DataFrame:
    """Read an index written by `write_segment_index`, with the types `build_segment_index` gives."""
    path = Path(path)
    try:
        # Only an empty split is missing (unsplit footage); an empty reason stays "".
        index = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, na_values={"split": [""]})
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise BadDatasetError(path, f"cannot read the segment index: {error}") from error
    missing = [c for c in COLUMNS if c not in index.columns]
    if missing:
        raise BadDatasetError(path, f"segment index lacks columns {', '.join(missing)} (expected {', '.join(COLUMNS)})")
    index = index[COLUMNS].copy()
    try:
        index[_INT_COLUMNS] = index[_INT_COLUMNS].astype("int64")
        index["fps"] = index["fps"].astype("float64")
    except ValueError as error:
        raise BadDatasetError(path, f"segment index holds a non-number in a number column: {error}") from error
    return index


def usable_videos(index: pd.DataFrame) -> list[str]:
    """Ids of the videos later steps use: status ok or truncated, in index order."""
    return index.loc[index["status"].isin([OK, TRUNCATED]), "video"].tolist()


def split_videos(index: pd.DataFrame, train_on=("train",)) -> tuple[list[str], list[str]]:
    """(training video ids, scored video ids) among the usable videos of the index, by the
    datasets' split rule (`is_trained`, `is_scored`): unsplit footage is in both."""
    usable = index[index["status"].isin([OK, TRUNCATED])]
    splits = [None if pd.isna(split) or split == "" else split for split in usable["split"]]
    videos = usable["video"].tolist()
    train = [video for video, split in zip(videos, splits, strict=True) if is_trained(split, train_on)]
    scored = [video for video, split in zip(videos, splits, strict=True) if is_scored(split)]
    return train, scored
