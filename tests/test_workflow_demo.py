"""The whole workflow on a small generated demo with the real default extractor (I3D with
its Kinetics-400 weights): auc.json, figures, the HTML report and the aggregate tables."""

import hashlib
import json

import pandas as pd
import pytest

from workflow import make_workdir, snakemake, tiny_config

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    config = tiny_config(
        datasets={"demo": {"extractor": "i3d"}},
        extractors={"i3d": {"weights": "package", "precision": "fp32", "batch_size": 4, "dtype": "float16"}},
        experiments={"ablation": ["AE_AllData", "GCL_B", "GCL_PT"], "seeds": [0, 1]},
    )
    workdir = make_workdir(tmp_path_factory.mktemp("demo"), config)
    snakemake(workdir, "results/demo/auc.json")
    # the headline result does not wait for the AE_AllData baseline of the Fig-4 histograms
    assert not (workdir / "results/demo/i3d/AE_AllData").exists()
    snakemake(workdir)  # the default target `all`: also the histograms
    return workdir


def test_dataset_auc_reports_the_default_run(demo):
    result = json.loads((demo / "results/demo/auc.json").read_text())
    assert result["variant"] == "GCL_PT" and result["seed"] == 0
    assert result["run"] == "results/demo/i3d/GCL_PT/seed0"
    for key in ("auc", "auc_d", "auc_g"):
        assert 0.0 <= result[key] <= 1.0
    assert result["auc"] == result["auc_d"]  # GCL scores with D (paper §3.4)
    # 3 test videos of 48 frames; the generator's annotations mark some of them
    assert result["videos"] == 3 and result["frames"] == 3 * 48
    annotations = pd.read_csv(demo / "results/demo/videos/annotations.csv")
    test_rows = annotations[annotations["video"].str.startswith("test")]
    assert result["anomalous_frames"] == int((test_rows["end_frame"] - test_rows["start_frame"]).sum())
    assert result["extractor"]["name"] == "i3d"
    assert result["cleaning"]["kept"] <= result["cleaning"]["rows"]
    assert set(result["steps"]) == {"pretrain_g", "pretrain_d", "gcl_loop"}


def test_features_record_the_real_weights(demo):
    import h5py

    from gclvad.extract.networks.i3d_checkpoint import package_checkpoint

    digest = hashlib.sha256(package_checkpoint().read_bytes()).hexdigest()
    with h5py.File(demo / "results/demo/features/i3d.h5", "r") as merged:
        assert merged.attrs["weights_sha256"] == digest
        assert merged.attrs["dim"] == 1024
        assert not merged.attrs.get("weights_random", False)


def test_figures_and_report(demo):
    plots = demo / "results/demo/i3d/GCL_PT/seed0/plots"
    for name in ("roc", "score_histograms", "video_scores", "training_curves"):
        assert (plots / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
    snakemake(demo, "--report", "report.html")
    html = (demo / "report.html").read_text(errors="replace")
    assert "roc.png" in html and "training_curves.png" in html and "score_histograms.png" in html


def test_ablation_and_seed_tables(demo):
    snakemake(demo, "results/demo/ablation.tsv", "results/demo/seeds.tsv")
    ablation = pd.read_csv(demo / "results/demo/ablation.tsv", sep="\t")
    assert ablation["variant"].tolist() == ["AE_AllData", "GCL_B", "GCL_PT"]
    assert ablation["auc"].between(0, 1).all()
    # AE_AllData has no D: its AUC is G's
    ae = ablation.set_index("variant").loc["AE_AllData"]
    assert ae["auc"] == ae["auc_g"] and pd.isna(ae["auc_d"])
    seeds = pd.read_csv(demo / "results/demo/seeds.tsv", sep="\t", dtype={"seed": str})
    summary = seeds[seeds["seed"] == "all"].set_index("variant")
    runs = seeds[seeds["seed"] != "all"]
    for variant in ("GCL_B", "GCL_PT"):
        values = runs.loc[runs["variant"] == variant, "auc"]
        assert len(values) == 2
        assert summary.loc[variant, "auc"] == pytest.approx(values.mean(), abs=1e-4)


def test_training_logs_epochs_and_a_run_exports_and_summarises(demo, tmp_path):
    import numpy as np

    from gclvad.cli.main import main
    from gclvad.datasets.segment_index import read_segment_index, split_videos
    from gclvad.scoring.frames import read_scores

    run = demo / "results/demo/i3d/GCL_PT/seed0"
    job_logs = "\n".join(path.read_text() for path in (demo / "logs/demo/i3d/GCL_PT/seed0").rglob("*.log"))
    assert "gcl_loop epoch 1/" in job_logs and ", ETA " in job_logs
    assert "\r" not in job_logs  # no progress bar in a job log
    assert main(["export", str(run), "-o", str(tmp_path / "export")]) == 0
    _, scored = split_videos(read_segment_index(demo / "results/demo/segments.tsv"))
    order = (tmp_path / "export/frame_predictions_videos.txt").read_text().splitlines()
    scores = read_scores(run / "scores.h5")
    assert order == [video for video in scored if video in scores] and len(order) == len(scores)
    predictions = np.load(tmp_path / "export/frame_predictions.npy")
    assert np.array_equal(predictions, np.concatenate([scores[video]["score"] for video in order]))
    assert main(["summary", str(demo / "results"), "-o", str(tmp_path / "summary.tsv")]) == 0
    summary = pd.read_csv(tmp_path / "summary.tsv", sep="\t")
    assert len(summary) == len(list((demo / "results").glob("*/*/*/seed*/auc.json"))) >= 1  # tables add runs
    headline = summary[(summary["variant"] == "GCL_PT") & (summary["seed"] == 0)]["auc"].iloc[0]
    assert headline == pytest.approx(json.loads((run / "auc.json").read_text())["auc"], abs=1e-4)
