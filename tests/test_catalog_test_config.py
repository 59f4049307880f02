"""The workflow's test config `.test/` as the Snakemake workflow catalog's standardized usage
runs it: `snakemake --directory .test --cores 2` from the repository root. It runs in a copy of
`.test` (so that no results are left in the repository) with the repository's Snakefile: one
tiny generated dataset, centre-crop I3D with its Kinetics-400 weights, preset `small`, GCL_PT."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from workflow import REPO, job_env, planned_rules

pytestmark = pytest.mark.slow

TARGET = "results/test/auc.json"
RUN = "results/test/i3d/GCL_PT/seed0"
# what a run of .test leaves beside its config (git-ignored): never copied into the test's copy
RUN_LEFTOVERS = shutil.ignore_patterns("results", "logs", "benchmarks", ".snakemake", "report.*")


def catalog_snakemake(root: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """`snakemake --directory .test --cores 2 ARGS` in `root` (which holds a copy of .test),
    with the repository's Snakefile and so its workflow profile, profiles/default."""
    command = [
        sys.executable,
        *("-m", "snakemake", "--snakefile", str(REPO / "Snakefile")),
        *("--directory", ".test", "--cores", "2", *args),
    ]
    result = subprocess.run(command, cwd=root, capture_output=True, text=True, timeout=timeout, env=job_env())
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout[-4000:]}\n{result.stderr[-8000:]}"
    return result


@pytest.fixture(scope="module")
def test_run(tmp_path_factory) -> tuple[Path, float]:
    """A copy of .test after the catalog's command on its dataset's auc.json, and its seconds."""
    root = tmp_path_factory.mktemp("catalog")
    shutil.copytree(REPO / ".test", root / ".test", ignore=RUN_LEFTOVERS)
    started = time.monotonic()
    catalog_snakemake(root, TARGET)
    return root / ".test", time.monotonic() - started


def test_test_config_runs_the_workflow_to_a_finite_auc(test_run):
    workdir, seconds = test_run
    result = json.loads((workdir / TARGET).read_text())
    assert isinstance(result["auc"], float) and math.isfinite(result["auc"]), result["auc"]
    assert 0.0 <= result["auc"] <= 1.0
    # the run of .test/config/config.yaml, not of config/config.yaml: its one dataset, the
    # centre-crop I3D with the shipped weights, the paper's GCL_PT under preset `small`
    assert result["dataset"] == "test" and result["run"] == RUN
    assert result["extractor"]["name"] == "i3d" and result["extractor"]["crops"] == "centre"
    assert result["extractor"]["weights"] == "package"
    assert result["variant"] == "GCL_PT" and result["seed"] == 0
    assert result["videos"] == 3 and result["frames"] == 3 * 64  # n_test 3 of 64 frames
    assert 0 < result["anomalous_frames"] < result["frames"]
    assert result["steps"] == {"pretrain_g": 150, "pretrain_d": 150, "gcl_loop": 150}  # small: >= 150 a stage
    assert (result["cleaning"]["mode"], result["cleaning"]["threshold"]) == ("absolute", 0.70)  # the paper's D_th
    print(f".test: {TARGET} in {seconds:.0f} s")


def test_test_config_run_is_complete(test_run):
    """A second dry run plans nothing; the catalog's command without a target (rule `all`)
    adds only the Fig-4 histograms and their AE_AllData baseline, on the same features."""
    workdir, _ = test_run
    again = catalog_snakemake(workdir.parent, "-n", TARGET)
    output = again.stdout + again.stderr
    assert "Nothing to be done" in output and planned_rules(output) == {}, output[-3000:]
    everything = catalog_snakemake(workdir.parent, "-n")
    planned = planned_rules(everything.stdout + everything.stderr)
    assert "plot_histograms" in planned and "autoencoder" in planned, planned
    assert not {"generate_demo", "segment_index", "extract_shard", "merge_features", "gcl_loop"} & set(planned)


def test_test_config_report_holds_the_run_figures(test_run):
    """`snakemake --report report.zip` (the catalog's `report: true`) on the run of .test."""
    workdir, _ = test_run
    catalog_snakemake(workdir.parent, "--report", "report.zip", TARGET, timeout=300)
    with zipfile.ZipFile(workdir / "report.zip") as report:
        names = {Path(name).name for name in report.namelist()}
    assert {"report.html", "roc.png", "video_scores.png", "training_curves.png"} <= names
