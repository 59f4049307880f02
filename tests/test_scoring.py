"""Scoring new videos with a trained run (gclvad.scoring.footage, `gclvad score`, rule score_folder).

One tiny run is trained once by the real workflow, with an r3d_18 weights file (a random
initialisation saved by the test), so the sha256 check sees a real file. Its own scores of a
demo video are the reference: scoring that video again must give the same numbers.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torchvision
from videos import make_frame_folder, make_video

from gclvad.cli.main import main
from gclvad.decode.inputs import video_ids
from gclvad.errors import GclvadError
from gclvad.features.files import read_video_features
from gclvad.gcl.store import load_models, read_models_metadata, save_models, score
from gclvad.scoring.footage import score_videos
from gclvad.scoring.frames import read_scores
from gclvad.weights import sha256_file
from workflow import make_workdir, snakemake, tiny_config

RUN = "results/demo/r3d_18/GCL_PT/seed0"
WEIGHTS = "resources/models/r3d_18.pth"
SEGMENT = 16
FRESH_FRAMES = 40  # two full segments and one padded with 8 frames
FOLDER_FRAMES = 20  # one full segment and one padded with 12 frames


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """A trained tiny run, its scores of the demo test videos, and the rule's scores of a folder."""
    config = tiny_config(
        datasets={"demo": {"generate": {"n_train": 3, "n_test": 2, "frames": 48}}},
        extractors={"r3d_18": {"weights": WEIGHTS, "batch_size": 4, "dtype": "float16"}},
    )
    work = make_workdir(tmp_path_factory.mktemp("scoring"), config)
    (work / WEIGHTS).parent.mkdir(parents=True)
    torch.manual_seed(0)
    torch.save(torchvision.models.video.r3d_18().state_dict(), work / WEIGHTS)
    clips = work / "resources" / "score" / "clips"
    make_video(clips / "fresh.mkv", FRESH_FRAMES, (24, 32), pattern="ramp")
    make_frame_folder(clips / "still", FOLDER_FRAMES, (24, 32), pattern="ramp")
    snakemake(work, f"{RUN}/scores.h5", f"{RUN}/scored/clips/scores.tsv")
    return work


@pytest.fixture
def demo_video(workdir) -> tuple[str, Path]:
    """(id, path) of a demo test video that the workflow itself scored."""
    videos = pd.read_csv(workdir / "results/demo/videos/videos.csv")
    name = videos.loc[videos["split"] == "test", "video"].iloc[0]
    return name, workdir / "results/demo/videos" / f"{name}.mp4"


def segment_values(column: pd.Series) -> list[np.ndarray]:
    return [np.unique(column.to_numpy()[start : start + SEGMENT]) for start in range(0, len(column), SEGMENT)]


def test_scores_equal_the_runs_own_and_spread_over_frames(workdir, demo_video, tmp_path, monkeypatch):
    monkeypatch.chdir(workdir)  # the run records its weights relative to the workflow folder
    name, demo = demo_video
    fresh = make_video(tmp_path / "in" / "fresh.mkv", FRESH_FRAMES, (24, 32), pattern="ramp")
    folder = make_frame_folder(tmp_path / "in" / "still", FOLDER_FRAMES, (24, 32), pattern="ramp")
    out = tmp_path / "out"

    written = score_videos(RUN, [demo, fresh, folder], out, device="cpu")

    assert written == [out / f"{v}{ext}" for v in (name, "fresh", "still") for ext in (".csv", ".png")]
    assert all(path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for path in written[1::2])

    # The demo video: same features (same decoding, network, weights, stored dtype) and the
    # same frame scores as the workflow's own scoring of it.
    ours, _ = read_video_features(out / "features" / f"{name}.h5")
    theirs, _ = read_video_features(workdir / f"results/demo/features/r3d_18/{name}.h5")
    np.testing.assert_allclose(ours, theirs, rtol=1e-3, atol=1e-4)
    table = pd.read_csv(out / f"{name}.csv")
    reference = read_scores(workdir / RUN / "scores.h5")[name]
    assert list(table.columns) == ["frame", "time_s", "score", "score_raw", "d", "g"]
    assert table["frame"].tolist() == list(range(48)) == list(range(len(reference["score"])))
    np.testing.assert_allclose(table["time_s"], np.arange(48) / 25.0, atol=1e-3)
    for column in ("score", "score_raw", "d", "g"):
        np.testing.assert_allclose(table[column], reference[column], rtol=1e-5, atol=1e-6)

    # A new video: one row per decoded frame, one score per segment (the padded last segment's
    # real frames included), equal to the run's networks applied to its segment features.
    table = pd.read_csv(out / "fresh.csv")
    assert len(table) == FRESH_FRAMES
    assert [len(values) for values in segment_values(table["score"])] == [1, 1, 1]
    features, attrs = read_video_features(out / "features" / "fresh.h5")
    assert (len(features), attrs["frames"], attrs["padded_tail"]) == (3, FRESH_FRAMES, 8)
    expected = score(load_models(workdir / RUN / "models.pt", device="cpu"), features)
    assert table["score"].iloc[::SEGMENT].to_numpy() == pytest.approx(expected["d"], rel=1e-5)
    np.testing.assert_array_equal(expected["score"], expected["d"])  # GCL scores with D

    # A frame folder has no frame rate: no time column.
    table = pd.read_csv(out / "still.csv")
    assert list(table.columns) == ["frame", "score", "score_raw", "d", "g"] and len(table) == FOLDER_FRAMES
    assert [len(values) for values in segment_values(table["g"])] == [1, 1]

    # Scoring again reuses the cached features (the file is not rewritten), same scores.
    cached = out / "features" / f"{name}.h5"
    before, first_scores = cached.stat().st_mtime_ns, (out / f"{name}.csv").read_text()
    score_videos(RUN, [demo], out, device="cpu")
    assert cached.stat().st_mtime_ns == before
    assert (out / f"{name}.csv").read_text() == first_scores


def test_rule_scores_every_video_of_a_folder(workdir):
    scored = workdir / RUN / "scored" / "clips"
    summary = pd.read_csv(scored / "scores.tsv", sep="\t")
    assert summary["video"].tolist() == ["fresh", "still"]
    assert summary["frames"].tolist() == [FRESH_FRAMES, FOLDER_FRAMES]
    assert summary["segments"].tolist() == [3, 2]
    for row in summary.itertuples():
        table = pd.read_csv(workdir / row.csv)
        assert len(table) == row.frames
        assert table["score"].max() == pytest.approx(row.max_score, rel=1e-5)
        assert (workdir / row.png).is_file()
    assert (workdir / "logs/demo/r3d_18/GCL_PT/seed0/score_folder/clips.log").is_file()


def test_other_weights_are_refused_naming_both_digests(workdir, tmp_path, monkeypatch):
    monkeypatch.chdir(workdir)
    other = tmp_path / "other.pth"
    shutil.copyfile(workdir / WEIGHTS, other)
    with open(other, "ab") as handle:
        handle.write(b"\0")
    trained_with = read_models_metadata(workdir / RUN / "models.pt")["weights_sha256"]
    assert trained_with == sha256_file(workdir / WEIGHTS)
    video = make_video(tmp_path / "clip.mkv", 16)

    with pytest.raises(GclvadError, match=f"{sha256_file(other)}.*{trained_with}"):
        score_videos(RUN, [video], tmp_path / "out", weights=other, device="cpu")
    with pytest.raises(GclvadError, match=f"sha256 random.*{trained_with}"):
        score_videos(RUN, [video], tmp_path / "out", weights="random", device="cpu")
    assert not (tmp_path / "out").exists()


def test_random_weights_run_accepts_only_the_random_marker(workdir, tmp_path, monkeypatch):
    monkeypatch.chdir(workdir)
    models_path = workdir / RUN / "models.pt"
    metadata = read_models_metadata(models_path)
    metadata["extractor"] = {**metadata["extractor"], "weights": "random"}
    metadata["weights_sha256"] = "random"
    random_run = tmp_path / "random_run"
    random_run.mkdir()
    save_models(random_run / "models.pt", load_models(models_path), metadata=metadata)
    folder = make_frame_folder(tmp_path / "frames", FOLDER_FRAMES)

    with pytest.raises(GclvadError, match=f"sha256 {sha256_file(workdir / WEIGHTS)}.*sha256 random"):
        score_videos(random_run, [folder], tmp_path / "out", weights=WEIGHTS, device="cpu")
    with pytest.warns(UserWarning, match="RANDOM weights"):
        written = score_videos(random_run, [folder], tmp_path / "out", device="cpu")
    assert len(pd.read_csv(written[0])) == FOLDER_FRAMES


def test_missing_weights_say_to_pass_weights(workdir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the recorded relative weights path is not found from here
    video = make_video(tmp_path / "clip.mkv", 16)
    with pytest.raises(GclvadError, match=f"{WEIGHTS}.*pass --weights"):
        score_videos(workdir / RUN, [video], tmp_path / "out", device="cpu")
    with pytest.raises(GclvadError, match=r"nowhere.pth does not exist"):
        score_videos(workdir / RUN, [video], tmp_path / "out", weights="nowhere.pth", device="cpu")


def test_video_ids_are_stems_and_must_be_distinct(tmp_path):
    clip = make_video(tmp_path / "a" / "clip.mkv", 4)
    frames = make_frame_folder(tmp_path / "frames", 2)
    assert video_ids([clip, frames]) == {"clip": clip, "frames": frames}
    twin = make_video(tmp_path / "b" / "clip.mp4", 4, codec="mpeg4", pix_fmt="yuv420p")
    with pytest.raises(GclvadError, match=r"distinct names.*clip:.*clip.mkv.*clip.mp4"):
        video_ids([clip, twin])


def test_cli_bad_input_exits_2_with_one_line(workdir, tmp_path, capsys):
    clip = make_video(tmp_path / "clip.mkv", 16)
    cases = {
        "not a trained run": [str(tmp_path), str(clip)],
        "missing.mp4: not found": [str(workdir / RUN), str(tmp_path / "missing.mp4")],
        "does not exist": [str(workdir / RUN), str(clip), "--weights", str(tmp_path / "none.pth")],
    }
    for message, arguments in cases.items():
        assert main(["score", *arguments, "-o", str(tmp_path / "out")]) == 2
        error = capsys.readouterr().err.strip()
        assert error.startswith("gclvad: error:") and message in error and "\n" not in error


def test_a_bad_video_stops_the_call_or_is_skipped(workdir, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(workdir)  # the run's recorded weights path is relative to the workflow's folder
    good = make_video(tmp_path / "good.mkv", FRESH_FRAMES, (24, 32), pattern="ramp")
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all")
    arguments = ["score", str(workdir / RUN), str(good), str(broken), "-o", str(tmp_path / "out")]
    assert main(arguments) == 2
    error = capsys.readouterr().err
    assert "broken.mp4" in error and "--on-bad-video skip" in error
    assert main([*arguments, "--on-bad-video", "skip"]) == 0
    out, error = capsys.readouterr()
    assert out.split() == [str(tmp_path / "out" / "good.csv"), str(tmp_path / "out" / "good.png")]
    assert "broken.mp4" in error and "1 scored, 1 bad" in error
    assert len(pd.read_csv(tmp_path / "out" / "good.csv")) == FRESH_FRAMES
    assert not (tmp_path / "out" / "broken.csv").exists()
    assert main(["score", str(workdir / RUN), str(broken), "-o", str(tmp_path / "none"), "--on-bad-video", "skip"]) == 2


def test_console_script_scores_with_progress(workdir, tmp_path):
    clip = make_video(tmp_path / "clip.mkv", FRESH_FRAMES, (24, 32), pattern="ramp")
    command = [str(Path(sys.executable).parent / "gclvad"), "score", RUN, str(clip), "-o", str(tmp_path / "out")]
    result = subprocess.run(command, cwd=workdir, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [str(tmp_path / "out" / "clip.csv"), str(tmp_path / "out" / "clip.png")]
    assert "scoring" in result.stderr and "1/1" in result.stderr
    assert len(pd.read_csv(tmp_path / "out" / "clip.csv")) == FRESH_FRAMES
