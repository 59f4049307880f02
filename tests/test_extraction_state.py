"""Whether a video still needs extracting, decided from the files alone (also in the DAG process)."""

from __future__ import annotations

import os
import time

import numpy as np

from gclvad.extract.state import (
    BAD,
    DONE,
    TODO,
    Expected,
    bad_marker_path,
    stale_temporaries,
    video_state,
    write_bad_marker,
)
from gclvad.features.files import write_video_features

ATTRS = {"extractor": "i3d", "precision": "fp32", "segment_length": 16, "weights_random": False}


def feature_file(path, rows=3, dtype="float16", **attrs):
    write_video_features(path, np.ones((rows, 4), np.float32), {**ATTRS, "frames": 48, **attrs}, dtype)
    return path


def later(path, seconds=5):
    stamp = time.time() + seconds
    os.utime(path, (stamp, stamp))


def test_a_current_file_is_done_and_each_difference_says_why_not(tmp_path):
    source = tmp_path / "v.mp4"
    source.write_bytes(b"video")
    path = feature_file(tmp_path / "v.h5")
    expected = Expected(ATTRS, "float16", segments=3)
    assert video_state(path, source, expected).state == DONE
    cases = {
        "precision is 'fp32', expected 'bf16'": Expected({**ATTRS, "precision": "bf16"}, "float16", 3),
        "features stored as float16, expected float32": Expected(ATTRS, "float32", 3),
        "3 segments, the segment index says 4": Expected(ATTRS, "float16", 4),
        "no attribute 'weights_sha256'": Expected({**ATTRS, "weights_sha256": "ab12"}, "float16", 3),
        "weights_random is False, expected True": Expected({**ATTRS, "weights_random": True}, "float16", 3),
    }
    for reason, other in cases.items():
        state = video_state(path, source, other)
        assert state.state == TODO and state.reason.endswith(reason), state


def test_a_file_older_than_its_source_or_weights_is_not_current(tmp_path):
    source, weights = tmp_path / "v.mp4", tmp_path / "w.pth"
    source.write_bytes(b"video")
    weights.write_bytes(b"weights")
    path = feature_file(tmp_path / "v.h5")
    expected = Expected(ATTRS, "float16", newer_than=(weights,))
    assert video_state(path, source, expected).state == DONE
    later(weights)
    assert video_state(path, source, expected).reason.endswith(f"older than {weights}")
    later(path, 10)
    later(source, 20)
    assert video_state(path, source, expected).reason.endswith(f"older than {source}")


def test_frame_folder_source_counts_its_newest_frame(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    (folder / "1.png").write_bytes(b"png")
    path = feature_file(tmp_path / "frames.h5")
    later(path)
    assert video_state(path, folder, Expected(ATTRS, "float16")).state == DONE
    later(folder / "1.png", 10)
    assert video_state(path, folder, Expected(ATTRS, "float16")).state == TODO


def test_unreadable_and_nan_files_are_not_current(tmp_path):
    source = tmp_path / "v.mp4"
    source.write_bytes(b"video")
    path = tmp_path / "v.h5"
    path.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 40)  # an HDF5 signature, nothing after it
    later(path)
    assert "unreadable" in video_state(path, source, Expected(ATTRS, "float16")).reason
    feature_file(path)
    import h5py

    with h5py.File(path, "r+") as handle:  # written behind the writer's back
        handle["features"][0, 0] = np.nan
    later(path, 10)
    assert video_state(path, source, Expected(ATTRS, "float16")).state == DONE  # the DAG reads no values
    assert video_state(path, source, Expected(ATTRS, "float16", read_all=True)).reason.endswith("NaN or inf")


def test_bad_marker_stands_until_the_source_changes(tmp_path):
    source = tmp_path / "v.mp4"
    source.write_bytes(b"broken")
    path = tmp_path / "v.h5"
    write_bad_marker(path, source, "is not a video")
    later(bad_marker_path(path))
    state = video_state(path, source, Expected(ATTRS, "float16"))
    assert (state.state, state.reason) == (BAD, "is not a video")
    later(source, 10)  # replaced: try again
    assert video_state(path, source, Expected(ATTRS, "float16")).state == TODO


def test_stale_temporaries_are_those_of_the_file_and_its_marker(tmp_path):
    leftovers = [tmp_path / ".v.h5.abc123.tmp", tmp_path / ".v.bad.json.x.tmp"]
    for leftover in [*leftovers, tmp_path / ".w.h5.abc.tmp"]:
        leftover.write_bytes(b"")
    assert stale_temporaries(tmp_path / "v.h5") == sorted(leftovers)


def test_a_marker_newer_than_a_stale_feature_file_stands(tmp_path):
    source = tmp_path / "v.mp4"
    source.write_bytes(b"good video")
    path = feature_file(tmp_path / "v.h5")
    later(source, 5)  # replaced by a broken copy after extraction
    write_bad_marker(path, source, "is not a video")
    later(bad_marker_path(path), 10)
    assert video_state(path, source, Expected(ATTRS, "float16")).state == BAD


def test_crops_and_windows_must_be_those_expected(tmp_path):
    source = tmp_path / "v.mp4"
    source.write_bytes(b"video")
    later(source, -10)
    three = tmp_path / "three.h5"
    write_video_features(three, np.ones((3, 3, 4), np.float32), {**ATTRS, "frames": 48, "segment_stride": 8}, "float16")
    assert video_state(three, source, Expected({**ATTRS, "segment_stride": 8}, "float16", 3, crops=3)).state == DONE
    cases = {
        "no 2-D 'features' dataset": Expected({**ATTRS, "segment_stride": 8}, "float16", 3),
        "3 crops a segment, expected 10": Expected({**ATTRS, "segment_stride": 8}, "float16", 3, crops=10),
        "attribute 'segment_stride' is 8, expected none": Expected(
            {**ATTRS, "segment_stride": None}, "float16", 3, crops=3
        ),
    }
    for reason, other in cases.items():
        state = video_state(three, source, other)
        assert state.state == TODO and state.reason.endswith(reason), state
    plain = feature_file(tmp_path / "plain.h5")
    assert video_state(plain, source, Expected({**ATTRS, "segment_stride": None}, "float16", 3)).state == DONE
    state = video_state(plain, source, Expected(ATTRS, "float16", 3, crops=3))
    assert state.state == TODO and state.reason.endswith("no 3-D 'features' dataset")
