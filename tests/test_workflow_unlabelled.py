"""A practitioner's own footage: a folder of videos with no split, no labels, no annotations.
Every video is trained on and scored; nothing needs ground truth."""

import json

import pandas as pd
import pytest

from gclvad.datasets.synthetic.demo import generate_demo
from gclvad.scoring.frames import read_scores
from workflow import make_workdir, snakemake, tiny_config

pytestmark = pytest.mark.slow


def test_unlabelled_footage_is_trained_on_and_scored(tmp_path):
    footage = tmp_path / "footage"
    manifest = generate_demo(footage, seed=3, n_train=3, n_test=2, frames=40)
    videos = pd.read_csv(manifest)[["video", "path"]]  # drop split and label: no labels at all
    videos.to_csv(footage / "cameras.csv", index=False)
    config = tiny_config()
    config["datasets"] = {
        "mycam": {
            "format": "generic",
            "manifest": str(footage / "cameras.csv"),
            "extractor": "r3d_18",
            "training": "tiny",
        }
    }
    workdir = make_workdir(tmp_path / "work", config)
    snakemake(workdir, "results/mycam/auc.json")

    scores = read_scores(workdir / "results/mycam/r3d_18/GCL_PT/seed0/scores.h5")
    assert sorted(scores) == sorted(videos["video"])
    assert all(len(named["score"]) == 40 for named in scores.values())
    result = json.loads((workdir / "results/mycam/auc.json").read_text())
    assert "auc" not in result and result["videos"] == 0  # nothing to evaluate against
    assert result["steps"]["gcl_loop"] > 0
    index = pd.read_csv(workdir / "results/mycam/segments.tsv", sep="\t")
    assert index["split"].isna().all()
