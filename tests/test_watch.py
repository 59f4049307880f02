"""Live scoring (`gclvad watch`, gclvad.live.watcher / alerts / stream / clips / live_segments).

Runs are trained inside the tests with the package's pipeline functions (`train_stage`, as
the workflow's rules call it) on features of generated videos: a tiny random 3-D convolution
for the tests that need many segments fast, torchvision's r3d_18 (random weights, built by
the registry exactly as `gclvad score` builds it) where watch's scores are compared with
`gclvad score`'s. Streams are real: MPEG-TS sent over UDP to 127.0.0.1 by a sender process
(tests/stream_sender.py) that a test can kill.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import av
import numpy as np
import pandas as pd
import psutil
import pytest
from watch_support import SEGMENT, textured_frames, tiny_extractor, train_run, wait_until_listening, write_ts

from gclvad.cli.main import main
from gclvad.errors import GclvadError
from gclvad.extract.networks.base import RandomWeightsWarning
from gclvad.extract.networks.registry import build_extractor
from gclvad.features.feature_set import load_feature_set
from gclvad.features.files import read_video_features
from gclvad.gcl.store import load_models, read_models_metadata, save_models, score
from gclvad.live.alerts import CausalSmoother, EventDetector, ScoredSegment
from gclvad.live.calibration import calibrate_run
from gclvad.live.cameras import Camera, camera_file_sinks, read_camera_file
from gclvad.live.listeners import WatchListener
from gclvad.live.source import SourceSettings, _Clock
from gclvad.live.threshold import CALIBRATION_FILE, run_threshold
from gclvad.live.watcher import WatchSettings, watch
from gclvad.scoring.footage import score_videos
from gclvad.scoring.postprocess import PostprocessConfig
from gclvad.scoring.quantiles import QUANTILE_LEVELS, QUANTILES_KEY
from gclvad.scoring.scorer import load_scorer, write_ensemble

SENDER = Path(__file__).with_name("stream_sender.py")
SIZE = (48, 64)
PLANTED = range(64, 96)  # segments 4 and 5 of the live video are a flat magenta picture


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict:
    """An autoencoder run (score = G's reconstruction error) of the tiny extractor, and a live
    video (160 frames, 10 segments) whose segments 4 and 5 are planted."""
    base = tmp_path_factory.mktemp("tiny")
    extractor = tiny_extractor()
    videos = {
        f"train{i}": (write_ts(base / f"train{i}.ts", textured_frames(64, SIZE, seed=i)), "train") for i in range(3)
    }
    videos["test0"] = (write_ts(base / "test0.ts", textured_frames(64, SIZE, seed=9)), "test")
    run = train_run(base, extractor, videos, variant="AE_AllData")
    live = write_ts(base / "live.ts", textured_frames(160, SIZE, seed=5, planted=PLANTED))
    return {"base": base, "run": run, "extractor": extractor, "live": live}


# ---------------------------------------------------------------- threshold, smoothing, hysteresis


def upper_rule(scores) -> float:
    """The default threshold rule by hand: median + 2.5 x 1.4826 x the upper half's median
    distance above the median, on the recorded distribution (201 evenly spaced quantiles)."""
    levels = np.quantile(np.asarray(scores, np.float64), np.linspace(0, 1, 201))
    middle = np.median(levels)
    return float(middle + 2.5 * 1.4826 * np.median(levels[levels > middle] - middle))


def test_final_stage_records_its_training_score_quantiles(tiny):
    run = tiny["run"]
    recorded = read_models_metadata(run / "models.pt")[QUANTILES_KEY]
    training = load_feature_set(run.parents[2] / "features" / "tiny3d.h5", ["train0", "train1", "train2"])
    scores = score(load_models(run / "models.pt"), training.features)["score"]
    assert (recorded["score"], recorded["count"]) == ("g", 12)
    assert list(recorded["quantiles"]) == [f"{q:g}" for q in QUANTILE_LEVELS]
    for level, value in recorded["quantiles"].items():
        assert value == pytest.approx(float(np.quantile(scores.astype(np.float64), float(level))), rel=1e-6)
    assert recorded["max"] == pytest.approx(float(scores.max()))

    # a run delivering its network's own score (G's error): the 0.99 quantile
    default = run_threshold(run / "models.pt", {QUANTILES_KEY: recorded})
    assert default.value == recorded["quantiles"]["0.99"] and "networks' own scores" in default.origin
    # a z-normalised seed ensemble (the default for unlabelled footage): the rule upper:2.5
    ensemble = {QUANTILES_KEY: recorded, "members": [{}, {}]}
    normalised = run_threshold(run / "models.pt", ensemble)
    assert normalised.value == pytest.approx(upper_rule(scores)) and "upper half" in normalised.origin
    before = {key: value for key, value in recorded.items() if key != "distribution"}  # a run recorded earlier
    fallback = run_threshold(run / "models.pt", {**ensemble, QUANTILES_KEY: before})
    assert fallback.value == recorded["quantiles"]["0.99"] and "before the default rule" in fallback.origin
    assert (
        run_threshold(run / "models.pt", {QUANTILES_KEY: recorded}, quantile=0.9).value == recorded["quantiles"]["0.9"]
    )
    assert run_threshold(run / "models.pt", {}, value=1.5).value == 1.5
    with pytest.raises(GclvadError, match=r"quantiles 0.5, 0.9.*not at 0.97"):
        run_threshold(run / "models.pt", {QUANTILES_KEY: recorded}, quantile=0.97)


def test_runs_without_quantiles_are_told_to_calibrate(tiny, tmp_path):
    run = tiny["run"]
    metadata = read_models_metadata(run / "models.pt")
    recorded = metadata.pop(QUANTILES_KEY)
    old = run.parent / "seed1"  # a run trained before the quantiles were recorded, in the same layout
    old.mkdir()
    save_models(old / "models.pt", load_models(run / "models.pt"), metadata=metadata)
    with pytest.raises(GclvadError, match=f"gclvad calibrate {old}.*--threshold"):
        run_threshold(old / "models.pt", metadata)

    assert main(["calibrate", str(old), "--train-on", "train"]) == 0
    calibrated = run_threshold(old / "models.pt", metadata, quantile=0.99)
    assert calibrated.value == pytest.approx(recorded["quantiles"]["0.99"], rel=1e-6)
    assert CALIBRATION_FILE in calibrated.origin
    save_models(old / "models.pt", load_models(run / "models.pt"), metadata={**metadata, "retrained": True})
    with pytest.raises(GclvadError, match=r"another models.pt.*calibrate"):
        run_threshold(old / "models.pt", metadata)
    with pytest.raises(GclvadError, match="segment index is not there; pass --index"):
        calibrate_run(old, index_path=tmp_path / "none.tsv")


def test_causal_smoothing_is_pandas_ewm_and_looks_only_back():
    values = np.random.default_rng(0).normal(size=50)
    smoother = CausalSmoother(5)
    smoothed = [smoother(v) for v in values]
    np.testing.assert_allclose(smoothed, pd.Series(values).ewm(span=5, adjust=True).mean(), rtol=1e-12)
    changed = CausalSmoother(5)
    assert [changed(v) for v in [*values[:20], 100.0, *values[21:]]][:20] == smoothed[:20]  # no look-ahead
    identity = CausalSmoother(1)
    assert [identity(v) for v in values] == list(values)


def segment(index: int, value: float, length_s: float = 0.5) -> ScoredSegment:
    return ScoredSegment(index, 16 * index, 16 * index + 15, index * length_s, (index + 1) * length_s, 0.0, 0.0, value)


def test_events_open_above_the_threshold_and_close_after_the_hold():
    detector = EventDetector(threshold=1.0, hold_s=1.0)
    values = [0.2, 1.5, 0.5, 2.5, 0.4, 0.3, 0.9, 3.0, 0.1, 0.1, 0.1]
    changes = [detector.update(segment(i, v)) for i, v in enumerate(values)]
    opened = [i for i, (o, _) in enumerate(changes) if o is not None]
    closed = [(i, c) for i, (_, c) in enumerate(changes) if c is not None]
    # 1 opens; 2 is below for 0.5 s (< hold), 3 above again; 4, 5 below: 1.0 s after 3's end, closed at 5.
    assert opened == [1, 7] and [i for i, _ in closed] == [5, 9]
    first = closed[0][1].record()
    assert (first["start_frame"], first["end_frame"], first["peak_score"], first["closed_by"]) == (16, 63, 2.5, "hold")
    detector.update(segment(11, 5.0))
    stopped = detector.close("stop", when=12.0)
    assert (stopped.record()["end_frame"], stopped.closed_by, detector.count) == (191, "stop", 3)
    assert detector.close("stop", when=13.0) is None


def test_stream_clock_never_goes_back():
    clock = _Clock()
    assert [clock.time_of(t, 25.0, now=100.0) for t in (5.0, 5.04, 5.08)] == pytest.approx([0.0, 0.04, 0.08])
    assert clock.time_of(1.0, 25.0, now=100.1) == pytest.approx(0.12)  # timestamps went back: re-anchored
    assert clock.time_of(1.04, 25.0, now=100.2) == pytest.approx(0.16)
    clock.new_connection()  # a reconnection 3 s later continues the clock by the outage
    assert clock.time_of(50.0, 25.0, now=103.2) == pytest.approx(3.16)


# ---------------------------------------------------------------- watching a file


def read_events(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]


def test_planted_event_opens_and_closes_at_its_segments_with_a_clip(tiny, tmp_path):
    out = tmp_path / "out"
    settings = WatchSettings(threshold=1.0, hold_s=1.0, clips=True, clip_margin_s=0.9)
    summary = watch(tiny["run"], str(tiny["live"]), out, settings, extractor=tiny["extractor"])

    table = pd.read_csv(out / "scores.csv")
    assert table["first_frame"].tolist() == list(range(0, 160, SEGMENT))
    assert (table["last_frame"] - table["first_frame"]).eq(SEGMENT - 1).all()
    np.testing.assert_allclose(table["stream_start_s"], np.arange(10) * 0.64, atol=1e-3)
    planted = table["segment"].isin([4, 5])
    assert table.loc[planted, "score"].min() > 5 * table.loc[~planted, "score"].max()  # the plant shows
    # 4 opens the alert, 5 is the last above the threshold; 6 ends 0.64 s after 5 (< the 1 s hold),
    # 7 ends 1.28 s after it: the alert closes on 7.
    assert table["alert"].tolist() == [0, 0, 0, 0, 1, 1, 1, 0, 0, 0]

    opened, closed = read_events(out)
    assert (opened["event"], opened["state"], opened["start_frame"]) == (1, "open", 64)
    assert (closed["state"], closed["closed_by"], closed["start_frame"]) == ("closed", "hold", 64)
    assert closed["end_frame"] == 95 and closed["peak_frame"] in (64, 80)
    assert (out / closed["plot"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # The clip: from 0.9 s before the event's first frame (2.56 s: frame 42 at 1.68 s) to 0.9 s
    # after the end of segment 7 (5.12 s: frame 150 at 6.00 s); its middle is the planted picture.
    first, last = 42, 150
    with av.open(str(out / closed["clip"])) as clip:
        frames = [frame.to_ndarray(format="rgb24") for frame in clip.decode(video=0)]
    assert len(frames) == closed["clip_frames"] == last - first + 1
    assert (closed["clip_start_s"], closed["clip_end_s"], closed["clip_missing_frames"]) == (1.68, 6.0, 0)
    magenta = frames[70 - first].reshape(-1, 3).mean(axis=0)
    assert magenta[0] > 200 and magenta[1] < 60 and magenta[2] > 200
    assert summary["stopped_by"] == "end of file" and summary["scored_segments"] == 10 and summary["events"] == 1


def test_scores_fall_behind_and_drop_whole_segments(tiny, tmp_path):
    """A file played in real time at 100 fps to a scorer slower than that: whole segments drop."""
    fast = write_ts(tmp_path / "fast.ts", textured_frames(320, SIZE, seed=3), fps=100)
    extractor = tiny_extractor()
    extract = extractor.extract

    def slow_extract(clips):
        time.sleep(0.3 * len(clips))  # about 3 segments/s scored, 6.25 arrive
        return extract(clips)

    extractor.extract = slow_extract
    settings = WatchSettings(
        threshold=1e9, max_queued=1, batch_size=1, smooth_segments=3, source=SourceSettings(realtime=True)
    )
    started = time.monotonic()
    summary = watch(tiny["run"], str(fast), tmp_path / "out", settings, extractor=extractor)
    assert time.monotonic() - started >= 3.0  # played at its own rate, not as fast as it decodes

    table = pd.read_csv(tmp_path / "out" / "scores.csv")
    assert summary["dropped_segments"] > 0 and summary["dropped_frames"] == SEGMENT * summary["dropped_segments"]
    assert (table["first_frame"] % SEGMENT == 0).all() and (table["last_frame"] - table["first_frame"] == 15).all()
    assert len(table) + summary["dropped_segments"] == summary["segments"] == 20
    assert summary["frames"] == 320 and summary["scored_segments"] == len(table)
    # Causal smoothing over the scored segments, beside the raw scores.
    np.testing.assert_allclose(table["smoothed"], table["score"].ewm(span=3, adjust=True).mean(), rtol=1e-6)


def test_bad_input_is_refused_before_watching(tiny, tmp_path, capsys):
    with pytest.raises(GclvadError, match=r"nowhere.ts.*not found"):
        watch(tiny["run"], str(tmp_path / "nowhere.ts"), tmp_path / "a", extractor=tiny["extractor"])
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "scores.csv").write_text("segment\n1\n")
    with pytest.raises(GclvadError, match=r"already holds scores.csv of an earlier watch"):
        watch(tiny["run"], str(tiny["live"]), tmp_path / "b", extractor=tiny["extractor"])
    assert (tmp_path / "b" / "scores.csv").read_text() == "segment\n1\n"
    with pytest.raises(GclvadError, match=r"sha256 other.*sha256 random"):
        other = tiny_extractor()
        other.weights_sha256 = "other"
        watch(tiny["run"], str(tiny["live"]), tmp_path / "c", extractor=other)
    assert main(["watch", str(tmp_path), str(tiny["live"]), "-o", str(tmp_path / "d")]) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("gclvad: error:") and "not a trained run" in error


# ---------------------------------------------------------------- live streams over UDP


def free_udp_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_sender(source: Path, port: int, speed: float = 1.0) -> subprocess.Popen:
    url = f"udp://127.0.0.1:{port}?pkt_size=1316"
    return subprocess.Popen([sys.executable, str(SENDER), str(source), url, str(speed)])


def wait_for(path: Path, text: str, times: int = 1, timeout_s: float = 120.0) -> None:
    """Wait until `text` appears `times` times in the file at `path`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().count(text) >= times:
            return
        time.sleep(0.1)
    raise AssertionError(f"{text!r} not {times} times in {path} within {timeout_s} s:\n{path.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def r3d_run(tmp_path_factory) -> Path:
    """A GCL run (D and G) on r3d_18 features of random weights, as the registry builds them."""
    base = tmp_path_factory.mktemp("r3d")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RandomWeightsWarning)
        extractor = build_extractor("r3d_18", "random", device="cpu")
    videos = {
        f"train{i}": (write_ts(base / f"train{i}.ts", textured_frames(32, SIZE, seed=i)), "train") for i in range(2)
    }
    videos["test0"] = (write_ts(base / "test0.ts", textured_frames(32, SIZE, seed=9)), "test")
    return train_run(base, extractor, videos, variant="GCL_B")


@pytest.fixture(scope="module")
def r3d_three_run(tmp_path_factory) -> Path:
    """An autoencoder run on r3d_18 features of three crops a segment, each crop its own track."""
    base = tmp_path_factory.mktemp("r3d_three")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RandomWeightsWarning)
        extractor = build_extractor("r3d_18", "random", device="cpu", crops="three")
    videos = {
        f"train{i}": (write_ts(base / f"train{i}.ts", textured_frames(32, SIZE, seed=i)), "train") for i in range(2)
    }
    videos["test0"] = (write_ts(base / "test0.ts", textured_frames(32, SIZE, seed=9)), "test")
    return train_run(base, extractor, videos, variant="AE_AllData", crops="each")


def test_a_run_of_three_crops_watches_with_the_scores_gclvad_score_gives(r3d_three_run, tmp_path):
    live = write_ts(tmp_path / "live.ts", textured_frames(64, SIZE, seed=5, planted=range(32, 48)))
    summary = watch(r3d_three_run, str(live), tmp_path / "out")
    table = pd.read_csv(tmp_path / "out" / "scores.csv")
    # the default alert threshold: the 0.99 quantile (the crops' mean is no normalised score) of
    # what the run delivers for its training segments, not of the crops one by one
    training = load_feature_set(r3d_three_run.parents[2] / "features" / "r3d_18.h5", ["train0", "train1"], "each")
    delivered = load_scorer(r3d_three_run / "models.pt").segment_scores(training)["score"]
    assert summary["threshold"]["value"] == pytest.approx(np.quantile(delivered, 0.99))
    score_videos(r3d_three_run, [live], tmp_path / "offline", device="cpu")
    features, _ = read_video_features(tmp_path / "offline" / "features" / "live.h5")
    assert features.shape[:2] == (4, 3)  # three crops of each of the 4 segments
    offline = pd.read_csv(tmp_path / "offline" / "live.csv").groupby(np.arange(64) // SEGMENT).first()
    # the same frames and crops; batches of other sizes sum in another order (see the test below)
    np.testing.assert_allclose(table["score"], offline["score"], rtol=1e-4)
    assert table["score"].idxmax() == 2  # the planted segment, seen through its three crops


def test_an_ensemble_with_a_second_opinion_watches_as_gclvad_score_scores(r3d_three_run, tmp_path):
    # an ensemble of the run with itself, with the density of issue 18 (the workflow's rule
    # ensemble writes the same file from its members)
    features = r3d_three_run.parents[2] / "features" / "r3d_18.h5"
    training = load_feature_set(features, ["train0", "train1"], "each")
    run = tmp_path / "ensemble"
    run.mkdir()
    members = [r3d_three_run / "models.pt"] * 2
    metadata = read_models_metadata(r3d_three_run / "models.pt")
    write_ensemble(members, training, PostprocessConfig(), run / "models.pt", metadata, density_k=1)
    live = write_ts(tmp_path / "live.ts", textured_frames(64, SIZE, seed=5, planted=range(32, 48)))
    watch(run, str(live), tmp_path / "out")
    table = pd.read_csv(tmp_path / "out" / "scores.csv")
    score_videos(run, [live], tmp_path / "offline", device="cpu")
    offline = pd.read_csv(tmp_path / "offline" / "live.csv").groupby(np.arange(64) // SEGMENT).first()
    for name in ("density", "score"):
        np.testing.assert_allclose(table[name], offline[name], rtol=1e-4)
    # a camera is no training video: its distance is to the nearest crop of any of them
    live_features, _ = read_video_features(tmp_path / "offline" / "features" / "live.h5")
    bank = training.features.reshape(-1, training.features.shape[-1]).astype(np.float64)
    bank /= np.linalg.norm(bank, axis=1, keepdims=True)
    crops = live_features.astype(np.float64) / np.linalg.norm(live_features, axis=-1, keepdims=True)
    nearest = np.linalg.norm(crops[:, :, None, :] - bank[None, None], axis=-1).min(axis=2).mean(axis=1)
    np.testing.assert_allclose(table["density"], nearest, rtol=1e-4)


@pytest.mark.slow
def test_stream_scores_equal_offline_scores_and_survive_a_killed_sender(r3d_run, tmp_path):
    """The console script watches a UDP stream: its segment scores equal `gclvad score`'s of the
    same file; the sender stops, a second one (other size and frame rate) is killed mid-stream,
    watch reconnects each time; SIGTERM then ends it cleanly, closing its open event."""
    live = write_ts(tmp_path / "live.ts", textured_frames(64, SIZE, seed=5))
    other = write_ts(tmp_path / "other.ts", textured_frames(150, (96, 128), seed=6), fps=15)
    port, out, log = free_udp_port(), tmp_path / "out", tmp_path / "watch.log"
    command = [
        str(Path(sys.executable).parent / "gclvad"),
        "watch",
        str(r3d_run),
        f"udp://127.0.0.1:{port}",
        "-o",
        str(out),
        "--device",
        "cpu",
        "--threshold",
        "-1",
        "--clips",
        "--max-queued",
        "8",
        "--read-timeout",
        "2",
    ]  # threshold -1: every segment is above it, so an event is open when SIGTERM comes
    with open(log, "w") as stderr:
        watcher = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, text=True)
    try:
        wait_until_listening(port)
        assert start_sender(live, port).wait(timeout=60) == 0
        wait_for(log, "reconnecting in")
        second = start_sender(other, port)
        wait_for(log, "frame size changed from 64x48 to 128x96")
        time.sleep(3.0)
        second.kill()  # mid-stream: its 150 frames take 10 s
        second.wait()
        wait_for(log, "reconnecting in", times=2, timeout_s=30)
        deadline = time.monotonic() + 60
        while len(pd.read_csv(out / "scores.csv")) < 5 and time.monotonic() < deadline:
            time.sleep(0.2)  # the second stream's first segment is scored
        watcher.send_signal(signal.SIGTERM)
        stdout, _ = watcher.communicate(timeout=60)
    finally:
        watcher.kill()
    text = log.read_text()
    assert watcher.returncode == 0, text[-3000:]
    assert stdout.strip() == str(out / "summary.json")
    assert text.count("reconnecting in") >= 2 and "stream reconnected" in text and "SIGTERM" in text

    # The first stream: the same four segment scores as offline scoring of the same file.
    offline = tmp_path / "offline"
    score_videos(r3d_run, [live], offline, device="cpu")
    features, _ = read_video_features(offline / "features" / "live.h5")
    expected = score(load_models(r3d_run / "models.pt"), features)
    table = pd.read_csv(out / "scores.csv")
    first = table[table["first_frame"] < 64]
    assert first["first_frame"].tolist() == [0, 16, 32, 48]
    # The frames and clips are identical (bit for bit); the extractor ran on batches of 1 to 4
    # here, of 4 offline, which sums in another order (features differ by <= ~2e-7), and where a
    # feature lies that close to a float16 rounding boundary its stored value moves one float16
    # step (about 1 in 2000 features here): scores then differ in the 5th significant digit.
    for name in ("score", "d", "g"):
        np.testing.assert_allclose(first[name], expected[name], rtol=1e-4)
    # The second stream at 15 fps: segments of 16 frames last 16/15 s of stream time.
    second_rows = table[table["first_frame"] >= 64]
    assert len(second_rows) >= 1
    np.testing.assert_allclose(second_rows["stream_end_s"] - second_rows["stream_start_s"], 16 / 15, atol=2e-3)

    summary = json.loads((out / "summary.json").read_text())
    assert summary["stopped_by"] == "stop requested" and summary["reconnects"] >= 2
    # Every decoded frame is in a scored segment, a dropped one, or the incomplete segment a
    # lost stream left (its frames are counted as lost).
    accounted = 16 * (summary["scored_segments"] + summary["dropped_segments"] + summary["unscored_at_stop"])
    assert summary["frames"] == accounted + summary["lost_frames"] > 64
    opened, *rest = read_events(out)
    closed = rest[-1]
    assert (
        opened["start_frame"] == 0
        and closed["state"] == "closed"
        and closed["closed_by"] in ("stream lost", "stop requested")
    )
    with av.open(str(out / closed["clip"])) as clip:
        assert sum(1 for _ in clip.decode(video=0)) == closed["clip_frames"] > 0


@pytest.mark.slow
def test_memory_stays_flat_over_a_long_stream(tiny, tmp_path):
    """2000 frames at 320x240 streamed at 4x real time with clips on and one alert open the
    whole time: the watcher's RSS, sampled, does not grow after the warm-up."""
    frames = 2000
    long_video = write_ts(tmp_path / "long.ts", textured_frames(frames, (240, 320), seed=4), gop=25)
    port = free_udp_port()
    script = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "from gclvad.live.watcher import watch, WatchSettings; from gclvad.live.source import SourceSettings;"
        "from watch_support import tiny_extractor;"
        "s = WatchSettings(threshold=-1, clips=True, source=SourceSettings(read_timeout_s=2, give_up_after_s=1));"
        "print(watch(sys.argv[2], sys.argv[3], sys.argv[4], s, extractor=tiny_extractor())['frames'])"
    )
    url = f"udp://127.0.0.1:{port}"
    child = subprocess.Popen(
        [sys.executable, "-c", script, str(Path(__file__).parent), str(tiny["run"]), url, str(tmp_path / "out")],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    process = psutil.Process(child.pid)
    wait_until_listening(port)
    sender = start_sender(long_video, port, speed=4.0)
    samples = []
    while sender.poll() is None:
        samples.append(process.memory_info().rss)
        time.sleep(0.1)
    stdout, _ = child.communicate(timeout=60)
    assert child.returncode == 0 and int(stdout.strip().splitlines()[-1]) == frames
    rss = np.array(samples) / 2**20
    warm, rest = rss[: len(rss) // 4], rss[len(rss) // 4 :]
    assert rest.max() - warm.max() < 16, f"RSS grew from {warm.max():.0f} MiB to {rest.max():.0f} MiB"
    events = read_events(tmp_path / "out")
    assert events[-1]["clip_frames"] == frames  # one long event, its clip written as it went


# ---------------------------------------------------------------- many cameras, one network


class RecordingListener(WatchListener):
    """Every call, in order: (method, camera, value)."""

    def __init__(self):
        self.calls = []
        self.lock = threading.Lock()

    def _record(self, *call):
        with self.lock:
            self.calls.append((*call, time.time()))

    def camera_started(self, camera, info):
        self._record("camera_started", camera, info)

    def segment_scored(self, camera, row):
        self._record("segment_scored", camera, row)

    def event(self, camera, record):
        self._record("event", camera, record)

    def status(self, camera, status):
        self._record("status", camera, status)

    def camera_stopped(self, camera, summary):
        self._record("camera_stopped", camera, summary)

    def close(self):
        self._record("close", None, None)

    def of(self, method, camera=None):
        return [value for name, who, value, _ in self.calls if name == method and camera in (None, who)]


@pytest.fixture
def counted_builds(monkeypatch):
    """The run's extractor and scorer as `open_run` builds them, counted (the tiny extractor:
    the registry does not know it)."""
    import gclvad.scoring.run as run_module

    builds = {"extractor": 0, "scorer": 0}
    load_scorer = run_module.load_scorer

    def build_extractor(record, weights, device, precision=None):
        builds["extractor"] += 1
        return tiny_extractor()

    def counting_load_scorer(*args, **kwargs):
        builds["scorer"] += 1
        return load_scorer(*args, **kwargs)

    monkeypatch.setattr(run_module, "build_run_extractor", build_extractor)
    monkeypatch.setattr(run_module, "load_scorer", counting_load_scorer)
    return builds


def test_cameras_share_one_network_and_score_as_watching_each_alone(tiny, tmp_path, counted_builds):
    """Three cameras (two of the same file, with their own alert options) in one watch: one
    extractor and scorer built, segments of all cameras in shared batches, and every camera's
    scores bit for bit those of a watch of its file alone; each its own folder and events."""
    yard = write_ts(tmp_path / "yard.ts", textured_frames(96, SIZE, seed=7))
    settings = WatchSettings(threshold=1.0, hold_s=1.0, batch_size=4)
    cameras = [
        Camera("gate", str(tiny["live"])),
        Camera("yard", str(yard)),
        Camera("Lane-2", str(tiny["live"]), dataclasses.replace(settings, threshold=1e9, smooth_segments=3)),
    ]
    listener = RecordingListener()
    summary = watch(tiny["run"], cameras, tmp_path / "all", settings, listeners=listener)
    assert counted_builds == {"extractor": 1, "scorer": 1}

    for name, source, own in (("gate", tiny["live"], settings), ("yard", yard, settings)):
        alone = tmp_path / f"alone-{name}"
        watch(tiny["run"], str(source), alone, own, extractor=tiny_extractor())
        together = pd.read_csv(tmp_path / "all" / name / "scores.csv", dtype=str)
        expected = pd.read_csv(alone / "scores.csv", dtype=str)  # the 9 significant digits as written
        columns = ["segment", "first_frame", "last_frame", "stream_start_s", "score", "d", "g", "alert"]
        pd.testing.assert_frame_equal(together[columns], expected[columns])
        assert [
            {k: v for k, v in e.items() if not k.endswith("_at") and k != "start_arrival"}
            for e in read_events(tmp_path / "all" / name)
        ] == [
            {k: v for k, v in e.items() if not k.endswith("_at") and k != "start_arrival"} for e in read_events(alone)
        ]
    lane = pd.read_csv(tmp_path / "all" / "Lane-2" / "scores.csv")
    gate = pd.read_csv(tmp_path / "all" / "gate" / "scores.csv")
    assert lane["score"].tolist() == gate["score"].tolist()  # the same file, scored in other batches
    assert lane["alert"].eq(0).all() and "smoothed" in lane and "smoothed" not in gate  # its own options
    assert read_events(tmp_path / "all" / "Lane-2") == [] and len(read_events(tmp_path / "all" / "gate")) == 2

    assert set(summary["cameras"]) == {"gate", "yard", "Lane-2"}
    assert json.loads((tmp_path / "all" / "summary.json").read_text()) == summary
    for name, camera in summary["cameras"].items():
        assert camera == json.loads((tmp_path / "all" / name / "summary.json").read_text())
        assert camera["stopped_by"] == "end of file" and camera["camera"] == name
    assert [summary["cameras"][n]["scored_segments"] for n in ("gate", "yard", "Lane-2")] == [10, 6, 10]

    # The listeners heard it all: starts, every row, every events.jsonl line, the ends, close last.
    assert [who for name, who, *_ in listener.calls if name == "camera_started"] == ["gate", "yard", "Lane-2"]
    info = listener.of("camera_started", "yard")[0]
    assert info["source"] == str(yard) and info["out_dir"] == str(tmp_path / "all" / "yard")
    assert info["threshold"]["value"] == 1.0 and info["segment_length"] == SEGMENT
    for name in ("gate", "yard", "Lane-2"):
        rows = listener.of("segment_scored", name)
        table = pd.read_csv(tmp_path / "all" / name / "scores.csv")
        assert [row["score"] for row in rows] == pytest.approx(table["score"].tolist(), rel=1e-8)
        assert [row["alert"] for row in rows] == table["alert"].tolist()
        assert listener.of("event", name) == read_events(tmp_path / "all" / name)
        assert listener.of("camera_stopped", name) == [summary["cameras"][name]]
    assert listener.calls[-1][0] == "close" and len(listener.of("close")) == 1


class FakeCamera:
    """A camera of queued segment numbers, for the batcher alone."""

    def __init__(self, name: str, queued: int):
        self.name, self.queue = name, [f"{name}{i}" for i in range(queued)]

    def take(self):
        return self.queue.pop(0) if self.queue else None


def test_batches_take_cameras_in_turn_so_a_busy_one_starves_no_other():
    from gclvad.live.watcher import Watcher

    busy, slow, idle = FakeCamera("busy", 20), FakeCamera("slow", 2), FakeCamera("idle", 0)
    batcher = Watcher.__new__(Watcher)  # the batcher alone, without a run
    batcher.active, batcher.batch_size, batcher._turn = [busy, slow, idle], 4, 0
    batches = [[segment for _, segment in batcher._gather()] for _ in range(4)]
    assert batches == [
        ["busy0", "slow0", "busy1", "slow1"],  # one a camera in turn: the slow one's both go first
        ["busy2", "busy3", "busy4", "busy5"],
        ["busy6", "busy7", "busy8", "busy9"],
        ["busy10", "busy11", "busy12", "busy13"],
    ]
    assert batcher._turn == 1  # each batch starts one camera further
    slow.queue, idle.queue = ["slow2"], ["idle0"]
    assert [segment for _, segment in batcher._gather()] == ["slow2", "idle0", "busy14", "busy15"]


def test_one_cameras_lost_stream_never_stalls_the_others(tiny, tmp_path):
    """Two UDP cameras; one's sender is killed: that camera gives up and ends alone while the
    other is still scored, until its own stream ends. Status about once a second per camera."""
    ports = {"north": free_udp_port(), "south": free_udp_port()}
    videos = {
        "north": write_ts(tmp_path / "north.ts", textured_frames(250, SIZE, seed=1)),
        "south": write_ts(tmp_path / "south.ts", textured_frames(300, SIZE, seed=2)),
    }
    source = SourceSettings(open_timeout_s=1.0, read_timeout_s=1.0, give_up_after_s=1.0, max_backoff_s=0.5)
    settings = WatchSettings(threshold=1e9, source=source)
    cameras = [Camera(name, f"udp://127.0.0.1:{port}") for name, port in ports.items()]
    listener, result = RecordingListener(), {}

    def run_watch():
        result["summary"] = watch(
            tiny["run"], cameras, tmp_path / "out", settings, extractor=tiny_extractor(), listeners=listener
        )

    watching = threading.Thread(target=run_watch)
    watching.start()
    senders = []
    try:
        for name, port in ports.items():
            wait_until_listening(port)
            senders.append(start_sender(videos[name], port))
        time.sleep(3.0)
        senders[0].kill()  # north, mid-stream (its 250 frames take 10 s)
        senders[0].wait()
        assert senders[1].wait(timeout=60) == 0
        watching.join(timeout=60)
    finally:
        for sender in senders:
            sender.kill()
    assert not watching.is_alive()
    cameras_summary = result["summary"]["cameras"]
    north, south = cameras_summary["north"], cameras_summary["south"]
    assert north["stopped_by"] == south["stopped_by"] == "gave up"
    stopped = {who: when for name, who, _, when in listener.calls if name == "camera_stopped"}
    assert stopped["north"] < stopped["south"] - 5  # north ended alone, south went on
    south_rows = pd.read_csv(tmp_path / "out" / "south" / "scores.csv")
    assert (south_rows["unix_time"] > stopped["north"]).sum() >= 5  # still scored after north ended
    assert len(south_rows) == south["scored_segments"] >= 300 // SEGMENT - 1 - south["dropped_segments"]
    assert 2 <= north["scored_segments"] < 250 // SEGMENT
    for name in ports:
        statuses = listener.of("status", name)
        seconds = cameras_summary[name]["seconds"]
        assert seconds / 2 <= len(statuses) <= seconds + 2  # about once a second
        assert {
            "frames",
            "fps_in",
            "scored_segments",
            "dropped_segments",
            "reconnects",
            "latency_s",
            "alerting",
        } <= set(statuses[-1])
    from gclvad.cli.watch import exit_status

    assert exit_status(result["summary"]) == 3


def write_camera_file(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_a_camera_files_sinks_are_read_and_a_bad_one_is_refused_before_watching(tiny, tmp_path, capsys):
    text = f"cameras:\n  - {{name: gate, source: {tiny['live']}}}\nsinks:\n  - {{webhook: 'ftp://127.0.0.1/x'}}\n"
    cameras = write_camera_file(tmp_path / "cameras.yaml", text)
    assert camera_file_sinks(cameras) == [{"webhook": "ftp://127.0.0.1/x"}]
    out = tmp_path / "out"
    assert main(["watch", str(tiny["run"]), "--cameras", str(cameras), "-o", str(out)]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"gclvad: error: {cameras}: ") and "expected an http:// or https:// URL" in error
    assert not out.exists()


@pytest.mark.parametrize(
    ("entries", "problem"),
    [
        ("- {name: gate, source: A}\n  - {name: Gate, source: B}", r"camera 2 is named 'Gate' like an earlier one"),
        ("- {name: gate}", r"camera 1 \('gate'\): no 'source' given"),
        ("- {name: gate, source: A, hold_s: 3}", r"camera 1 \('gate'\): unknown option 'hold_s'; a camera takes"),
        ("- {name: ../up, source: A}", r"camera 1 has the name '../up'; a camera name is its output folder"),
        ("- {name: a b, source: A}", r"camera 1 has the name 'a b'"),
        ("- {name: gate, source: A, hold: soon}", r"camera 1 \('gate'\): 'hold' must be a number, got 'soon'"),
        ("- {name: gate, source: A, quantile: 0.9, threshold: 2}", r"give 'quantile' or 'threshold', not both"),
        ("[]", r"the camera list is empty"),
    ],
)
def test_bad_camera_files_are_refused_before_watching(tiny, tmp_path, capsys, entries, problem):
    cameras = write_camera_file(tmp_path / "cameras.yaml", f"cameras:\n  {entries}\n".replace("A", str(tiny["live"])))
    out = tmp_path / "out"
    assert main(["watch", str(tiny["run"]), "--cameras", str(cameras), "-o", str(out)]) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith(f"gclvad: error: {cameras}") and re.search(problem, error), error
    assert not out.exists()


def test_camera_file_options_override_the_command_line(tiny, tmp_path, capsys):
    text = f"""cameras:
  - name: gate
    source: {tiny["live"]}
    hold: 3
    quantile: 0.9
    input_options: {{fifo_size: 100000}}
    give_up_after: 60
  - name: yard
    source: {tiny["live"]}
"""
    defaults = WatchSettings(threshold=2.0, hold_s=1.0, source=SourceSettings(read_timeout_s=4.0))
    gate, yard = read_camera_file(write_camera_file(tmp_path / "cameras.yaml", text), defaults)
    assert (gate.name, gate.settings.hold_s, gate.settings.quantile, gate.settings.threshold) == (
        "gate",
        3.0,
        0.9,
        None,
    )
    assert gate.settings.source == SourceSettings(
        read_timeout_s=4.0, options={"fifo_size": "100000"}, give_up_after_s=60.0
    )
    assert yard.settings == defaults
    assert main(["watch", str(tiny["run"]), str(tiny["live"]), "--cameras", str(tmp_path / "cameras.yaml")]) == 2
    assert "give sources or --cameras FILE, not both" in capsys.readouterr().err
