"""Stage functions of the workflow on small hand-made inputs: splits, frame-score files,
aggregate tables, figures."""

import json

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from gclvad.datasets.segment_index import COLUMNS, read_segment_index, split_videos, write_segment_index
from gclvad.evaluation import plots
from gclvad.evaluation.metrics import frame_auc
from gclvad.scoring.frames import read_scores, write_scores, write_scores_csv
from gclvad.stages.figures import DELIVERED_LABEL, pick_videos, plot_run
from gclvad.stages.results import aggregate_table


def _index(tmp_path, rows):
    table = pd.DataFrame(
        [
            dict(
                video=v,
                source=f"{v}.mp4",
                split=s,
                frames=32,
                fps=25.0,
                width=64,
                height=48,
                segments=2,
                padded_tail=0,
                status=status,
                reason="",
            )
            for v, s, status in rows
        ],
        columns=COLUMNS,
    )
    path = tmp_path / "segments.tsv"
    write_segment_index(table, path)
    return read_segment_index(path)


def test_training_and_scored_videos_follow_splits_and_status(tmp_path):
    index = _index(
        tmp_path, [("a", "train", "ok"), ("b", "test", "ok"), ("c", "train", "bad"), ("d", "test", "truncated")]
    )
    assert split_videos(index, ["train"]) == (["a"], ["b", "d"])
    # transductive: the test videos train too, and are still the ones scored
    assert split_videos(index, ["train", "test"]) == (["a", "b", "d"], ["b", "d"])


def test_unsplit_footage_is_trained_on_and_scored(tmp_path):
    index = _index(tmp_path, [("cam1", None, "ok"), ("cam2", None, "ok")])
    assert split_videos(index, ["train"]) == (["cam1", "cam2"], ["cam1", "cam2"])


def test_no_scores_file_is_written_with_non_finite_scores(tmp_path):
    from gclvad.errors import GclvadError

    bad = {"v1": {"score": np.array([0.1, np.nan], np.float32)}}
    with pytest.raises(GclvadError, match="video v1: 1 'score' frame scores are NaN or infinite"):
        write_scores(tmp_path / "s.h5", bad)
    with pytest.raises(GclvadError, match="NaN or infinite"):
        write_scores_csv(tmp_path / "v1.csv", bad["v1"], fps=0.0)
    assert list(tmp_path.iterdir()) == []


def test_frame_scores_round_trip_and_csv(tmp_path):
    scores = {"v1": {"score": np.array([0.1, 0.1, 0.9], np.float32), "g": np.array([1, 1, 5], np.float32)}}
    write_scores(tmp_path / "s.h5", scores)
    back = read_scores(tmp_path / "s.h5")
    assert np.array_equal(back["v1"]["score"], scores["v1"]["score"])
    write_scores_csv(tmp_path / "v1.csv", back["v1"], fps=2.0)
    table = pd.read_csv(tmp_path / "v1.csv")
    assert list(table.columns[:2]) == ["frame", "time_s"] and set(table.columns[2:]) == {"g", "score"}
    assert table["time_s"].tolist() == [0.0, 0.5, 1.0]
    assert table["score"].tolist() == pytest.approx([0.1, 0.1, 0.9])


def test_aggregate_table_has_runs_and_mean_std_over_seeds(tmp_path):
    paths = []
    for i, (variant, seed, auc) in enumerate([("GCL_B", 0, 0.70), ("GCL_B", 1, 0.80), ("GCL_PT", 0, 0.90)]):
        path = tmp_path / f"{i}.json"
        path.write_text(json.dumps({"variant": variant, "seed": seed, "auc": auc, "auc_d": auc, "auc_g": 0.5}))
        paths.append(path)
    aggregate_table(auc_paths=paths, out_path=tmp_path / "seeds.tsv")
    table = pd.read_csv(tmp_path / "seeds.tsv", sep="\t")
    summary = table[table["seed"] == "all"].set_index("variant")
    assert summary.loc["GCL_B", "auc"] == pytest.approx(0.75)
    assert summary.loc["GCL_B", "auc_std"] == pytest.approx(np.std([0.7, 0.8], ddof=1), abs=1e-4)
    assert "GCL_PT" not in summary.index  # one seed: no mean row
    assert len(table) == 4


def test_anomalous_spans_and_figures(tmp_path):
    truth = np.array([0, 1, 1, 0, 0, 1], dtype=bool)
    assert plots.anomalous_spans(truth) == [(1, 3), (5, 6)]
    truths = {"a": truth, "b": np.zeros(6, bool), "c": truth}
    assert pick_videos(["b", "a", "c"], truths, count=2) == ["a", "b"]
    scores = np.linspace(0, 1, 6)
    plots.plot_roc(truth, {"D": scores}, tmp_path / "roc.png", "t")
    plots.plot_score_histograms(truth, {"D": scores, "G": scores[::-1]}, tmp_path / "h.png")
    plots.plot_video_scores([("a", scores, truth), ("b", scores, None)], tmp_path / "v.png")
    plots.plot_training_curves(
        [{"stage": "gcl_loop", "epoch": 1, "loss_g": 2.0, "loss_d": 0.5, "diagnostic_auc_d": 0.7}],
        tmp_path / "c.png",
    )
    for name in ("roc", "h", "v", "c"):
        assert (tmp_path / f"{name}.png").read_bytes()[:4] == b"\x89PNG"


def test_roc_figure_has_a_labelled_curve_per_score_and_the_diagonal():
    rng = np.random.default_rng(0)
    truth = np.repeat([False, True, False], 20)
    scores = {"score (delivered)": truth + rng.normal(0, 0.5, 60), "D": rng.random(60), "G": rng.random(60) - truth}
    fig = plots.roc_figure(truth, scores, "t")
    try:
        ax = fig.axes[0]
        assert len(ax.lines) == 4  # three curves and the chance diagonal
        legend = [text.get_text() for text in ax.get_legend().get_texts()]
        assert legend == [f"{name} (AUC = {roc_auc_score(truth, values):.4f})" for name, values in scores.items()]
    finally:
        plt.close(fig)


def test_run_roc_draws_the_delivered_score_beside_d_and_g(tmp_path, monkeypatch):
    """plot_run on a run folder's files: roc.png gets the delivered score's curve with auc.json's AUC."""
    _index(tmp_path, [("a", "test", "ok"), ("b", "test", "ok")])  # segments.tsv: 32 frames each
    (tmp_path / "videos.csv").write_text("video,path,split,label\na,a.mp4,test,1\nb,b.mp4,test,0\n")
    (tmp_path / "annotations.csv").write_text("video,start_frame,end_frame\na,8,24\n")
    spec = {
        "format": "generic",
        "manifest": str(tmp_path / "videos.csv"),
        "annotations": str(tmp_path / "annotations.csv"),
    }
    rng = np.random.default_rng(1)
    truths = {"a": np.isin(np.arange(32), np.arange(8, 24)), "b": np.zeros(32, bool)}
    scores = {
        v: {"score": t + rng.normal(0, 0.6, 32), "score_raw": rng.random(32), "d": rng.random(32), "g": rng.random(32)}
        for v, t in truths.items()
    }
    write_scores(tmp_path / "scores.h5", scores)
    pd.DataFrame([{"stage": "gcl_loop", "epoch": 1, "loss_g": 1.0, "loss_d": 0.5}]).to_csv(
        tmp_path / "training_log.tsv", sep="\t", index=False
    )
    pd.DataFrame([{"stage": "gcl_loop", "epoch": 1, "diagnostic_test_auc": 0.6}]).to_csv(
        tmp_path / "curve.tsv", sep="\t", index=False
    )
    drawn = {}

    def keep_legend(figure, path):
        if path.name == "roc.png":
            drawn["legend"] = [text.get_text() for text in figure.axes[0].get_legend().get_texts()]
        plt.close(figure)

    monkeypatch.setattr(plots, "_save", keep_legend)
    plot_run(
        scores_path=tmp_path / "scores.h5",
        index_path=tmp_path / "segments.tsv",
        spec=spec,
        training_log_path=tmp_path / "training_log.tsv",
        curve_path=tmp_path / "curve.tsv",
        outputs={name: tmp_path / f"{name}.png" for name in ("roc", "videos", "curves")},
        title="t",
    )
    stored = read_scores(tmp_path / "scores.h5")
    # the frame AUC auc.json reports as `auc`, of the delivered score (float32 as stored)
    headline = frame_auc({v: stored[v]["score"] for v in truths}, truths)
    assert drawn["legend"][0] == f"{DELIVERED_LABEL} (AUC = {headline:.4f})"
    assert [label.split(" (AUC")[0] for label in drawn["legend"]] == [DELIVERED_LABEL, "D", "G"]
