"""Resume and faults (issue 5): a run SIGKILLed during extraction, during training and
during evaluation, then started again with the same command, ends exactly as an
uninterrupted run; a second `snakemake` on a workdir in use is refused by the lock.

One workdir goes through the three kills in turn (each re-run resumes the previous kill and
is killed itself), then a last re-run completes it. Its results are compared number for
number with the uninterrupted run of test_workflow_reruns.finished_demo.

A SIGKILLed Snakemake cannot remove its lock; the workflow releases it when the process
that held it is gone (workflow/rules/lock.smk), so the plain re-run resumes
(profiles/default: rerun-incomplete).
"""

from __future__ import annotations

import base64
import json
import threading
import time
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import torch
from test_workflow_reruns import TARGET, finished_demo

from workflow import kill_group, make_workdir, snakemake, start_snakemake, tiny_config

pytestmark = pytest.mark.slow

RUN = Path("results/demo/r3d_18/GCL_PT/seed0")
BASELINE_RUN = Path("results/demo/r3d_18/AE_AllData/seed0")
VIDEO_FEATURES = Path("results/demo/features/r3d_18")
MERGED_FEATURES = Path("results/demo/features/r3d_18.h5")
WAIT_S = 900  # one phase on a busy 2-core machine takes a few minutes at most


class Run:
    """A snakemake started in its own process group, its output read as it comes (so that a
    full pipe never blocks it)."""

    def __init__(self, workdir: Path):
        self.process = start_snakemake(workdir, TARGET)
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line)

    def output(self) -> str:
        return "".join(self.lines)[-6000:]

    def wait_for(self, condition, what: str) -> None:
        """Poll `condition()` until true; fail with the output if the run ends or time runs out."""
        deadline = time.monotonic() + WAIT_S
        while not condition():
            if self.process.poll() is not None:
                self.reader.join(5)
                raise AssertionError(f"snakemake ended (rc {self.process.returncode}) before {what}:\n{self.output()}")
            if time.monotonic() > deadline:
                self.kill()
                raise AssertionError(f"no {what} after {WAIT_S} s:\n{self.output()}")
            time.sleep(0.02)

    def kill(self) -> None:
        kill_group(self.process)
        self.reader.join(5)


def incomplete_markers(workdir: Path) -> list[Path]:
    """Outputs Snakemake marked as written by a job that started and did not finish (the
    marks are files named by the base64 of the output's path)."""
    folder = workdir / ".snakemake" / "incomplete"
    names = [p.name for p in folder.iterdir() if p.is_file()] if folder.is_dir() else []
    return [Path(base64.b64decode(name).decode()) for name in names]


def video_feature_files(workdir: Path) -> list[Path]:
    return sorted((workdir / VIDEO_FEATURES).glob("*.h5"))


def kill_during_extraction(workdir: Path) -> dict:
    run = Run(workdir)
    run.wait_for(lambda: len(video_feature_files(workdir)) >= 1, "a per-video feature file")
    # The run holds the workdir's lock: a second snakemake there is refused at once.
    second = snakemake(workdir, TARGET, check=False, timeout=300)
    run.wait_for(lambda: len(video_feature_files(workdir)) >= 2, "a second per-video feature file")
    merged_before_kill = (workdir / MERGED_FEATURES).exists()
    run.kill()
    incomplete = incomplete_markers(workdir)
    # Per-video files written before the kill (by the shard job, which is marked incomplete;
    # the files themselves are complete: each appears only once written).
    finished = [p for p in video_feature_files(workdir) if p.relative_to(workdir) not in incomplete]
    return {
        "second": second,
        "merged_before_kill": merged_before_kill,
        "finished": {p.stem: p.stat().st_mtime_ns for p in finished},
        "files": [p.stem for p in video_feature_files(workdir)],
        "incomplete": incomplete,
    }


def kill_during_training(workdir: Path) -> dict:
    checkpoint = workdir / RUN / "gcl_loop.ckpt"
    run = Run(workdir)
    progress = workdir / RUN / "gcl_loop.ckpt.epoch_scores.npz"
    # The loop writes both after each epoch (the epoch's scores, then the checkpoint) and
    # removes them when done: kill at once.
    run.wait_for(lambda: checkpoint.exists() and progress.exists(), f"{checkpoint} and {progress.name}")
    run.kill()
    assert checkpoint.exists(), f"{checkpoint} was gone when the run was killed:\n{run.output()}"
    saved = torch.load(checkpoint, map_location="cpu", weights_only=True)
    return {
        "checkpoint_log": pd.DataFrame(saved["log"]),
        "models_before_resume": (workdir / RUN / "models.pt").exists(),
        "incomplete": incomplete_markers(workdir),
    }


def kill_during_evaluation(workdir: Path) -> dict:
    run = Run(workdir)
    run.wait_for(lambda: (workdir / RUN / "scores.h5").exists(), "scores.h5")
    auc_before_kill = (workdir / RUN / "auc.json").exists()
    run.kill()
    return {"auc_before_kill": auc_before_kill, "incomplete": incomplete_markers(workdir)}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> Path:
    return finished_demo(tmp_path_factory)


@pytest.fixture(scope="module")
def resumed(tmp_path_factory, uninterrupted):
    """The workdir after three kills and a plain re-run, and what each kill left."""
    workdir = make_workdir(tmp_path_factory.mktemp("resume") / "workdir", tiny_config())
    # Each kill is followed by the same command again (the next kill_during_* starts it).
    kills = {"extraction": kill_during_extraction(workdir)}
    kills["training"] = kill_during_training(workdir)
    kills["evaluation"] = kill_during_evaluation(workdir)
    final = snakemake(workdir, TARGET)
    return workdir, kills, final


def h5_arrays(path: Path) -> dict[str, np.ndarray]:
    """Every dataset of an HDF5 file by its path."""
    arrays = {}
    with h5py.File(path, "r") as source:
        source.visititems(
            lambda name, item: arrays.update({name: item[()]}) if isinstance(item, h5py.Dataset) else None
        )
    return arrays


def assert_same_h5(path: Path, expected_path: Path) -> None:
    got, expected = h5_arrays(path), h5_arrays(expected_path)
    assert got.keys() == expected.keys() and got, path
    for name in expected:
        assert got[name].dtype == expected[name].dtype, (path, name)
        np.testing.assert_array_equal(got[name], expected[name], err_msg=f"{path}:{name}")


def test_second_snakemake_on_a_busy_workdir_is_refused(resumed):
    second = resumed[1]["extraction"]["second"]
    output = second.stdout + second.stderr
    assert second.returncode != 0
    assert "LockException" in output and "Directory cannot be locked" in output, output[-3000:]


def test_rerun_after_a_kill_releases_the_dead_runs_lock(resumed):
    final = resumed[2]
    assert "released the lock of a run that no longer exists" in final.stderr + final.stdout


def test_kill_during_extraction_left_a_partial_set_of_features(resumed):
    _workdir, kills, _ = resumed
    extraction = kills["extraction"]
    assert not extraction["merged_before_kill"]
    assert 2 <= len(extraction["files"]) < 7
    assert extraction["finished"], "no extraction job had finished"
    # One shard job extracts every video; its output, the shard's manifest, is marked
    # incomplete, so that the re-run does the shard again. The per-video files it had written
    # are complete (written under a temporary name, renamed when done) and kept.
    assert extraction["incomplete"] == [VIDEO_FEATURES / "shards" / "0.json"], extraction["incomplete"]


def test_resume_keeps_finished_extractions(resumed, uninterrupted):
    workdir, kills, _ = resumed
    for video, mtime in kills["extraction"]["finished"].items():
        assert (workdir / VIDEO_FEATURES / f"{video}.h5").stat().st_mtime_ns == mtime, video
    # Exactly the files of the uninterrupted run: no temporary file of the killed writer left.
    names = sorted(p.name for p in (workdir / VIDEO_FEATURES).iterdir())
    assert names == sorted(p.name for p in (uninterrupted / VIDEO_FEATURES).iterdir())
    manifest = VIDEO_FEATURES / "shards" / "0.json"
    assert (workdir / manifest).read_text() == (uninterrupted / manifest).read_text()


def test_training_resumed_from_its_checkpoint(resumed):
    workdir, kills, _ = resumed
    training = kills["training"]
    assert not training["models_before_resume"]
    assert RUN / "models.pt" in training["incomplete"]
    at_kill = training["checkpoint_log"]
    loop_at_kill = at_kill[at_kill["stage"] == "gcl_loop"]
    assert 1 <= len(loop_at_kill) < 20  # killed mid-loop (the tiny preset's loop takes 20 epochs)
    log = pd.read_csv(workdir / RUN / "training_log.tsv", sep="\t")
    loop = log[log["stage"] == "gcl_loop"].reset_index(drop=True)
    assert len(loop) == 20
    # Epochs done before the kill keep their logged wall-clock seconds: they were not run
    # again but read back from the checkpoint.
    np.testing.assert_array_equal(loop["seconds"][: len(loop_at_kill)], loop_at_kill["seconds"])


def test_kill_during_evaluation_came_after_scoring(resumed):
    evaluation = resumed[1]["evaluation"]
    assert not evaluation["auc_before_kill"]
    assert evaluation["incomplete"]


@pytest.mark.parametrize(
    "relative",
    [MERGED_FEATURES, RUN / "scores.h5", BASELINE_RUN / "scores.h5"]
    + [VIDEO_FEATURES / f"{split}_{i:03d}.h5" for split, n in (("train", 4), ("test", 3)) for i in range(n)],
    ids=str,
)
def test_resumed_arrays_equal_uninterrupted(resumed, uninterrupted, relative):
    assert_same_h5(resumed[0] / relative, uninterrupted / relative)


def test_resumed_results_equal_uninterrupted(resumed, uninterrupted):
    workdir = resumed[0]
    for name in ("results/demo/auc.json", RUN / "auc.json"):
        assert json.loads((workdir / name).read_text()) == json.loads((uninterrupted / name).read_text()), name
    got, expected = np.load(workdir / RUN / "epoch_scores.npz"), np.load(uninterrupted / RUN / "epoch_scores.npz")
    assert sorted(got.files) == sorted(expected.files)
    for key in expected.files:
        np.testing.assert_array_equal(got[key], expected[key], err_msg=key)
    for name in (RUN / "training_log.tsv", RUN / "diagnostic_auc_per_epoch.tsv"):
        got_table = pd.read_csv(workdir / name, sep="\t").drop(columns="seconds", errors="ignore")
        expected_table = pd.read_csv(uninterrupted / name, sep="\t").drop(columns="seconds", errors="ignore")
        pd.testing.assert_frame_equal(got_table, expected_table, check_exact=True)
    for name in ("G_pretrained.pt", "D_pretrained.pt", "models.pt"):
        got_state = torch.load(workdir / RUN / name, map_location="cpu", weights_only=False)
        expected_state = torch.load(uninterrupted / RUN / name, map_location="cpu", weights_only=False)
        assert_same_tensors(got_state, expected_state, name)
    # No checkpoint is left once its stage has finished.
    assert not list((workdir / RUN).glob("*.ckpt*"))


def assert_same_tensors(got, expected, where: str) -> None:
    """Tensors (nested in dicts and lists) equal bit for bit; other leaves ignored (metadata)."""
    if isinstance(expected, torch.Tensor):
        assert torch.equal(got, expected), where
    elif isinstance(expected, dict):
        for key, value in expected.items():
            if isinstance(value, (torch.Tensor, dict)):
                assert_same_tensors(got[key], value, f"{where}:{key}")
