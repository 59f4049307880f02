"""Live scoring (`gclvad watch`, gclvad.live.watcher / alerts / stream / clips / live_segments).

Runs are trained inside the tests with the package's pipeline functions (`train_stage`, as
the workflow's rules call it) on features of generated videos: a tiny random 3-D convolution
for the tests that need many segments fast, torchvision's r3d_18 (random weights, built by
the registry exactly as `gclvad score` builds it) where watch's scores are compared with
`gclvad score`'s. Streams are real: MPEG-TS sent over UDP to 127.0.0.1 by a sender process
(tests/stream_sender.py) that a test can kill.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
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
from gclvad.live.source import SourceSettings, _Clock
from gclvad.live.threshold import CALIBRATION_FILE, run_threshold
from gclvad.live.watcher import WatchSettings, watch
from gclvad.scoring.footage import score_videos
from gclvad.scoring.quantiles import QUANTILE_LEVELS, QUANTILES_KEY
from gclvad.scoring.scorer import load_scorer

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

    default = run_threshold(run / "models.pt", {QUANTILES_KEY: recorded})
    assert default.value == recorded["quantiles"]["0.99"] and "quantile 0.99" in default.origin
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
    calibrated = run_threshold(old / "models.pt", metadata)
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
    # the default alert threshold: the 0.99 quantile of what the run delivers for its training
    # segments (the mean of each segment's three crop scores), not of the crops one by one
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
