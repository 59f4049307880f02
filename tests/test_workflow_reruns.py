"""Reruns (issue 5): editing one setting re-runs exactly the jobs that depend on it.

One real run of the tiny demo (shared with test_workflow_resume.py through
`finished_demo`) is copied, mtimes and Snakemake's metadata included, for each edit; a dry
run then lists the jobs Snakemake would re-run, which must be exactly those expected.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from gclvad.datasets.segment_index import read_segment_index, split_videos
from gclvad.features.feature_set import load_feature_set
from gclvad.gcl.store import read_models_metadata
from gclvad.scoring.frames import read_scores
from gclvad.scoring.quantiles import QUANTILES_KEY
from gclvad.scoring.scorer import load_scorer
from workflow import make_workdir, planned_rules, snakemake, tiny_config, write_config

pytestmark = pytest.mark.slow

# The default target: results/demo/auc.json and the Fig-4 histograms of the default run,
# which also train the AE_AllData baseline.
TARGET = "all"
_FINISHED: dict[str, Path] = {}


def finished_demo(tmp_path_factory) -> Path:
    """A workdir where the tiny demo ran to results/demo/auc.json without interruption.

    Built once per test session (test_workflow_resume.py compares against it too); tests
    must not write into it: they copy it (`copy_workdir`)."""
    if "workdir" not in _FINISHED:
        workdir = make_workdir(tmp_path_factory.mktemp("finished") / "workdir", tiny_config())
        snakemake(workdir, TARGET)
        _FINISHED["workdir"] = workdir
    return _FINISHED["workdir"]


def training_ids(workdir: Path) -> list[str]:
    return split_videos(read_segment_index(workdir / "results/demo/segments.tsv"), ["train"])[0]


def copy_workdir(source: Path, destination: Path) -> Path:
    """A copy with mtimes kept (shutil.copy2) and .snakemake/metadata, so nothing looks new."""
    shutil.copytree(source, destination, symlinks=True)
    return destination


def planned_jobs(dry_run_output: str) -> set[tuple[str, str | None]]:
    """(rule, variant) of every job a dry run lists; variant None for jobs outside a run."""
    jobs: list[list] = []
    for line in dry_run_output.splitlines():
        rule = re.match(r"^(?:local)?(?:rule|checkpoint) (\w+):$", line)
        if rule:
            jobs.append([rule.group(1), None])
            continue
        wildcards = re.match(r"^\s+wildcards: (.*)$", line)
        if wildcards and jobs:
            values = dict(pair.split("=", 1) for pair in wildcards.group(1).split(", "))
            jobs[-1][1] = values.get("variant")
    # Every job of the 'Job stats' table must have been read (no block format surprises).
    assert len(jobs) == sum(planned_rules(dry_run_output).values()), dry_run_output[-3000:]
    return {(rule, variant) for rule, variant in jobs}


def dry_run(workdir: Path, *targets: str) -> str:
    result = snakemake(workdir, "-n", *(targets or (TARGET,)))
    return result.stdout + result.stderr


def edited(source: Path, destination: Path, path: str, value) -> Path:
    """A copy of `source` whose config has `path` (dotted) set to `value` (a preset's missing
    section is added)."""
    workdir = copy_workdir(source, destination)
    config = yaml.safe_load((workdir / "config" / "config.yaml").read_text())
    *parents, key = path.split(".")
    node = config
    for name in parents:
        node = node.setdefault(name, {})
    assert node.get(key) != value, f"{path} is already {value!r}"
    node[key] = value
    write_config(workdir, config)
    return workdir


def run_jobs(variant: str, *rules: str) -> set[tuple[str, str]]:
    return {(rule, variant) for rule in rules}


TRAINING = ("pretrain_g", "pretrain_d", "gcl_loop")
AFTER_TRAINING = ("score_run", "evaluate_run", "plot_run", "plot_histograms")
# a TD mask, and what it removed (read by evaluate_run)
CLEANING = {("clean_features", None), ("td_enrichment", None)}
# AE_AllData, the baseline of the Fig-4 histograms, trains in one stage (autoencoder) that
# reads G's pre-training settings; its scores feed GCL_PT's histograms.
AE_RUN = run_jobs("AE_AllData", "autoencoder", "score_run") | {("plot_histograms", "GCL_PT")}
DATASET_AUC = {("dataset_auc", None), ("all", None)}  # and the target rule `all`
PRESET = "training.presets.tiny"

CASES = {
    # The loop's epochs: GCL_PT's loop onward; nothing of the autoencoder, which has no loop.
    "loop_epochs": (f"{PRESET}.loop.epochs", 4, run_jobs("GCL_PT", "gcl_loop", *AFTER_TRAINING) | DATASET_AUC),
    # TD cleaning: a new mask, then every stage of GCL_PT (pre-trained on it); not AE_AllData
    # (trained on all segments), not extraction or the segment index.
    "cleaning_threshold": (
        "cleaning.threshold",
        0.5,
        CLEANING | run_jobs("GCL_PT", *TRAINING, *AFTER_TRAINING) | DATASET_AUC,
    ),
    # D's pre-training: from D's pre-training on; G's pre-training and the autoencoder stay.
    "pretrain_d_epochs": (
        f"{PRESET}.pretrain_d.epochs",
        3,
        run_jobs("GCL_PT", "pretrain_d", "gcl_loop", *AFTER_TRAINING) | DATASET_AUC,
    ),
    # G's plain-reconstruction training: GCL_PT from its first stage, and the autoencoder.
    "pretrain_g_epochs": (
        f"{PRESET}.pretrain_g.epochs",
        4,
        run_jobs("GCL_PT", *TRAINING, *AFTER_TRAINING) | AE_RUN | DATASET_AUC,
    ),
    # Rows per forward pass when scoring: the stages that score rows (D's pre-training, the
    # loop, the autoencoder's per-epoch scores), not G's pre-training.
    "score_chunk": (
        f"{PRESET}.scoring.chunk",
        7,
        run_jobs("GCL_PT", "pretrain_d", "gcl_loop", *AFTER_TRAINING) | AE_RUN | DATASET_AUC,
    ),
}


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    return finished_demo(tmp_path_factory)


def test_finished_run_is_up_to_date(finished, tmp_path):
    output = dry_run(copy_workdir(finished, tmp_path / "workdir"))
    assert "Nothing to be done" in output, output[-3000:]
    assert planned_jobs(output) == set()


@pytest.mark.parametrize("case", CASES)
def test_edit_reruns_exactly_its_dependents(finished, tmp_path, case):
    path, value, expected = CASES[case]
    workdir = edited(finished, tmp_path / "workdir", path, value)
    output = dry_run(workdir)
    assert planned_jobs(output) == expected, output[-6000:]


def test_a_variant_that_changes_cleaning_gets_its_own_mask(finished, tmp_path):
    workdir = copy_workdir(finished, tmp_path / "workdir")
    variant = "GCL_PT~cleaning.threshold=0.5"
    output = dry_run(workdir, f"results/demo/r3d_18/{variant}/seed0/auc.json")
    assert planned_jobs(output) == CLEANING | run_jobs(variant, *TRAINING, "score_run", "evaluate_run")
    assert "cleaning/l2-absolute-0.5/td_mask.npz" in output
    # the default run's mask and stages are untouched
    assert planned_jobs(dry_run(workdir)) == set()


def test_post_processing_variants_score_with_the_trained_networks(finished, tmp_path):
    workdir = copy_workdir(finished, tmp_path / "workdir")
    variant = "GCL_PT~postprocess.smoothing_sigma=16"
    target = f"results/demo/r3d_18/{variant}/seed0/auc.json"
    assert planned_jobs(dry_run(workdir, target)) == run_jobs(variant, "score_run", "evaluate_run")
    snakemake(workdir, target)
    result = json.loads((workdir / target).read_text())
    plain = json.loads((workdir / "results/demo/r3d_18/GCL_PT/seed0/auc.json").read_text())
    assert result["auc_raw"] == plain["auc"] == plain["auc_raw"]  # the same networks, before smoothing
    assert result["postprocess"]["smoothing_sigma"] == 16 and plain["postprocess"]["smoothing_sigma"] == 0
    # what GCL_PT's TD mask removed, on the training videos' labels (every demo video has them)
    removed = plain["cleaning_enrichment"]
    assert removed["kept_fraction"] == plain["cleaning"]["kept_fraction"] and removed["labelled_rows"] > 0
    assert 0.0 <= removed["anomalous_fraction_kept"] <= 1.0 and removed == result["cleaning_enrichment"]


def test_a_seed_ensemble_combines_its_member_runs(finished, tmp_path):
    workdir = copy_workdir(finished, tmp_path / "workdir")
    target = "results/demo/r3d_18/GCL_PT~ensemble=2/seed0/auc.json"
    output = dry_run(workdir, target)
    # seed 0 of GCL_PT exists; seed 1 is trained; the ensemble combines them and is scored
    assert planned_jobs(output) == run_jobs("GCL_PT", *TRAINING) | run_jobs(
        "GCL_PT~ensemble=2", "ensemble", "score_run", "evaluate_run"
    )
    snakemake(workdir, target)
    result = json.loads((workdir / target).read_text())
    assert [member["seed"] for member in result["members"]] == [0, 1]
    assert 0.0 <= result["auc"] <= 1.0
    # z-normalised members are no probabilities: no false-alarm rate at D's 0.5 (one run has one)
    assert result["false_alarm_rate"] is None and result["false_alarm_threshold"] is None
    plain = json.loads((workdir / "results/demo/r3d_18/GCL_PT/seed0/auc.json").read_text())
    assert 0.0 <= plain["false_alarm_rate"] <= 1.0
    # the alert threshold's distribution: the ensemble's own scores of the training segments
    run = workdir / Path(target).parent
    training = load_feature_set(workdir / "results/demo/features/r3d_18.h5", training_ids(workdir))
    delivered = load_scorer(run / "models.pt").segment_scores(training)["score"]
    recorded = read_models_metadata(run / "models.pt")[QUANTILES_KEY]
    assert recorded["quantiles"]["0.99"] == pytest.approx(np.quantile(delivered, 0.99))
    from_scoring = json.loads((run / "postprocess.json").read_text())[QUANTILES_KEY]
    assert from_scoring["quantiles"] == pytest.approx(recorded["quantiles"]) and recorded["score"].startswith(
        "ensemble"
    )

    # its second opinion (issue 18): the same members, combined once more with the density
    fused = "results/demo/r3d_18/GCL_PT~ensemble=2~density=1/seed0/auc.json"
    assert planned_jobs(dry_run(workdir, fused)) == run_jobs(
        "GCL_PT~ensemble=2~density=1", "ensemble", "score_run", "evaluate_run"
    )
    snakemake(workdir, fused)
    result = json.loads((workdir / fused).read_text())
    assert 0.0 <= result["auc_density"] <= 1.0 and result[QUANTILES_KEY]["score"].endswith("with density (k = 1)")
    scorer = load_scorer(workdir / Path(fused).parent / "models.pt")
    assert scorer.density.videos == training_ids(workdir) and scorer.density.k == 1
    scores = read_scores(workdir / Path(fused).parent / "scores.h5")
    first = sorted(scores)[0]
    segment = load_feature_set(workdir / "results/demo/features/r3d_18.h5", [first])
    # the density of each segment, spread over its 16 frames (float32 in the scores file)
    expected = np.repeat(scorer.density.distances(segment), 16)[: len(scores[first]["density"])]
    assert np.allclose(scores[first]["density"], expected, atol=1e-6)


def test_edits_no_rule_reads_rerun_nothing(finished, tmp_path):
    workdir = copy_workdir(finished, tmp_path / "workdir")
    config = yaml.safe_load((workdir / "config" / "config.yaml").read_text())
    # a preset with identical values under another name
    config["training"]["presets"]["tiny_again"] = config["training"]["presets"]["tiny"]
    config["datasets"]["demo"]["training"] = "tiny_again"
    # the dataset's default extractor: existing runs of the old one stay as they are
    config["datasets"]["demo"]["extractor"] = "r2plus1d_18"
    write_config(workdir, config)
    run = "results/demo/r3d_18/GCL_PT/seed0"
    output = dry_run(workdir, f"{run}/auc.json", f"{run}/plots/score_histograms.png", f"{run}/plots/roc.png")
    assert planned_jobs(output) == set(), output[-3000:]


def test_segment_length_reruns_everything_from_the_segment_index(finished, tmp_path):
    workdir = edited(finished, tmp_path / "workdir", "segment_length", 8)
    # Jobs after the checkpoint (segment_index) that a dry run can see before it runs:
    # extraction jobs are only known from the new index.
    everything_after_extraction = (
        {("merge_features", None)} | CLEANING | run_jobs("GCL_PT", *TRAINING, *AFTER_TRAINING) | AE_RUN | DATASET_AUC
    )
    assert planned_jobs(dry_run(workdir)) == {("segment_index", None)} | everything_after_extraction
    # Once the new index exists, every video is extracted again, in one shard job (the local
    # default); the demo videos are not generated again (they do not depend on the segment length).
    snakemake(workdir, "results/demo/segments.tsv")
    output = dry_run(workdir)
    assert planned_rules(output)["extract_shard"] == 1
    assert planned_jobs(output) == {("extract_shard", None)} | everything_after_extraction
