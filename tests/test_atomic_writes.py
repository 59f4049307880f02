"""Every output is written through gclvad.atomic (issue 11, items 11-13): usual permissions
(0666 minus the umask, not mkstemp's 0600), nothing partial under the final name when a
writer fails, and a models.pt killed with SIGKILL at random moments mid-write is either
absent or complete, and writing it again completes."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gclvad.atomic import write_atomic, write_json_atomic

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(params=[0o022, 0o007])
def umask(request):
    before = os.umask(request.param)
    yield request.param
    os.umask(before)


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def write_each_kind(folder: Path) -> list[Path]:
    """One file of every kind gclvad writes, by the package's own writers."""
    import torch

    from gclvad.datasets.segment_index import COLUMNS, write_segment_index
    from gclvad.datasets.synthetic.demo import generate_demo
    from gclvad.evaluation.plots import plot_message
    from gclvad.features.files import merge_video_features, write_video_features
    from gclvad.gcl.checkpoint import save_checkpoint
    from gclvad.gcl.models import build_models
    from gclvad.gcl.store import save_models
    from gclvad.gcl.variants import get_variant
    from gclvad.scoring.frames import write_scores, write_scores_csv

    attrs = {"extractor": "x", "weights_sha256": "random", "segment_length": 16, "frames": 32, "padded_tail": 0}
    write_video_features(folder / "a.h5", np.ones((2, 4), np.float32), attrs)
    merge_video_features({"a": folder / "a.h5"}, folder / "merged.h5")
    write_segment_index(pd.DataFrame([dict.fromkeys(COLUMNS, 0)]), folder / "segments.tsv")
    scores = {"score": np.array([0.5, 0.25], np.float32)}
    write_scores(folder / "scores.h5", {"a": scores})
    write_scores_csv(folder / "a.csv", scores, fps=25.0)
    save_models(folder / "models.pt", build_models(get_variant("AE_AllData", preset="small"), 4))
    save_checkpoint(folder / "checkpoint.pt", {}, {"step": torch.tensor(1)})
    write_json_atomic(folder / "auc.json", {"auc": 0.5})
    plot_message(folder / "figure.png", "title", "nothing to draw")
    generate_demo(folder / "demo", n_train=1, n_test=1, frames=16, size=(16, 16))
    return sorted(path for path in folder.rglob("*") if path.is_file())


def test_outputs_get_the_usual_permissions(tmp_path, umask):
    written = write_each_kind(tmp_path)
    assert {path.name for path in written} >= {"a.h5", "models.pt", "figure.png", "videos.csv", "annotations.csv"}
    assert {path.name: oct(mode(path)) for path in written} == {path.name: oct(0o666 & ~umask) for path in written}
    assert not [path for path in written if path.name.startswith(".")]  # no temporary file left


def test_a_failing_writer_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "table.tsv"
    target.write_text("complete\n")

    def fails_half_way(temporary: Path) -> None:
        temporary.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        write_atomic(target, fails_half_way)
    assert target.read_text() == "complete\n" and list(tmp_path.iterdir()) == [target]


def test_a_figure_is_written_atomically_in_the_format_of_its_suffix(tmp_path):
    from gclvad.evaluation.plots import plot_message

    plot_message(tmp_path / "figure.png", "title", "message")
    plot_message(tmp_path / "figure.pdf", "title", "message")
    assert (tmp_path / "figure.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "figure.pdf").read_bytes()[:5] == b"%PDF-"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["figure.pdf", "figure.png"]


# ---------------------------------------------------------------- item 13: SIGKILL mid-write

# Writes models.pt again and again, generator weights and metadata both holding the write's
# number, so that a file mixing two writes (or cut short) is caught. "once" writes one and exits.
WRITER = textwrap.dedent(
    """
    import sys
    import torch
    from gclvad.gcl.models import build_models
    from gclvad.gcl.store import save_models
    from gclvad.gcl.variants import get_variant

    config = get_variant("AE_AllData", preset="small", g_hidden=[1024, 1024, 1024])
    models = build_models(config, 1024)  # ~20 MB of weights: a write takes a while
    first = next(models.generator.parameters())
    print("ready", flush=True)
    count = 0
    while True:
        count += 1
        with torch.no_grad():
            first.fill_(float(count))
        save_models(sys.argv[1], models, {"write": count})
        if sys.argv[2] == "once":
            break
    """
)


def start_writer(path: Path, how: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")]))
    return subprocess.Popen([sys.executable, "-c", WRITER, str(path), how], stdout=subprocess.PIPE, text=True, env=env)


def check_complete(path: Path) -> int:
    """The write number of a complete models file (its weights and metadata agree)."""
    from gclvad.gcl.store import load_models, read_models_metadata

    written = read_models_metadata(path)["write"]
    first = next(load_models(path, device="cpu").generator.parameters())
    assert bool((first == float(written)).all()), f"{path} mixes two writes"
    return written


@pytest.mark.slow  # a resume test: each of the writers started costs seconds (torch)
def test_models_file_killed_mid_write_is_absent_or_complete_and_a_rerun_completes(tmp_path):
    target = tmp_path / "models.pt"
    rng = random.Random(0)
    kills_mid_write = 0
    for _ in range(6):
        temporaries_before = set(tmp_path.glob(".models.pt.*.tmp"))
        writer = start_writer(target, "loop")
        assert writer.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.0, 0.6))
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait()
        kills_mid_write += bool(set(tmp_path.glob(".models.pt.*.tmp")) - temporaries_before)
        if target.exists():
            check_complete(target)
        assert [p.name for p in tmp_path.iterdir() if not p.name.startswith(".")] in ([], ["models.pt"])
    assert kills_mid_write >= 3, "the kills should land while a file is being written"
    writer = start_writer(target, "once")
    writer.stdout.read()
    assert writer.wait() == 0
    assert check_complete(target) == 1
