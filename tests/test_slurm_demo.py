"""The project's tiny demo, run through profiles/slurm on a real SLURM cluster, gives the
same numbers, bit for bit, as the same config run locally (both on CPU).

Two inputs are made identical on purpose, so that any difference comes from where the
jobs ran: the extractor's weights are a seeded state-dict file written here (torchvision
"random" weights are drawn afresh in every extraction job), and the demo videos are
generated once, by the SLURM run, and copied into the local run (the H.264 encoder does
not always write the same bytes for the same frames). The local run then goes alongside
the SLURM run, whose time is mostly spent waiting for jobs and status checks.
"""

from __future__ import annotations

import json
import re
import shutil
import threading
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
import torchvision
from slurm_cluster import (
    SlurmCluster,
    run_snakemake_locally,
    run_snakemake_on_slurm,
    slurm_test_cluster,  # noqa: F401 (session fixture)
)

from workflow import make_workdir, tiny_config

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

VIDEOS_TARGET = "results/demo/videos/videos.csv"
AUC_TARGET = "results/demo/auc.json"
RUNS = ("GCL_PT",)  # the default run: what results/demo/auc.json is built from
# Hard limit on both Snakemake runs together; a run still going then is killed.
RUNS_BUDGET_S = 540
# tiny_config's test split: 3 videos of 48 frames.
SCORED_VIDEOS, SCORED_FRAMES = 3, 144

# The profile gives a shard job 8 CPUs (GPU nodes); the test node has 2.
FIT_THE_NODE = ["--set-threads", "extract_shard=2"]
SUBMITTED = re.compile(r"has been submitted with SLURM jobid (\d+) \(log: (\S+)\)")


def seeded_r3d_18_weights(path: Path) -> Path:
    """A state dict of an untrained r3d_18 drawn from seed 0: the same file for both runs."""
    torch.manual_seed(0)
    torch.save(torchvision.models.video.r3d_18().state_dict(), path)
    return path


def submitted_jobs(snakemake_output: str) -> dict[str, Path]:
    """SLURM job id -> its SLURM log file, for every submission Snakemake reports."""
    return {job_id: Path(log) for job_id, log in SUBMITTED.findall(snakemake_output)}


def ctld_submissions(cluster: SlurmCluster) -> set[str]:
    return set(re.findall(r"_slurm_rpc_submit_batch_job: JobId=(\d+)", cluster.log("slurmctld")))


def rules_run_in(slurm_log: Path) -> list[str]:
    """Rules (checkpoints included) the Snakemake inside one SLURM job ran, one entry per job."""
    return re.findall(r"^(?:rule|checkpoint) (\w+):$", slurm_log.read_text(), flags=re.MULTILINE)


def rules_run_locally(snakemake_output: str) -> list[str]:
    return re.findall(r"^local(?:rule|checkpoint) (\w+):$", snakemake_output, flags=re.MULTILINE)


def h5_contents(path: Path) -> dict[str, object]:
    """Every dataset (array) and attribute of an HDF5 file, by its path in the file."""
    contents: dict[str, object] = {}
    with h5py.File(path, "r") as file:
        contents.update({f"/@{key}": value for key, value in file.attrs.items()})

        def visit(name, item):
            contents.update({f"{name}@{key}": value for key, value in item.attrs.items()})
            if isinstance(item, h5py.Dataset):
                contents[name] = item[()]

        file.visititems(visit)
    return contents


def assert_same_h5(on_slurm: Path, local: Path) -> None:
    slurm_contents, local_contents = h5_contents(on_slurm), h5_contents(local)
    assert slurm_contents.keys() == local_contents.keys(), on_slurm
    for key, value in slurm_contents.items():
        expected = local_contents[key]
        if isinstance(value, np.ndarray) and value.dtype.hasobject:
            # Variable-length strings (video names): compare the values, not the pointers.
            assert value.tolist() == expected.tolist(), f"{on_slurm}: {key} differs"
        elif isinstance(value, np.ndarray):
            assert value.dtype == expected.dtype and value.shape == expected.shape, (on_slurm, key)
            # Bit for bit: the same bytes, not merely close values (NaNs included).
            assert value.tobytes() == expected.tobytes(), f"{on_slurm}: {key} differs"
        else:
            assert np.array_equal(value, expected), f"{on_slurm}: attribute {key} differs"


def explain(run, cluster: SlurmCluster) -> str:
    return f"snakemake exited {run.returncode}; output:\n{run.stdout[-6000:]}\n{cluster.diagnostics()}"


class LocalRun(threading.Thread):
    """run_snakemake_locally() in a thread, so that it overlaps the SLURM run."""

    def __init__(self, workdir: Path, timeout: float):
        super().__init__(daemon=True)
        self.workdir, self.timeout = workdir, timeout
        self.result = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.result = run_snakemake_locally(self.workdir, [AUC_TARGET], timeout=self.timeout)
        except BaseException as error:  # re-raised in the test
            self.error = error


def test_demo_on_slurm_matches_local_run(slurm_test_cluster, tmp_path):  # noqa: F811
    cluster = slurm_test_cluster
    deadline = time.monotonic() + RUNS_BUDGET_S
    before = ctld_submissions(cluster)
    config = tiny_config(extractors={"r3d_18": {"weights": str(seeded_r3d_18_weights(tmp_path / "r3d_18.pth"))}})
    on_slurm = make_workdir(tmp_path / "slurm", config)
    local = make_workdir(tmp_path / "local", config)

    # 1. The demo videos, generated by a SLURM job; the local run gets copies.
    videos_run = run_snakemake_on_slurm(cluster, on_slurm, [VIDEOS_TARGET], timeout=deadline - time.monotonic())
    assert videos_run.returncode == 0, explain(videos_run, cluster)
    shutil.copytree(on_slurm / "results/demo/videos", local / "results/demo/videos")

    # 2. Everything else, on SLURM and locally at the same time.
    local_run = LocalRun(local, timeout=deadline - time.monotonic())
    local_run.start()
    try:
        slurm_run = run_snakemake_on_slurm(
            cluster, on_slurm, [AUC_TARGET], FIT_THE_NODE, timeout=deadline - time.monotonic()
        )
    finally:
        local_run.join(timeout=max(1.0, deadline - time.monotonic() + 30))
    assert slurm_run.returncode == 0, explain(slurm_run, cluster)
    if local_run.error is not None:
        raise local_run.error
    assert local_run.result is not None, "the local run did not finish"
    assert local_run.result.returncode == 0, local_run.result.stdout[-6000:]
    local_output = local_run.result.stdout

    # Same numbers: the whole auc.json (AUCs, videos, frames, steps, cleaning, hashes).
    slurm_auc = json.loads((on_slurm / AUC_TARGET).read_text())
    local_auc = json.loads((local / AUC_TARGET).read_text())
    assert slurm_auc == local_auc
    assert (slurm_auc["videos"], slurm_auc["frames"]) == (SCORED_VIDEOS, SCORED_FRAMES)
    assert 0.0 <= slurm_auc["auc"] <= 1.0 and slurm_auc["auc"] == slurm_auc["auc_d"]
    assert slurm_auc["extractor"]["weights"] == config["extractors"]["r3d_18"]["weights"]
    # Same arrays, bit for bit: frame scores of both runs, and the features they came from.
    for run in RUNS:
        scores = Path(f"results/demo/r3d_18/{run}/seed0/scores.h5")
        assert_same_h5(on_slurm / scores, local / scores)
    features = Path("results/demo/features/r3d_18.h5")
    assert_same_h5(on_slurm / features, local / features)

    # SLURM ran the jobs: slurmctld got exactly the submissions Snakemake reports, and
    # each ended with exit status 0.
    jobs = submitted_jobs(videos_run.stdout) | submitted_jobs(slurm_run.stdout)
    assert ctld_submissions(cluster) - before == set(jobs)
    ctld_log = cluster.log("slurmctld")
    for job_id in jobs:
        assert f"_job_complete: JobId={job_id} WEXITSTATUS 0" in ctld_log, ctld_log[-3000:]
    assert "Falling back to 'sacct'" not in slurm_run.stdout

    # Every job of the workflow ran inside those SLURM jobs: the local run's jobs, plus
    # the video generation, which the local run skipped (it had the videos).
    rules_per_job = {job_id: rules_run_in(log) for job_id, log in jobs.items()}
    ran_on_slurm = sorted(rule for rules in rules_per_job.values() for rule in rules)
    assert ran_on_slurm == sorted([*rules_run_locally(local_output), "generate_demo"])
    assert "SLURM jobid" not in local_output

    # Extraction: the 7 videos in one shard job (videos_per_job auto: 100 on a cluster), a
    # SLURM job of its own; grouped rules made fewer submissions than jobs overall.
    extraction_jobs = {job_id for job_id, rules in rules_per_job.items() if "extract_shard" in rules}
    assert ran_on_slurm.count("extract_shard") == 1 and len(extraction_jobs) == 1
    assert all(rules_per_job[job_id] == ["extract_shard"] for job_id in extraction_jobs)
    assert len(jobs) < len(ran_on_slurm)
