"""Shard extraction: many videos, decoder processes, cross-video batches, per-video files that
equal extract_video's bit for bit, resume after SIGKILL, bad videos, bounded queues."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import h5py
import numpy as np
import psutil
import pytest
import torch
from shard_child import SMALL, jobs_for, small_resnext
from videos import make_h264, make_text_file

from gclvad.decode.video import iter_segments
from gclvad.errors import BadVideoError, GclvadError
from gclvad.extract.decoders import DecoderPool, DecodeTask, Failed, Finished, Segment
from gclvad.extract.networks.base import RandomWeightsWarning
from gclvad.extract.networks.resnext import build_resnext101
from gclvad.extract.one_video import extract_video
from gclvad.extract.shards import (
    VideoJob,
    _stage,
    decoder_count,
    expected_file,
    extract_shard,
    gather_batches,
)
from gclvad.extract.state import BAD, TODO, bad_marker_path, video_state
from gclvad.features.files import read_video_features

CHILD = Path(__file__).with_name("shard_child.py")
# Frames of the test videos: 2, 3, 4, 1, 3 segments of 16 (tails of 4, 8, 9, 0, 1 frames).
LENGTHS = (20, 40, 57, 16, 33)


@pytest.fixture(scope="module")
def extractor():
    return small_resnext()


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("videos")
    return [make_h264(folder / f"v{i}.mp4", n, (64, 80), pattern="ramp") for i, n in enumerate(LENGTHS)]


class CountingExtractor:
    """The extractor, recording the size of every forward pass."""

    def __init__(self, extractor):
        self.inner, self.batches = extractor, []

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def extract(self, clips):
        self.batches.append(len(clips))
        return self.inner.extract(clips)


def run_shard(extractor, videos, out_dir, decoders=2, batch_size=3, **options):
    with DecoderPool(decoders, max_queued=2 * batch_size) as pool:
        return extract_shard(
            extractor, jobs_for(videos, out_dir), pool, batch_size=batch_size, dtype="float32", **options
        )


def test_features_and_attributes_equal_extract_video_bit_for_bit(extractor, videos, tmp_path):
    counting = CountingExtractor(extractor)
    report = run_shard(counting, videos, tmp_path / "shard")
    assert sorted(report.written) == [v.stem for v in videos] and report.clips == 13
    # 13 clips in 5 passes of exactly 3: batches mixed videos (one video at a time takes 6).
    assert counting.batches == [3] * 5
    one_at_a_time = CountingExtractor(extractor)
    for video in videos:
        extract_video(one_at_a_time, video, tmp_path / "one" / f"{video.stem}.h5", batch_size=3, dtype="float32")
        got, got_attrs = read_video_features(tmp_path / "shard" / f"{video.stem}.h5")
        expected, expected_attrs = read_video_features(tmp_path / "one" / f"{video.stem}.h5")
        assert got.tobytes() == expected.tobytes(), video
        assert got_attrs == expected_attrs
        assert got_attrs["precision"] == "fp32" and got_attrs["frames"] == LENGTHS[int(video.stem[1])]
        # Against all of a video's clips in one unpadded pass: equal up to the rounding that
        # the batch size changes in oneDNN's kernels (see gclvad.extract.one_video).
        clips = torch.stack([s.clip for s in iter_segments(video, extractor.preprocessing, 16)])
        np.testing.assert_allclose(got, extractor.extract(clips).numpy(), rtol=1e-4, atol=1e-5)
    assert one_at_a_time.batches == [3] * 6  # extract_video fills its last batch up too


def test_bf16_features_equal_extract_video_bit_for_bit(videos, tmp_path):
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RandomWeightsWarning)
        bf16 = build_resnext101("random", "cpu", "bf16", **SMALL)
    run_shard(bf16, videos[:3], tmp_path / "shard", decoders=1, batch_size=4)
    for video in videos[:3]:
        extract_video(bf16, video, tmp_path / "one" / f"{video.stem}.h5", batch_size=4, dtype="float32")
        got, attrs = read_video_features(tmp_path / "shard" / f"{video.stem}.h5")
        assert attrs["precision"] == "bf16"
        assert got.tobytes() == read_video_features(tmp_path / "one" / f"{video.stem}.h5")[0].tobytes()


def test_rerun_keeps_current_files_and_redoes_exactly_the_stale_ones(extractor, videos, tmp_path):
    out = tmp_path / "out"
    run_shard(extractor, videos, out)
    stamps = {p.name: p.stat().st_mtime_ns for p in out.glob("*.h5")}
    again = run_shard(extractor, videos, out)
    assert again.written == [] and sorted(again.kept) == sorted(v.stem for v in videos) and again.clips == 0
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.h5")} == stamps
    # v0: its source is newer; v1: the file is cut short; v2: stored as float16 (the job stores float32).
    future = time.time() + 5
    os.utime(videos[0], (future, future))
    cut = out / "v1.h5"
    cut.write_bytes(cut.read_bytes()[:800])
    v2 = read_video_features(out / "v2.h5")
    from gclvad.features.files import write_video_features

    write_video_features(out / "v2.h5", v2[0], v2[1], dtype="float16")
    try:
        redone = run_shard(extractor, videos, out)
    finally:
        os.utime(videos[0], None)
    assert sorted(redone.written) == ["v0", "v1", "v2"] and sorted(redone.kept) == ["v3", "v4"]
    assert redone.clips == 2 + 3 + 4


def test_a_kept_file_must_have_the_expected_segments_and_attributes(extractor, videos, tmp_path):
    out = tmp_path / "out"
    run_shard(extractor, videos[:1], out, decoders=1)
    job = VideoJob("v0", videos[0], out / "v0.h5", segments=2)
    assert video_state(job.out_path, job.source, expected_file(extractor, job, 16, "float32", None)).state == "done"
    wrong_count = VideoJob("v0", videos[0], out / "v0.h5", segments=3)
    state = video_state(out / "v0.h5", videos[0], expected_file(extractor, wrong_count, 16, "float32", None))
    assert state.state == TODO and "2 segments, the segment index says 3" in state.reason
    other_source = VideoJob("v0", videos[0], out / "v0.h5", extra_attrs={"source": "/elsewhere/v0.mp4"})
    state = video_state(out / "v0.h5", videos[0], expected_file(extractor, other_source, 16, "float32", None))
    assert state.state == TODO and "no attribute 'source'" in state.reason
    state = video_state(out / "v0.h5", videos[0], expected_file(extractor, job, 8, "float32", None))
    assert state.state == TODO and "segment_length is 16, expected 8" in state.reason


def test_bad_video_is_skipped_inside_the_shard_and_remembered(extractor, videos, tmp_path):
    broken = make_text_file(tmp_path / "notes.mp4")
    out = tmp_path / "out"
    report = run_shard(extractor, [videos[0], broken, videos[1]], out, on_bad_video="skip")
    assert sorted(report.written) == ["v0", "v1"] and list(report.bad) == ["notes"]
    assert "is not a video FFmpeg can open" in report.bad["notes"]
    assert not (out / "notes.h5").exists() and bad_marker_path(out / "notes.h5").is_file()
    assert report.manifest(jobs_for([videos[0], broken, videos[1]], out))["bad"] == report.bad
    # Known bad: not decoded again while the source is unchanged.
    again = run_shard(extractor, [videos[0], broken, videos[1]], out, on_bad_video="skip")
    assert again.bad == report.bad and again.clips == 0
    assert video_state(out / "notes.h5", broken, expected_file(extractor, jobs_for([broken], out)[0], 16, "float32",
                                                               None)).state == BAD  # fmt: skip


def test_bad_video_stops_the_shard_in_stop_mode_keeping_finished_files(extractor, videos, tmp_path):
    broken = make_text_file(tmp_path / "notes.mp4")
    out = tmp_path / "out"
    with pytest.raises(
        BadVideoError, match=r"notes\.mp4: is not a video FFmpeg can open.*on_bad_video: skip.*--on-bad-video skip"
    ):
        run_shard(extractor, [videos[0], broken, videos[1]], out, decoders=1, batch_size=1)
    assert (out / "v0.h5").is_file()  # done before the bad video was reached, and complete
    assert read_video_features(out / "v0.h5")[0].shape == (2, extractor.dim)
    assert not bad_marker_path(out / "notes.h5").exists()


def start_child(out: Path, mode: str, videos, batch_size=2, decoders=2) -> tuple[subprocess.Popen, list[int]]:
    process = subprocess.Popen(
        [sys.executable, str(CHILD), str(out), str(batch_size), str(decoders), mode, *map(str, videos)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    return process, json.loads(process.stdout.readline())


def wait_until(condition, what: str, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, f"the shard ended (rc {process.returncode}) before {what}"
        assert time.monotonic() < deadline, f"no {what} after {timeout} s"
        time.sleep(0.01)


def file_contents(folder: Path) -> dict[str, object]:
    """Every file of a folder (hidden ones included) -> its features and attributes."""
    contents = {}
    for path in sorted(folder.iterdir()):
        if path.suffix == ".h5" and not path.name.startswith("."):
            with h5py.File(path, "r") as source:
                contents[path.name] = (source["features"][()].tobytes(), dict(source.attrs))
        else:
            contents[path.name] = path.read_bytes()
    return contents


def assert_decoders_gone(pids: list[int]) -> None:
    deadline = time.monotonic() + 10
    while any(psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE for pid in pids):
        assert time.monotonic() < deadline, f"decoder processes {pids} outlived their killed shard"
        time.sleep(0.05)


def test_killed_shard_resumes_to_exactly_the_files_of_an_uninterrupted_run(tmp_path):
    many = [make_h264(tmp_path / "videos" / f"w{i}.mp4", 24 + 8 * i, (32, 48), pattern="ramp") for i in range(8)]
    killed, uninterrupted = tmp_path / "killed", tmp_path / "uninterrupted"
    process, decoders = start_child(killed, "slow", many)
    wait_until(lambda: len(list(killed.glob("*.h5"))) >= 3, "three feature files", process)
    process.send_signal(signal.SIGKILL)  # the shard's main process only: its decoders must follow
    process.wait()
    assert_decoders_gone(decoders)
    finished = {p.name: p.stat().st_mtime_ns for p in killed.glob("*.h5")}
    assert 3 <= len(finished) < len(many)
    rerun, _ = start_child(killed, "plain", many)
    assert rerun.wait(120) == 0
    plain, _ = start_child(uninterrupted, "plain", many)
    assert plain.wait(120) == 0
    assert file_contents(killed) == file_contents(uninterrupted)
    assert len(file_contents(killed)) == len(many)  # no temporary file left
    for name, mtime in finished.items():  # finished files were kept, not redone
        assert (killed / name).stat().st_mtime_ns == mtime


def test_kill_during_the_hdf5_write_leaves_no_file_that_is_read(videos, tmp_path):
    out = tmp_path / "out"
    process, decoders = start_child(out, "hang-in-write", videos[:1], decoders=1)
    wait_until(lambda: (out / "writing").exists(), "write in progress", process)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert_decoders_gone(decoders)
    (out / "writing").unlink()
    assert not (out / "v0.h5").exists()
    (partial,) = out.glob(".v0.h5.*.tmp")  # the HDF5 file half written, under its temporary name
    job = jobs_for(videos[:1], out)[0]
    assert video_state(job.out_path, job.source, expected_file(small_resnext(), job, 16, "float32", None)).state == TODO
    rerun, _ = start_child(out, "plain", videos[:1], decoders=1)
    assert rerun.wait(120) == 0
    assert not partial.exists() and sorted(p.name for p in out.iterdir()) == ["v0.h5"]
    # the reference from a process of its own too: fp32 results depend on torch's thread count,
    # which other tests in this process may have changed
    uninterrupted, _ = start_child(tmp_path / "ref", "plain", videos[:1], decoders=1)
    assert uninterrupted.wait(120) == 0
    assert file_contents(out) == file_contents(tmp_path / "ref")


def test_decoders_wait_when_the_queue_is_full(tmp_path, extractor):
    long_video = make_h264(tmp_path / "long.mp4", 16 * 12, (32, 48), pattern="ramp")
    with DecoderPool(1, max_queued=3) as pool:
        messages = pool.decode([DecodeTask(0, long_video, extractor.preprocessing, 16)])
        first = next(messages)
        time.sleep(1.5)  # the decoder could have made all 12 segments by now
        assert isinstance(first, Segment) and pool._results.qsize() <= 3
        rest = list(messages)
    assert [m.index for m in rest if isinstance(m, Segment)] == list(range(1, 12))
    assert isinstance(rest[-1], Finished) and rest[-1].segments == 12 and rest[-1].frames == 192


def test_a_decoder_that_dies_is_reported_with_its_video(tmp_path, extractor):
    long_video = make_h264(tmp_path / "long.mp4", 16 * 12, (32, 48), pattern="ramp")
    with DecoderPool(1, max_queued=1) as pool:
        messages = pool.decode([DecodeTask(0, long_video, extractor.preprocessing, 16)])
        next(messages)
        os.kill(pool._processes[0].pid, signal.SIGKILL)
        with pytest.raises(GclvadError, match=r"ended unexpectedly \(exit code -9\) while decoding .*long\.mp4"):
            list(messages)


def test_batches_hold_exactly_batch_size_clips_and_carry_the_events_received_meanwhile():
    clip = torch.arange(6.0).reshape(1, 1, 2, 3)
    messages = [Segment(0, 0, clip), Segment(0, 1, clip + 1), Finished(0, 2, 32, 0, 25.0),
                Segment(1, 0, clip + 2), Failed(2, "x: broken", True), Segment(1, 1, clip + 3),
                Finished(1, 2, 30, 2, 25.0)]  # fmt: skip
    batches = list(gather_batches(messages, batch_size=3))
    assert [b.owners for b in batches] == [[(0, 0, 0), (0, 1, 0), (1, 0, 0)], [(1, 1, 0)]]  # (task, segment, crop)
    assert [[type(e).__name__ for e in b.events] for b in batches] == [["Finished"], ["Failed", "Finished"]]
    assert batches[0].clips.shape == (3, 1, 1, 2, 3)
    # The short last batch is filled up with copies of its last clip.
    assert torch.equal(batches[1].clips, torch.stack([clip + 3] * 3))
    assert next(iter(gather_batches([Finished(0, 1, 16, 0, 0.0)], 2))).clips is None


def test_staging_pins_memory_only_for_a_gpu():
    clips = [torch.randn(3, 4, 5, 5) for _ in range(2)]
    staged = _stage(clips, 3, pin_memory=False)
    assert torch.equal(staged, torch.stack(clips + clips[-1:])) and not staged.is_pinned()
    if torch.cuda.is_available():  # the GPU path: page-locked, same values
        pinned = _stage(clips, 3, pin_memory=True)
        assert pinned.is_pinned() and torch.equal(pinned, staged)


def test_progress_is_one_line_with_videos_rate_and_eta(extractor, videos, tmp_path, capsys):
    run_shard(extractor, videos, tmp_path / "out", progress=True)
    last = capsys.readouterr().err.replace("\r", "\n").strip().splitlines()[-1]
    assert last.startswith("extract resnext101: 100%") and "5/5" in last and "clips/s" in last
    assert "<00:00" in last  # tqdm's elapsed<remaining


def test_decoder_count():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert decoder_count("auto", cpu, 16) == 1 and decoder_count("auto", cuda, 16) == 16
    assert decoder_count(3, cpu, 2) == 3
    with pytest.raises(GclvadError, match="decoders must be 'auto' or at least 1"):
        decoder_count(0, cpu, 2)


def test_without_a_terminal_progress_goes_to_the_log_as_lines(extractor, videos, tmp_path, caplog):
    with caplog.at_level("INFO", logger="gclvad.extract.shards"):
        run_shard(extractor, videos[:2], tmp_path / "out")
    meters = [r.getMessage() for r in caplog.records if r.getMessage().startswith("extract resnext101:")]
    assert meters and "2/2" in meters[-1] and "clips/s" in meters[-1] and "\r" not in meters[-1]
