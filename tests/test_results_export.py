"""Results people take away: `gclvad export` (a run's frame scores as CSVs and an RTFM-style
.npy) and `gclvad summary` (results/summary.tsv over every finished run), on run folders and
results trees built with the package's own writers."""

import json

import numpy as np
import pandas as pd
import pytest

from gclvad.cli.main import main
from gclvad.datasets.segment_index import COLUMNS, write_segment_index
from gclvad.scoring.frames import write_scores

RUN = ("demo", "i3d", "GCL_PT", "seed0")

# The index's row order (the dataset's test list order) differs from scores.h5's, whose
# groups come back sorted by name: c, a, b are the scored videos, in this order.
INDEX_ROWS = [  # video, split, frames, fps, status
    ("t1", "train", 32, 25.0, "ok"),
    ("c", "test", 5, 10.0, "ok"),
    ("a", "test", 3, 0.0, "truncated"),  # fps unknown
    ("z", "test", 0, 0.0, "bad"),  # never scored
    ("b", "test", 4, 25.0, "ok"),
]


def _write_index(path, rows=INDEX_ROWS):
    table = pd.DataFrame(
        [
            dict(video=v, source=f"{v}.mp4", split=s, frames=n, fps=fps, width=64, height=48,
                 segments=max(n // 2, 0), padded_tail=0, status=status, reason="" if status == "ok" else "x")
            for v, s, n, fps, status in rows
        ],
        columns=COLUMNS,
    )  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    write_segment_index(table, path)


def _frame_scores(frames: int, offset: float) -> dict:
    ramp = np.linspace(0, 1, frames, dtype=np.float32)
    return {"score": ramp + offset, "score_raw": ramp, "d": 1 - ramp, "g": ramp * 3}


@pytest.fixture
def run_folder(tmp_path):
    """results/demo/i3d/GCL_PT/seed0 with scores.h5 of c, a, b, and results/demo/segments.tsv."""
    run = tmp_path.joinpath("results", *RUN)
    run.mkdir(parents=True)
    scores = {"a": _frame_scores(3, 10.0), "b": _frame_scores(4, 20.0), "c": _frame_scores(5, 30.0)}
    write_scores(run / "scores.h5", scores)
    _write_index(tmp_path / "results" / "demo" / "segments.tsv")
    return run, scores


def _export(run, out, *extra):
    return main(["export", str(run), "-o", str(out), *extra])


def test_export_concatenates_the_delivered_scores_in_the_index_order(run_folder, tmp_path, capsys):
    run, scores = run_folder
    out = tmp_path / "export"
    assert _export(run, out) == 0
    order = (out / "frame_predictions_videos.txt").read_text().splitlines()
    assert order == ["c", "a", "b"]
    predictions = np.load(out / "frame_predictions.npy")
    assert predictions.dtype == np.float32 and predictions.shape == (5 + 3 + 4,)
    assert np.array_equal(predictions, np.concatenate([scores[v]["score"] for v in order]))
    assert predictions[:5].min() >= 30 and predictions[5:8].max() <= 11 and predictions[8:].min() >= 20
    assert sorted(p.name for p in out.iterdir()) == [
        "a.csv", "b.csv", "c.csv", "frame_predictions.npy", "frame_predictions_videos.txt",
    ]  # fmt: skip
    assert "3 videos, 12 frames" in capsys.readouterr().out


def test_export_csvs_have_the_score_commands_columns_and_the_index_fps(run_folder, tmp_path):
    run, scores = run_folder
    assert _export(run, tmp_path / "export") == 0
    c = pd.read_csv(tmp_path / "export" / "c.csv")
    assert list(c.columns) == ["frame", "time_s", "score", "score_raw", "d", "g"]
    assert c["time_s"].tolist() == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4])  # c: 10 fps
    assert c["score"].tolist() == pytest.approx(scores["c"]["score"].tolist(), rel=1e-6)
    a = pd.read_csv(tmp_path / "export" / "a.csv")
    assert "time_s" not in a.columns and a["frame"].tolist() == [0, 1, 2]  # a: fps unknown


def test_export_refuses_to_overwrite_without_force(run_folder, tmp_path, capsys):
    run, _ = run_folder
    out = tmp_path / "export"
    assert _export(run, out) == 0
    (out / "frame_predictions.npy").write_bytes(b"earlier")
    capsys.readouterr()
    assert _export(run, out) == 2
    err = capsys.readouterr().err
    earlier = "(and 4 more files of an earlier export)"
    assert err.strip() == f"gclvad: error: {out / 'c.csv'}: exists {earlier}; pass --force to overwrite it"
    assert (out / "frame_predictions.npy").read_bytes() == b"earlier"  # nothing was touched
    assert _export(run, out, "--force") == 0
    assert np.load(out / "frame_predictions.npy").shape == (12,)


def test_export_names_the_file_and_the_problem(run_folder, tmp_path, capsys):
    run, _ = run_folder
    cases = [
        (tmp_path / "nowhere", [], "nowhere: not a run folder"),
        (run.parent, [], f"{run.parent / 'scores.h5'}: no scores.h5"),
        (run, ["--index", str(tmp_path / "none.tsv")], f"{tmp_path / 'none.tsv'}: segment index missing"),
    ]
    for folder, extra, message in cases:
        assert _export(folder, tmp_path / "out", *extra) == 2
        assert message in capsys.readouterr().err
    other = tmp_path / "other.tsv"
    _write_index(other, INDEX_ROWS[:3])  # lacks b
    assert _export(run, tmp_path / "out", "--index", str(other)) == 2
    assert f"{other}: 1 scored video(s) are not in this segment index (b)" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------- results/summary.tsv


def _auc_json(path, **metrics):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"videos": 4, "frames": 400, "auc_d": 0.5, "log_note": "ignored", **metrics}))


def test_summary_has_one_row_per_finished_run_of_every_dataset(tmp_path, capsys):
    results = tmp_path / "results"
    full = dict(auc_raw=0.7, average_precision=0.6, auc_anomalous_videos=0.65, macro_auc=0.55, false_alarm_rate=0.1)
    _auc_json(results / "demo/i3d/GCL_PT/seed10/auc.json", auc=0.9, **full)
    _auc_json(results / "demo/i3d/GCL_PT/seed2/auc.json", auc=0.8, **full)
    _auc_json(results / "demo/i3d/AE_AllData/seed0/auc.json", auc=0.6, auc_raw=0.6)  # G's errors: no false alarms
    _auc_json(results / "walkway/r3d_18/GCL_B/seed0/auc.json", auc=0.75, **full)
    _auc_json(results / "demo/auc.json", auc=0.9)  # the dataset's copy of its default run: not a run
    (results / "demo/i3d/GCL_PT/seed3").mkdir()  # a run still training: no auc.json, no row
    assert main(["summary", str(results)]) == 0
    assert "4 runs" in capsys.readouterr().out
    table = pd.read_csv(results / "summary.tsv", sep="\t")
    assert list(table.columns) == [
        "dataset", "extractor", "variant", "seed", "auc", "auc_raw", "average_precision",
        "auc_anomalous_videos", "macro_auc", "false_alarm_rate", "videos", "frames",
    ]  # fmt: skip
    runs = list(table[["dataset", "variant", "seed"]].itertuples(index=False, name=None))
    assert runs == [("demo", "AE_AllData", 0), ("demo", "GCL_PT", 2), ("demo", "GCL_PT", 10), ("walkway", "GCL_B", 0)]
    assert table["auc"].tolist() == pytest.approx([0.6, 0.8, 0.9, 0.75])
    assert table["extractor"].tolist() == ["i3d", "i3d", "i3d", "r3d_18"]
    assert table["false_alarm_rate"].isna().tolist() == [True, False, False, False]
    assert table["frames"].tolist() == [400] * 4


def test_summary_names_a_broken_auc_json_and_an_empty_tree(tmp_path, capsys):
    results = tmp_path / "results"
    results.mkdir()
    assert main(["summary", str(results), "-o", str(tmp_path / "s.tsv")]) == 2
    assert f"{results}: no finished run" in capsys.readouterr().err
    broken = results / "demo/i3d/GCL_PT/seed0/auc.json"
    broken.parent.mkdir(parents=True)
    broken.write_text("{ half")
    assert main(["summary", str(results), "-o", str(tmp_path / "s.tsv")]) == 2
    assert f"{broken}: cannot read the run's metrics" in capsys.readouterr().err
    assert not (tmp_path / "s.tsv").exists()
