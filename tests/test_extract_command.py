"""`gclvad extract`: per-video feature files outside the workflow, resumable, exit 2 on bad input."""

from __future__ import annotations

import numpy as np
import pytest
from videos import make_frame_folder, make_h264, make_text_file

from gclvad.cli.main import main
from gclvad.extract.networks.registry import build_extractor
from gclvad.extract.one_video import extract_video
from gclvad.features.files import read_video_features


@pytest.fixture
def inputs(tmp_path):
    """A video file, a frame folder, and a folder holding one video and one frame folder."""
    street = make_h264(tmp_path / "street.mp4", 20, (32, 48), pattern="ramp")
    frames = make_frame_folder(tmp_path / "lobby", 16, (32, 48), pattern="ramp")
    more = tmp_path / "more"
    make_h264(more / "gate.mp4", 16, (32, 48), pattern="ramp")
    make_frame_folder(more / "hall", 16, (32, 48), pattern="ramp")
    (more / "notes.txt").write_text("not a video, and not named like one: ignored\n")
    return [street, frames, more]


def run(args, capsys):
    code = main(["extract", *map(str, args)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_extracts_one_file_per_video_and_keeps_them_on_a_second_run(inputs, tmp_path, capsys):
    out = tmp_path / "features"
    args = [*inputs, "-o", out, "--extractor", "r3d_18", "--weights", "random", "--decoders", "2", "--dtype", "float32"]
    code, printed, _ = run(args, capsys)
    assert code == 0 and printed.strip() == f"4 written, 0 kept, 0 bad -> {out}"
    assert sorted(p.name for p in out.iterdir()) == ["gate.h5", "hall.h5", "lobby.h5", "street.h5"]
    features, attrs = read_video_features(out / "street.h5")
    assert features.shape == (2, 512) and attrs["frames"] == 20 and attrs["padded_tail"] == 12
    assert attrs["source"] == str(inputs[0].absolute()) and attrs["extractor"] == "r3d_18"
    # The same numbers as extracting the video on its own; the precision `auto` chose is recorded.
    extractor = build_extractor("r3d_18", "random", "cpu", "auto")
    assert attrs["precision"] == extractor.precision
    extract_video(extractor, inputs[0], tmp_path / "alone.h5", batch_size=4, dtype="float32")
    assert np.array_equal(features, read_video_features(tmp_path / "alone.h5")[0])
    stamps = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    code, printed, _ = run(args, capsys)
    assert code == 0 and printed.strip() == f"0 written, 4 kept, 0 bad -> {out}"
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == stamps


@pytest.mark.parametrize(
    "case, expected",
    [
        ("missing", "missing.mp4: not found: expected a video file or a folder of frame images"),
        ("text", "notes.mp4: is not a video FFmpeg can open"),
        ("empty_folder", "empty: is neither a frame folder (images) nor a folder of videos"),
        ("unknown_extractor", "unknown extractor 'r4d': known extractors are resnext101, i3d"),
        ("no_weights", "extractor 'r3d_18' needs --weights"),
        ("clash", "videos must have distinct names"),
    ],
)
def test_bad_input_exits_2_with_a_message(tmp_path, capsys, case, expected):
    video = make_h264(tmp_path / "a" / "street.mp4", 16, (32, 48))
    arguments = {
        "missing": [tmp_path / "missing.mp4", "--weights", "random"],
        "text": [make_text_file(tmp_path / "notes.mp4"), "--weights", "random"],
        "empty_folder": [tmp_path / "empty", "--weights", "random"],
        "unknown_extractor": [video, "--weights", "random"],
        "no_weights": [video],
        "clash": [video, make_h264(tmp_path / "b" / "street.mp4", 16, (32, 48)), "--weights", "random"],
    }[case]
    (tmp_path / "empty").mkdir()
    extractor = "r4d" if case == "unknown_extractor" else "r3d_18"
    code, _, err = run([*arguments, "-o", tmp_path / "out", "--extractor", extractor], capsys)
    # the message is the last thing said (a warning about random weights may come before it)
    assert code == 2 and err.strip().splitlines()[-1].startswith("gclvad: error: ") and expected in err, err
    assert not list((tmp_path / "out").glob("*.h5")) if (tmp_path / "out").exists() else True


def test_skip_mode_extracts_the_good_videos(tmp_path, capsys):
    good = make_h264(tmp_path / "good.mp4", 16, (32, 48))
    bad = make_text_file(tmp_path / "notes.mp4")
    code, printed, _err = run(
        [good, bad, "-o", tmp_path / "out", "--extractor", "r3d_18", "--weights", "random", "--on-bad-video", "skip"],
        capsys,
    )
    assert code == 0 and printed.strip().startswith("1 written, 0 kept, 1 bad")
    assert (tmp_path / "out" / "good.h5").is_file() and (tmp_path / "out" / "notes.bad.json").is_file()
