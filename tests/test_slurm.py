"""Runs a small workflow through profiles/slurm on a real single-node SLURM cluster.

The workflow mirrors the project's shape: `extract_shard` jobs, each handling several videos
and declaring `gpu=1`, then merge and cleaning rules that the profile groups into one job.
Checks that SLURM, not the local machine, ran every job, that each shard job got the node's
GPU GRES and the other jobs none, that the group became one submission, that job state is
read without an accounting database (squeue), and that the outputs equal a local run with
profiles/default.
"""

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
VIDEOS_PER_SHARD = 2
SHARD_COUNT = VIDEO_COUNT // VIDEOS_PER_SHARD
RUN_TIMEOUT_S = 240
# The profile gives a shard job 8 CPUs (GPU nodes); the test node has 2.
FIT_THE_NODE = ["--set-threads", "extract_shard=2"]

# Each feature file is a number computed from the video's input file; each job also records
# where it ran, in a separate file that is not compared.
WORKFLOW = (
    textwrap.dedent(
        r"""
    VIDEOS = [f"video{i}" for i in range(VIDEO_COUNT)]
    SHARDS = [VIDEOS[i : i + VIDEOS_PER_SHARD] for i in range(0, len(VIDEOS), VIDEOS_PER_SHARD)]
    WHERE = 'printf "job=%s\\ngpus_on_node=%s\\ncuda=%s\\n" "${{SLURM_JOB_ID:-}}" "${{SLURM_GPUS_ON_NODE:-}}" "${{CUDA_VISIBLE_DEVICES:-}}"'

    rule all:
        input: "summary.txt"
        localrule: True

    rule extract_shard:
        input: lambda wildcards: [f"videos/{v}.txt" for v in SHARDS[int(wildcards.shard)]]
        output: "shards/{shard}.txt"
        params: videos=lambda wildcards: SHARDS[int(wildcards.shard)]
        resources:
            gpu=1,
        shell:
            "mkdir -p features provenance; "
            "for v in {params.videos}; do awk '{{s += $1 * $1}} END {{print s}}' videos/$v.txt > features/$v.txt; done; "
            + WHERE + " > provenance/shard{wildcards.shard}.txt; echo {params.videos} > {output}"

    rule merge_features:
        input: expand("shards/{shard}.txt", shard=range(len(SHARDS)))
        output:
            merged="merged.txt",
            provenance="provenance/merge.txt",
        params: features=[f"features/{v}.txt" for v in VIDEOS]
        shell: "cat {params.features} > {output.merged}; " + WHERE + " > {output.provenance}"

    rule clean_features:
        input: "merged.txt"
        output:
            summary="summary.txt",
            provenance="provenance/clean.txt",
        shell: "paste -s -d ' ' {input} > {output.summary}; " + WHERE + " > {output.provenance}"
    """
    )
    .replace("VIDEO_COUNT", str(VIDEO_COUNT))
    .replace("VIDEOS_PER_SHARD", str(VIDEOS_PER_SHARD))
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
    files = [*sorted((workdir / "features").glob("*.txt")), workdir / "summary.txt"]
    return {str(path.relative_to(workdir)): path.read_text() for path in files}


def _explain(run, cluster: SlurmCluster) -> str:
    return f"snakemake exited {run.returncode}; output:\n{run.stdout[-6000:]}\n{cluster.diagnostics()}"


def _submitted_job_ids(cluster: SlurmCluster) -> list[str]:
    return re.findall(r"_slurm_rpc_submit_batch_job: JobId=(\d+)", cluster.log("slurmctld"))


def test_shard_jobs_get_a_gpu_each_and_the_rest_runs_grouped_like_locally(slurm_test_cluster, tmp_path):
    cluster = slurm_test_cluster
    already_submitted = set(_submitted_job_ids(cluster))
    on_slurm, local = tmp_path / "slurm", tmp_path / "local"
    _write_workflow(on_slurm)
    _write_workflow(local)

    slurm_run = run_snakemake_on_slurm(cluster, on_slurm, ["all"], FIT_THE_NODE, timeout=RUN_TIMEOUT_S)
    assert slurm_run.returncode == 0, _explain(slurm_run, cluster)

    # Every shard ran as its own SLURM job, which held the node's one GPU GRES.
    shards = {shard: _provenance(on_slurm / "provenance" / f"shard{shard}.txt") for shard in range(SHARD_COUNT)}
    for shard, record in shards.items():
        assert record["job"].isdigit(), f"shard {shard} did not run in a SLURM job: {record}"
        assert record["gpus_on_node"] == "1", f"shard {shard} got no GPU GRES: {record}"
        assert record["cuda"] == "0", f"shard {shard}: no CUDA_VISIBLE_DEVICES: {record}"
    shard_jobs = {record["job"] for record in shards.values()}
    assert len(shard_jobs) == SHARD_COUNT

    # Merge and cleaning: the profile's group `features`, one SLURM job without a GPU.
    merge, clean = (_provenance(on_slurm / "provenance" / f"{name}.txt") for name in ("merge", "clean"))
    assert merge["job"].isdigit() and merge["job"] == clean["job"] and merge["job"] not in shard_jobs
    assert clean["gpus_on_node"] == ""

    # slurmctld saw exactly these submissions and finished them; only the shards hold a GPU.
    submitted = set(_submitted_job_ids(cluster)) - already_submitted
    assert submitted == shard_jobs | {merge["job"]}
    for job_id in shard_jobs:
        record = cluster.job_record(job_id)
        assert record["JobState"] == "COMPLETED", record
        assert "gpu:1" in record.get("TresPerJob", ""), record
        assert record["Comment"].startswith("rule_extract_shard"), record
    group_record = cluster.job_record(merge["job"])
    assert group_record["JobState"] == "COMPLETED", group_record
    assert "gpu" not in group_record.get("TresPerJob", ""), group_record
    comment = group_record["Comment"]  # rule_<group>_<its rules>
    assert comment.startswith("rule_features_") and "merge_features" in comment and "clean_features" in comment
    # Status came from squeue: the plugin never fell back to sacct.
    assert "Falling back to 'sacct'" not in slurm_run.stdout

    local_run = run_snakemake_locally(local, ["all"], timeout=RUN_TIMEOUT_S)
    assert local_run.returncode == 0, local_run.stdout[-6000:]
    assert _provenance(local / "provenance" / "shard0.txt")["job"] == ""

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
