"""Runs a small workflow through profiles/slurm on a real single-node SLURM cluster.

The workflow mirrors the project's shape: per-video `extract_features` jobs that
declare `gpu=1` (grouped by the profile) and an aggregation rule. Checks that
SLURM, not the local machine, ran every job, that the groups became fewer
submissions than jobs, each holding the node's GPU GRES, that job state is read
without an accounting database (squeue), and that the outputs equal a local run
with profiles/default.
"""

import math
import re
import textwrap
from pathlib import Path

import pytest

try:
    from . import slurm_cluster
except ImportError:  # tests/ is not a package: pytest put tests/ on sys.path
    import slurm_cluster

SlurmCluster = slurm_cluster.SlurmCluster
run_snakemake_locally = slurm_cluster.run_snakemake_locally
run_snakemake_on_slurm = slurm_cluster.run_snakemake_on_slurm
start_cluster = slurm_cluster.start_cluster
# The session fixture, imported so pytest finds it for this module.
slurm_test_cluster = slurm_cluster.slurm_test_cluster

pytestmark = pytest.mark.slurm

VIDEO_COUNT = 6
# Smaller than the profile's 50 so that the 6 videos need more than one group.
GROUP_SIZE = 3
RUN_TIMEOUT_S = 240

# Each feature file is a number computed from the video's input file; each job
# also records where it ran, in a separate file that is not compared.
WORKFLOW = textwrap.dedent(
    """\
    VIDEOS = [f"video{i}" for i in range(%d)]

    rule all:
        input: "summary.txt"
        localrule: True

    rule extract_features:
        input: "videos/{video}.txt"
        output:
            features="features/{video}.txt",
            provenance="provenance/{video}.txt",
        resources:
            gpu=1,
        shell:
            "awk '{{s += $1 * $1}} END {{print s}}' {input} > {output.features}; "
            "printf 'job=%%s\\\\ngpus_on_node=%%s\\\\ncuda=%%s\\\\n' "
            "\\"${{SLURM_JOB_ID:-}}\\" \\"${{SLURM_GPUS_ON_NODE:-}}\\" "
            "\\"${{CUDA_VISIBLE_DEVICES:-}}\\" > {output.provenance}"

    rule aggregate:
        input: expand("features/{video}.txt", video=VIDEOS)
        output:
            summary="summary.txt",
            provenance="provenance/aggregate.txt",
        shell:
            "paste -d ' ' {input} > {output.summary}; "
            "printf 'job=%%s\\\\n' \\"${{SLURM_JOB_ID:-}}\\" > {output.provenance}"
    """
    % VIDEO_COUNT
)

FAILING_WORKFLOW = textwrap.dedent(
    """\
    rule broken:
        output: "never.txt"
        shell: "echo 'deliberate failure' >&2; exit 3"
    """
)


def _write_workflow(workdir: Path) -> None:
    workdir.mkdir(parents=True)
    (workdir / "Snakefile").write_text(WORKFLOW)
    videos = workdir / "videos"
    videos.mkdir()
    for index in range(VIDEO_COUNT):
        numbers = [index + step for step in range(1, 5)]
        (videos / f"video{index}.txt").write_text("".join(f"{n}\n" for n in numbers))


def _expected_features(index: int) -> int:
    return sum((index + step) ** 2 for step in range(1, 5))


def _provenance(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines())


def _outputs(workdir: Path) -> dict[str, str]:
    """Every result file of the workflow (provenance excluded), by relative path."""
    files = sorted((workdir / "features").glob("*.txt")) + [workdir / "summary.txt"]
    return {str(path.relative_to(workdir)): path.read_text() for path in files}


def _explain(run, cluster: SlurmCluster) -> str:
    return (
        f"snakemake exited {run.returncode}; output:\n{run.stdout[-6000:]}\n"
        f"{cluster.diagnostics()}"
    )


def _submitted_job_ids(cluster: SlurmCluster) -> list[str]:
    return re.findall(r"_slurm_rpc_submit_batch_job: JobId=(\d+)", cluster.log("slurmctld"))


def test_grouped_gpu_workflow_runs_on_slurm_like_locally(slurm_test_cluster, tmp_path):
    cluster = slurm_test_cluster
    already_submitted = set(_submitted_job_ids(cluster))
    on_slurm, local = tmp_path / "slurm", tmp_path / "local"
    _write_workflow(on_slurm)
    _write_workflow(local)

    slurm_run = run_snakemake_on_slurm(
        cluster, on_slurm, ["all"], ["--group-components", f"extract={GROUP_SIZE}"],
        timeout=RUN_TIMEOUT_S,
    )
    assert slurm_run.returncode == 0, _explain(slurm_run, cluster)

    # Every extraction ran inside a SLURM job that held the node's one GPU GRES.
    extraction = {
        index: _provenance(on_slurm / "provenance" / f"video{index}.txt")
        for index in range(VIDEO_COUNT)
    }
    for index, record in extraction.items():
        assert record["job"].isdigit(), f"video{index} did not run in a SLURM job: {record}"
        assert record["gpus_on_node"] == "1", f"video{index} got no GPU GRES: {record}"
        assert record["cuda"] == "0", f"video{index}: no CUDA_VISIBLE_DEVICES: {record}"

    # Grouping: 6 jobs became ceil(6/3) submissions of 3 videos each.
    members_per_job: dict[str, int] = {}
    for record in extraction.values():
        members_per_job[record["job"]] = members_per_job.get(record["job"], 0) + 1
    assert len(members_per_job) == math.ceil(VIDEO_COUNT / GROUP_SIZE)
    assert sorted(members_per_job.values()) == [GROUP_SIZE] * len(members_per_job)

    aggregate_job = _provenance(on_slurm / "provenance" / "aggregate.txt")["job"]
    assert aggregate_job.isdigit() and aggregate_job not in members_per_job

    # slurmctld saw exactly these submissions, finished them, and gave only the
    # extraction groups a GPU.
    submitted = set(_submitted_job_ids(cluster)) - already_submitted
    assert submitted == set(members_per_job) | {aggregate_job}
    assert len(submitted) < VIDEO_COUNT + 1
    for job_id in members_per_job:
        record = cluster.job_record(job_id)
        assert record["JobState"] == "COMPLETED", record
        assert "gpu:1" in record.get("TresPerJob", ""), record
        assert record["Comment"] == "rule_extract_extract_features", record
    aggregate_record = cluster.job_record(aggregate_job)
    assert aggregate_record["JobState"] == "COMPLETED", aggregate_record
    assert "gpu" not in aggregate_record.get("TresPerJob", ""), aggregate_record
    # Status came from squeue: the plugin never fell back to sacct.
    assert "Falling back to 'sacct'" not in slurm_run.stdout

    local_run = run_snakemake_locally(local, ["all"], timeout=RUN_TIMEOUT_S)
    assert local_run.returncode == 0, local_run.stdout[-6000:]
    assert _provenance(local / "provenance" / "video0.txt")["job"] == ""

    slurm_outputs = _outputs(on_slurm)
    assert slurm_outputs == _outputs(local)
    expected = [str(_expected_features(index)) for index in range(VIDEO_COUNT)]
    assert slurm_outputs["summary.txt"].split() == expected


def test_failed_slurm_job_fails_the_run(slurm_test_cluster, tmp_path):
    cluster = slurm_test_cluster
    workdir = tmp_path / "failing"
    workdir.mkdir()
    (workdir / "Snakefile").write_text(FAILING_WORKFLOW)

    run = run_snakemake_on_slurm(cluster, workdir, ["never.txt"], timeout=RUN_TIMEOUT_S)

    assert run.returncode != 0, _explain(run, cluster)
    # Seen through squeue (no accounting database): state FAILED, log attached.
    assert "SLURM status is: 'FAILED'" in run.stdout, _explain(run, cluster)
    assert "deliberate failure" in run.stdout
    assert not (workdir / "never.txt").exists()


def test_second_cluster_runs_beside_the_first_and_leaves_nothing(slurm_test_cluster):
    second = start_cluster()
    root, daemons = second.root, dict(second.daemons)
    try:
        assert second.conf != slurm_test_cluster.conf
        assert second.node_state() == "idle"
        assert slurm_test_cluster.node_state() in ("idle", "mixed", "allocated")
    finally:
        second.stop()
    assert all(process.poll() is not None for process in daemons.values())
    assert not root.exists()
    assert slurm_test_cluster.node_state() == "idle"
