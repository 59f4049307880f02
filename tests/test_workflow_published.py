"""The workflow on published features (format `features`): no video, one command to auc.json
with the field's metrics and where the features came from; reruns follow `crop_use`."""

from __future__ import annotations

import json

import pytest
import yaml
from published_fixtures import write_published
from test_workflow_reruns import planned_jobs

from workflow import make_workdir, snakemake, tiny_config, write_config

pytestmark = pytest.mark.slow

TARGET = "results/fx/auc.json"


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    root = tmp_path_factory.mktemp("published")
    published = write_published(root / "data", "ucf_crime")
    config = tiny_config()
    config["datasets"] = {"fx": {**published.spec, "training": "tiny", "crop_use": "mean"}}
    workdir = make_workdir(root / "workdir", config)
    snakemake(workdir, TARGET)
    return workdir


def test_published_features_run_to_the_fields_metrics(finished):
    result = json.loads((finished / TARGET).read_text())
    assert result["run"] == "results/fx/published/GCL_PT/seed0"
    assert result["videos"] == 8 and result["frames"] > 0
    for key in ("auc", "average_precision", "auc_anomalous_videos", "macro_auc", "false_alarm_rate"):
        assert 0.0 <= result[key] <= 1.0, key
    assert result["auc"] > 0.6 and result["false_alarm_threshold"] == 0.5
    # provenance: where the features came from, the lists they were read by, how crops were used
    assert result["feature_source"].endswith("features") and result["weights_sha256"] == "published"
    assert len(result["train_list_sha256"]) == 64 and len(result["test_list_sha256"]) == 64
    assert result["crops"] == "mean"
    # nothing was copied: the merged file links the .npy files
    assert (finished / "results/fx/features/published.h5").stat().st_size < 200_000
    assert not (finished / "results/fx/features/published").exists()  # no per-video extraction


def test_changing_crop_use_reruns_training_but_reads_no_video_or_feature_file(finished, tmp_path):
    import shutil

    workdir = tmp_path / "workdir"
    shutil.copytree(finished, workdir, symlinks=True)
    config = yaml.safe_load((workdir / "config" / "config.yaml").read_text())
    config["datasets"]["fx"]["crop_use"] = "each"
    write_config(workdir, config)
    dry_run = snakemake(workdir, "-n", TARGET)
    output = dry_run.stdout
    # no rule of video datasets is tried on it (they would fail on its extractor name)
    assert "InputFunctionException" not in output + dry_run.stderr, dry_run.stderr[-3000:]
    run = {"clean_features", "pretrain_g", "pretrain_d", "gcl_loop", "score_run", "evaluate_run", "plot_run"}
    assert planned_jobs(output) == {(rule, "GCL_PT") for rule in run - {"clean_features"}} | {
        ("clean_features", None),
        ("td_enrichment", None),
        ("dataset_auc", None),
    }
    snakemake(workdir, TARGET)
    assert json.loads((workdir / TARGET).read_text())["crops"] == "each"
