"""frame_step: every k-th frame feeds a segment, the same way in the segment index, extraction,
training's record, `gclvad score` and `gclvad watch`; another step than the run's is refused."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from watch_support import SEGMENT, textured_frames, tiny_extractor, train_run, write_ts

from gclvad.cli.main import main
from gclvad.decode.video import iter_frames
from gclvad.errors import GclvadError
from gclvad.features.files import read_video_features
from gclvad.gcl.store import load_models, score
from gclvad.live.watcher import WatchSettings, watch
from gclvad.scoring.footage import score_one
from gclvad.scoring.run import open_run, read_run

SIZE = (48, 64)
STEP = 2
SPAN = SEGMENT * STEP  # frames of the video one segment spans
LIVE_FRAMES = 150  # 4 full spans and one of 22 frames (11 taken, 5 repeats of the last)
PLANTED = range(64, 128)  # the whole of segments 2 and 3


@pytest.fixture(scope="module")
def stepped(tmp_path_factory) -> dict:
    """An autoencoder run of the tiny extractor trained on every second frame, and a live video."""
    base = tmp_path_factory.mktemp("stepped")
    extractor = tiny_extractor()
    videos = {
        f"train{i}": (write_ts(base / f"train{i}.ts", textured_frames(96, SIZE, seed=i)), "train") for i in range(3)
    }
    videos["test0"] = (write_ts(base / "test0.ts", textured_frames(96, SIZE, seed=9)), "test")
    run = train_run(base, extractor, videos, variant="AE_AllData", frame_step=STEP)
    live = write_ts(base / "live.ts", textured_frames(LIVE_FRAMES, SIZE, seed=5, planted=PLANTED))
    return {"base": base, "run": run, "extractor": extractor, "live": live}


def test_the_index_the_features_and_the_run_count_spans_of_every_second_frame(stepped):
    dataset = stepped["base"] / "results" / "demo"
    index = pd.read_csv(dataset / "segments.tsv", sep="\t")
    assert index["segments"].tolist() == [3] * 4 and index["padded_tail"].tolist() == [0] * 4  # 96 = 3 spans
    features, attrs = read_video_features(dataset / "features" / "tiny3d" / "train0.h5")
    assert features.shape == (3, 16) and (attrs["frame_step"], attrs["frames"], attrs["padded_tail"]) == (2, 96, 0)
    record = read_run(stepped["run"])
    assert (record.frame_step, record.span) == (STEP, SPAN)


def expected_features(extractor, source, frames: int) -> np.ndarray:
    """Each segment's features computed independently: frames first, first + 2, ... of the
    decoded video (the last taken frame repeated past its end), through the preprocessing."""
    decoded = list(iter_frames(source, extractor.preprocessing))
    assert len(decoded) == frames
    rows = []
    for first in range(0, frames, SPAN):
        taken = decoded[first : first + SPAN : STEP]
        taken += [taken[-1]] * (SEGMENT - len(taken))
        clip = extractor.preprocessing.normalize(np.stack(taken))
        rows.append(extractor.extract(clip[None]).numpy()[0])
    return np.stack(rows)


def test_gclvad_score_extracts_every_second_frame_and_spreads_each_score_over_its_span(stepped, tmp_path):
    extractor, live = stepped["extractor"], stepped["live"]
    opened = open_run(stepped["run"], device="cpu", extractor=extractor, frame_step=STEP)
    (tmp_path / "features").mkdir()
    scored = score_one(opened.scorer, extractor, opened.record, "live", live, tmp_path, batch_size=4)
    assert (scored.frames, scored.segments) == (LIVE_FRAMES, 5)
    features, attrs = read_video_features(tmp_path / "features" / "live.h5")
    assert (attrs["frame_step"], attrs["padded_tail"]) == (STEP, 5 * SPAN - LIVE_FRAMES)
    np.testing.assert_allclose(features, expected_features(extractor, live, LIVE_FRAMES), rtol=2e-3, atol=2e-3)

    table = pd.read_csv(tmp_path / "live.csv")
    assert len(table) == LIVE_FRAMES
    by_span = table.groupby(np.arange(LIVE_FRAMES) // SPAN)["score"]
    assert (by_span.nunique() == 1).all()  # one score over each segment's 32 frames
    expected = score(load_models(stepped["run"] / "models.pt", device="cpu"), features)["score"]
    np.testing.assert_allclose(by_span.first(), expected, rtol=1e-5)
    assert set(np.argsort(by_span.first().to_numpy())[-2:]) == {2, 3}  # the planted spans


def test_watch_takes_the_same_frames_as_gclvad_score(stepped, tmp_path):
    extractor, live = stepped["extractor"], stepped["live"]
    summary = watch(stepped["run"], str(live), tmp_path / "out", WatchSettings(threshold=1e9), extractor=extractor)
    table = pd.read_csv(tmp_path / "out" / "scores.csv")
    assert table["first_frame"].tolist() == [0, 32, 64, 96, 128]
    assert (table["last_frame"] - table["first_frame"]).tolist() == [31, 31, 31, 31, LIVE_FRAMES - 1 - 128]
    assert summary["scored_segments"] == 5 and summary["frames"] == LIVE_FRAMES

    opened = open_run(stepped["run"], device="cpu", extractor=extractor)
    (tmp_path / "offline" / "features").mkdir(parents=True)
    score_one(opened.scorer, extractor, opened.record, "live", live, tmp_path / "offline", batch_size=4)
    offline = pd.read_csv(tmp_path / "offline" / "live.csv")["score"].to_numpy()[::SPAN]
    np.testing.assert_allclose(table["score"], offline, rtol=1e-4)


def test_another_frame_step_than_the_runs_is_refused(stepped, tmp_path, capsys):
    run, extractor = stepped["run"], stepped["extractor"]
    with pytest.raises(GclvadError, match="trained with frame_step 2, not 1; segments of another frame step"):
        open_run(run, device="cpu", extractor=extractor, frame_step=1)
    with pytest.raises(GclvadError, match="trained with frame_step 2, not 3"):
        watch(run, str(stepped["live"]), tmp_path / "w", extractor=extractor, frame_step=3)
    assert main(["score", str(run), str(stepped["live"]), "-o", str(tmp_path / "s"), "--frame-step", "1"]) == 2
    assert "trained with frame_step 2, not 1" in capsys.readouterr().err
    assert not (tmp_path / "s").exists() and not (tmp_path / "w").exists()


def test_the_extract_command_samples_frames_too(stepped, tmp_path):
    """`gclvad extract --frame-step` writes what a run of that step reads (here: random r3d_18)."""
    torch.manual_seed(0)
    status = main(
        ["extract", str(stepped["live"]), "-o", str(tmp_path), "--extractor", "r3d_18", "--weights", "random",
         "--device", "cpu", "--frame-step", "3", "--decoders", "1"]
    )  # fmt: skip
    assert status == 0
    features, attrs = read_video_features(tmp_path / "live.h5")
    assert features.shape[0] == 4 and attrs["frame_step"] == 3  # spans of 48 frames: 3 full, 1 of 6
    assert (attrs["frames"], attrs["padded_tail"]) == (LIVE_FRAMES, 4 * 48 - LIVE_FRAMES)
