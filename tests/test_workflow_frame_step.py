"""A dataset's `frame_step` through the workflow: its segment index, features, run record,
frame scores and evaluation all count segments spanning segment_length * frame_step frames,
and `gclvad score` of a test video with the trained run gives the workflow's own scores."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gclvad.features.files import read_video_features
from gclvad.gcl.store import read_models_metadata
from gclvad.scoring.footage import score_videos
from gclvad.scoring.frames import read_scores
from workflow import make_workdir, snakemake, tiny_config

RUN = "results/demo/r3d_18/GCL_PT/seed0"
FRAMES = 64  # two spans of 32 frames (16 taken every 2)
SPAN = 32


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    config = tiny_config(
        datasets={"demo": {"generate": {"n_train": 3, "n_test": 3, "frames": FRAMES}, "frame_step": 2}}
    )
    work = make_workdir(tmp_path_factory.mktemp("frame_step"), config)
    snakemake(work, "results/demo/auc.json")
    return work


def test_every_stage_counts_spans_of_every_second_frame(workdir):
    index = pd.read_csv(workdir / "results/demo/segments.tsv", sep="\t", dtype={"video": str})
    assert index["segments"].eq(2).all() and index["padded_tail"].eq(0).all()
    video = index["video"].iloc[0]
    _, attrs = read_video_features(workdir / f"results/demo/features/r3d_18/{video}.h5")
    assert (attrs["frame_step"], attrs["frames"]) == (2, FRAMES)
    metadata = read_models_metadata(workdir / RUN / "models.pt")
    assert metadata["frame_step"] == 2
    scores = read_scores(workdir / RUN / "scores.h5")
    for values in scores.values():
        raw = values["score_raw"]
        assert len(raw) == FRAMES
        assert [len(np.unique(raw[start : start + SPAN])) for start in (0, SPAN)] == [1, 1]
    result = json.loads((workdir / RUN / "auc.json").read_text())
    assert result["frames"] == 3 * FRAMES and result["frame_step"] == 2


def test_gclvad_score_gives_the_workflows_scores(workdir, tmp_path, monkeypatch):
    monkeypatch.chdir(workdir)
    videos = pd.read_csv(workdir / "results/demo/videos/videos.csv", dtype={"video": str})
    name = videos.loc[videos["split"] == "test", "video"].iloc[0]
    score_videos(RUN, [workdir / "results/demo/videos" / f"{name}.mp4"], tmp_path, device="cpu")
    table = pd.read_csv(tmp_path / f"{name}.csv")
    reference = read_scores(workdir / RUN / "scores.h5")[name]
    for column in ("score", "score_raw", "d", "g"):
        np.testing.assert_allclose(table[column], reference[column], rtol=1e-5, atol=1e-6)
