"""One function per workflow stage: what a Snakemake rule (or the CLI) calls.

Each takes plain paths and values, composes the concept modules, and writes its outputs.
The Snakemake scripts in workflow/scripts/ do nothing but call these.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Mapping, Sequence

log = logging.getLogger(__name__)


def generate_demo_dataset(manifest: str | Path, generate: Mapping) -> Path:
    """Write the synthetic demo videos beside `manifest` (videos.csv + annotations.csv)."""
    from gclvad.datasets.demo import generate_demo

    written = generate_demo(Path(manifest).parent, **generate)
    log.info("demo dataset written: %s", written)
    return written


def index_dataset(spec: Mapping, segment_length: int, on_bad_video: str, out_path: str | Path) -> None:
    """Read a dataset, decode every video once and write its segment index (TSV)."""
    from gclvad.datasets import load_dataset
    from gclvad.segment_index import build_segment_index, write_segment_index

    videos = load_dataset(dict(spec))
    table = build_segment_index(videos, segment_length, on_bad_video)
    write_segment_index(table, out_path)
    log.info("%d videos indexed, %d usable", len(table), table["status"].isin(["ok", "truncated"]).sum())


def extract_video_features(
    source: str | Path, out_path: str | Path, extractor: Mapping, segment_length: int, device: str
) -> None:
    """Run one extractor over one video and store its per-segment features."""
    from gclvad.extraction import extract_video
    from gclvad.extractors import build_extractor

    model = build_extractor(
        extractor["name"], extractor["weights"], device=device, precision=extractor.get("precision", "fp32")
    )
    extract_video(
        model,
        Path(source),
        Path(out_path),
        segment_length=segment_length,
        batch_size=extractor.get("batch_size", 4),
        dtype=extractor.get("dtype", "float16"),
    )


def merge_features(parts: Sequence[str | Path], out_path: str | Path) -> None:
    """Merge per-video feature files (named <video>.h5) into one file per dataset."""
    from gclvad.features import merge_video_features

    merge_video_features({Path(p).stem: Path(p) for p in parts}, Path(out_path))


# ----------------------------------------------------------------------------------
# Which segments train and which are scored
# ----------------------------------------------------------------------------------


def split_videos(index_path: str | Path, train_on: Sequence[str]) -> tuple[list[str], list[str]]:
    """(training video ids, scored video ids) among the usable videos of the segment index.

    Unsplit footage is both trained on and scored; `train_on` may add the test split
    (transductive training).
    """
    import pandas as pd

    from gclvad.segment_index import read_segment_index, usable_videos

    table = read_segment_index(index_path).set_index("video")
    usable = usable_videos(table.reset_index())
    split = table["split"]
    unsplit = [v for v in usable if pd.isna(split[v]) or split[v] == ""]
    train = [v for v in usable if v in unsplit or split[v] in set(train_on)]
    scored = [v for v in usable if v in unsplit or split[v] == "test"]
    return train, scored


def training_data(
    features_path: str | Path,
    index_path: str | Path,
    train_on: Sequence[str],
    labels: Mapping[str, int | None] | None = None,
):
    """The training segments of a dataset as `TrainingData` (labels only when given)."""
    import numpy as np

    from gclvad.features import load_feature_set
    from gclvad.gcl.train import TrainingData

    train_ids, _ = split_videos(index_path, train_on)
    feature_set = load_feature_set(features_path, train_ids)
    video_label = None
    if labels is not None:
        video_label = np.array([-1 if labels.get(v) is None else int(labels[v]) for v in feature_set.videos])
    return TrainingData(
        features=feature_set.features,
        video=feature_set.video_of_row(),
        position=feature_set.position_of_row(),
        video_label=video_label,
    )


def clean_training_features(
    features_path: str | Path,
    index_path: str | Path,
    train_on: Sequence[str],
    cleaning: Mapping,
    mask_path: str | Path,
    summary_path: str | Path,
) -> dict:
    """Temporal-difference cleaning of the training segments (paper §3.3): mask + summary."""
    import json

    import numpy as np

    from gclvad.cleaning import temporal_difference_mask
    from gclvad.runs import cleaning_overrides

    data = training_data(features_path, index_path, train_on)
    settings = cleaning_overrides(cleaning)
    mask, summary = temporal_difference_mask(
        data.features,
        data.video,
        data.position,
        threshold=settings.get("td_threshold", 0.70),
        normalize=settings.get("td_normalize", "l2"),
        mode=settings.get("td_mode", "absolute"),
        percentile=settings.get("td_percentile", 70.0),
    )
    np.savez_compressed(mask_path, keep=mask)
    Path(summary_path).write_text(json.dumps(summary, indent=2, default=float) + "\n")
    log.info("temporal-difference cleaning kept %d of %d segments", int(mask.sum()), mask.size)
    return summary
