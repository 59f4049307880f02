"""Helpers for tests that run the real Snakemake workflow in a scratch copy of the repo."""

from __future__ import annotations

import contextlib
import copy
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
WORKFLOW_FILES = ["Snakefile", "workflow", "config", "profiles", "envs"]


def tiny_config(**overrides) -> dict:
    """The shipped config with a small demo dataset that trains in seconds."""
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["datasets"] = {
        "demo": {
            "format": "generic",
            "generate": {"seed": 0, "n_train": 4, "n_test": 3, "frames": 48},
            "extractor": "r3d_18",
            "training": "tiny",
        }
    }
    config["extractors"]["r3d_18"] = {"weights": "random", "precision": "fp32", "batch_size": 4, "dtype": "float32"}
    config["training"]["presets"]["tiny"] = {
        **config["training"]["presets"]["small"],
        "loop": {"epochs": 3},
        "pretrain_g": {"epochs": 3},
        "pretrain_d": {"epochs": 2},
        "optimiser": {"min_steps_per_stage": 20},
        "architecture": {"g_hidden": [128, 64, 32, 64, 128], "d_hidden": [64, 16]},
    }
    return merge(config, overrides)


def merge(base: dict, overrides: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def make_workdir(path: Path, config: dict) -> Path:
    """A copy of the workflow (not of results) with `config` as config/config.yaml."""
    path.mkdir(parents=True, exist_ok=True)
    for name in WORKFLOW_FILES:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, path / name, dirs_exist_ok=True)
        else:
            shutil.copy2(source, path / name)
    write_config(path, config)
    return path


def write_config(workdir: Path, config: dict) -> None:
    (workdir / "config" / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


def snakemake(workdir: Path, *args: str, timeout: float = 900, check: bool = True) -> subprocess.CompletedProcess:
    """Run snakemake in `workdir` with this interpreter; output captured as text."""
    command = [sys.executable, "-m", "snakemake", "--cores", "2", *args]
    result = subprocess.run(command, cwd=workdir, capture_output=True, text=True, timeout=timeout, env=job_env())
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(command)} failed:\n{result.stdout[-4000:]}\n{result.stderr[-8000:]}")
    return result


def job_env() -> dict:
    """Environment for workflow jobs: the venv's bin first, one thread per job for speed on 2 cores."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def start_snakemake(workdir: Path, *args: str) -> subprocess.Popen:
    """Start snakemake in its own process group so a test can SIGKILL the whole run."""
    command = [sys.executable, "-m", "snakemake", "--cores", "2", *args]
    return subprocess.Popen(
        command,
        cwd=workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=job_env(),
        start_new_session=True,
    )


def kill_group(process: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def planned_rules(dry_run_output: str) -> dict[str, int]:
    """Job counts per rule from the 'Job stats' table of a dry run."""
    counts: dict[str, int] = {}
    lines = dry_run_output.splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.startswith("Job stats:"))
    except StopIteration:
        return counts
    for line in lines[start + 3 :]:
        parts = line.split()
        if len(parts) != 2 or parts[0] == "total":
            break
        counts[parts[0]] = int(parts[1])
    return counts
