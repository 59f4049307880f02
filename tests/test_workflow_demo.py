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
