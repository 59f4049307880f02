"""Bad input never becomes a silent wrong result (issue 11): damaged MPEG-TS files, every bad
video of a manifest reported at once, unsafe video ids, and what a failed job prints.

Non-finite numbers and model files: tests/test_non_finite.py. File writes: tests/test_atomic_writes.py.
"""

from __future__ import annotations

import logging
from pathlib import Path

import av
import numpy as np
import pytest
from videos import make_text_file, make_video

from gclvad.datasets.readers import load_dataset
from gclvad.datasets.segment_index import build_segment_index
from gclvad.decode.video import iter_frames, probe_video
from gclvad.errors import BadDatasetError, GclvadError

TS_PACKET = 188


# ---------------------------------------------------------------- item 2: MPEG-TS without a length


def noise_video(path: Path, frames: int = 30, size=(64, 96)) -> Path:
    """MPEG-4 video of noise frames (container by suffix): several kB a frame, so that a cut
    or damage can fall inside one."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=25)
        stream.height, stream.width, stream.pix_fmt = *size, "yuv420p"
        stream.codec_context.thread_count = 1
        for i in range(frames):
            pixels = np.random.default_rng(i).integers(0, 256, (*size, 3), dtype=np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")))
        container.mux(stream.encode(None))
    return path


def frame_offsets(path: Path) -> list[int]:
    """Byte offset in the file where each frame's data starts (its first transport packet)."""
    with av.open(str(path)) as container:
        return [packet.pos for packet in container.demux(video=0) if packet.size]


@pytest.fixture(scope="module")
def clean_ts(tmp_path_factory) -> Path:
    return noise_video(tmp_path_factory.mktemp("ts") / "clean.ts")


def written(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_a_clean_transport_stream_is_ok(clean_ts):
    info = probe_video(clean_ts)
    assert (info.frames, info.status, info.reason) == (30, "ok", "")
    assert clean_ts.stat().st_size % TS_PACKET == 0


def test_a_transport_stream_cut_inside_a_frame_is_truncated(clean_ts, tmp_path):
    """Cut on a packet boundary halfway through frame 12: only the decoder sees the damage."""
    offsets, data = frame_offsets(clean_ts), clean_ts.read_bytes()
    cut = offsets[12] + (offsets[13] - offsets[12]) // 2 // TS_PACKET * TS_PACKET
    assert cut % TS_PACKET == 0 and offsets[12] < cut < offsets[13]
    cut_file = written(tmp_path / "cut.ts", data[:cut])
    info = probe_video(cut_file)
    assert (info.frames, info.status) == (12, "truncated")
    assert (
        info.reason
        == "decoding stopped at frame 12: the decoder found the last frame damaged (data missing: file cut short?)"
    )
    assert len(list(iter_frames(cut_file))) == 12  # the frames probing counts are the frames extraction sees


def test_a_transport_stream_cut_inside_a_packet_is_truncated(clean_ts, tmp_path):
    """A download cut at any byte: the file ends part-way into a 188-byte packet."""
    offsets, data = frame_offsets(clean_ts), clean_ts.read_bytes()
    info = probe_video(written(tmp_path / "cut.ts", data[: offsets[20] + 77]))
    assert info.status == "truncated" and info.frames == 20
    assert "decoding stopped at frame 20" in info.reason


def test_a_transport_stream_damaged_in_the_middle_is_truncated_at_the_damage(clean_ts, tmp_path):
    """Zeroed packets inside frame 15: the frames after it would be misnumbered, so decoding
    stops there; the frames before the damage are kept."""
    offsets, data = frame_offsets(clean_ts), clean_ts.read_bytes()
    start = offsets[15] + 2 * TS_PACKET
    damaged = written(tmp_path / "damaged.ts", data[:start] + bytes(5 * TS_PACKET) + data[start + 5 * TS_PACKET :])
    info = probe_video(damaged)
    assert info.status == "truncated" and 13 <= info.frames <= 15
    assert info.reason == (
        f"decoding stopped at frame {info.frames}: the container marks a packet corrupt (damaged or missing data)"
    )
    assert len(list(iter_frames(damaged))) == info.frames


def test_a_frame_concealed_in_the_middle_keeps_the_video_whole(tmp_path):
    """Garbage inside frame 20 of an .mp4: the decoder conceals it (flagging that frame), and
    clean frames follow, so every frame keeps its number: not a reason to drop the rest."""
    whole = noise_video(tmp_path / "whole.mp4", 40)
    with av.open(str(whole)) as container:
        position, size = [(p.pos, p.size) for p in container.demux(video=0) if p.size][20]
    data = bytearray(whole.read_bytes())
    data[position + size // 3 : position + size // 3 + 64] = (
        np.random.default_rng(1).integers(0, 256, 64, np.uint8).tobytes()
    )
    damaged = written(tmp_path / "damaged.mp4", bytes(data))
    with av.open(str(damaged)) as container:
        assert [i for i, frame in enumerate(container.decode(video=0)) if frame.is_corrupt] == [20]
    info = probe_video(damaged)
    assert (info.frames, info.status) == (40, "ok")


# ---------------------------------------------------------------- items 3-4: every problem at once


@pytest.fixture
def mixed_manifest(tmp_path) -> dict:
    """Two good videos, a missing file, a text file named .mp4, and a duplicated id."""
    make_video(tmp_path / "a.mkv", 40)
    make_video(tmp_path / "c.mkv", 40)
    make_text_file(tmp_path / "t.mp4")
    (tmp_path / "videos.csv").write_text("video,path\na,a.mkv\nb,b.mkv\nc,c.mkv\nt,t.mp4\nc,a.mkv\n")
    return {"format": "generic", "manifest": str(tmp_path / "videos.csv")}


def test_stop_lists_duplicates_with_their_lines_and_every_bad_video_at_once(mixed_manifest):
    manifest = mixed_manifest["manifest"]
    with pytest.raises(GclvadError) as caught:
        build_segment_index(load_dataset(mixed_manifest), 16, on_bad_video="stop")
    message = str(caught.value)
    assert f"\n  c: {manifest} line 4, {manifest} line 6\n" in message
    assert "2 of 5 videos cannot be used:" in message
    assert f"b.mkv (video b, {manifest} line 3): not found: the manifest gives 'b.mkv'" in message
    assert f"t.mp4 (video t, {manifest} line 5): is not a video FFmpeg can open" in message


def test_skip_skips_a_missing_file_like_any_bad_video(mixed_manifest, tmp_path):
    (tmp_path / "videos.csv").write_text("video,path\na,a.mkv\nb,b.mkv\nt,t.mp4\n")
    index = build_segment_index(load_dataset(mixed_manifest), 16, on_bad_video="skip").set_index("video")
    assert index["status"].tolist() == ["ok", "bad", "bad"]
    assert index.loc["b", "reason"].startswith("not found: the manifest gives 'b.mkv'")
    assert index.loc["b", "source"] == str(tmp_path / "b.mkv")


def test_duplicates_stop_even_with_skip(mixed_manifest):
    with pytest.raises(GclvadError, match=r"listed more than once.*skip. does not skip these.*\n  c: ") as caught:
        build_segment_index(load_dataset(mixed_manifest), 16, on_bad_video="skip")
    assert "Besides, 2 of 5 videos cannot be used (`on_bad_video: skip` will skip them)" in str(caught.value)


def test_the_console_names_each_skipped_video_and_why(tmp_path, caplog):
    from gclvad.stages.preparation import index_dataset

    make_video(tmp_path / "a.mkv", 40)
    make_video(tmp_path / "short.mkv", 5)
    missing = "".join(f"m{i:02d},m{i:02d}.mp4\n" for i in range(11))
    (tmp_path / "videos.csv").write_text("video,path\na,a.mkv\nshort,short.mkv\n" + missing)
    with caplog.at_level(logging.INFO, logger="gclvad"):
        index_dataset(
            spec={"format": "generic", "manifest": str(tmp_path / "videos.csv")},
            segment_length=16,
            on_bad_video="skip",
            out_path=tmp_path / "segments.tsv",
        )
    lines = caplog.text.splitlines()
    assert any(line.endswith("13 videos indexed, 1 usable") for line in lines)
    assert "12 skipped (on_bad_video: skip):" in lines
    assert f"  short ({tmp_path / 'short.mkv'}): has 5 frames, fewer than one segment of 16" in lines
    assert (
        f"  m00 ({tmp_path / 'm00.mp4'}): not found: the manifest gives 'm00.mp4' "
        "(relative paths are read from its folder)" in lines
    )
    assert sum(line.startswith("  m") for line in lines) == 9  # 10 lines shown in all, then the count
    assert "  ... and 2 more (status bad in the segment index)" in lines


# ---------------------------------------------------------------- item 6: safe video ids


@pytest.mark.parametrize("video_id", ["sub/a", "../../../../tmp/x", ".hidden", "a b", "a;b", "é"])
def test_generic_reader_refuses_unsafe_ids_naming_the_line(tmp_path, video_id):
    make_video(tmp_path / "a.mkv", 20)
    (tmp_path / "videos.csv").write_text(f"video,path\nok,a.mkv\n{video_id},a.mkv\n")
    with pytest.raises(BadDatasetError, match=f"line 3: video id {video_id!r} is not allowed") as caught:
        load_dataset({"format": "generic", "manifest": str(tmp_path / "videos.csv")})
    assert caught.value.path == tmp_path / "videos.csv"
    assert "letters, digits, '_', '-' and '.' only, not starting with '.'" in str(caught.value)


def test_every_unsafe_id_of_a_manifest_is_listed_at_once(tmp_path):
    make_video(tmp_path / "a.mkv", 20)
    (tmp_path / "videos.csv").write_text("video,path\na/b,a.mkv\nok,a.mkv\n.x,a.mkv\n")
    with pytest.raises(BadDatasetError, match=r"2 problems:\n  line 2: video id 'a/b'.*\n  line 4: video id '.x'"):
        load_dataset({"format": "generic", "manifest": str(tmp_path / "videos.csv")})


def test_an_unsafe_id_hides_neither_duplicates_nor_missing_files(tmp_path):
    """The manifest is refused for its unsafe id; the same error names what else is wrong
    with it, so that one fix-and-rerun round is enough."""
    make_video(tmp_path / "a.mkv", 20)
    (tmp_path / "videos.csv").write_text("video,path\nbad id,a.mkv\ntwin,a.mkv\ntwin,a.mkv\ngone,gone.mp4\n")
    with pytest.raises(BadDatasetError) as caught:
        load_dataset({"format": "generic", "manifest": str(tmp_path / "videos.csv")})
    assert caught.value.path == tmp_path / "videos.csv"
    assert caught.value.problem.splitlines() == [
        "3 problems:",
        "  line 2: video id 'bad id' is not allowed: ids name result files, so they hold letters, digits, "
        "'_', '-' and '.' only, not starting with '.'",
        "  line 5: not found: the manifest gives 'gone.mp4' (relative paths are read from its folder)",
        "  lines 3, 4: video id 'twin' is listed more than once (ids name result files)",
    ]


def test_ucf_crime_and_shanghaitech_lists_refuse_unsafe_ids(tmp_path):
    from gclvad.datasets.shanghaitech import read_id_list
    from gclvad.datasets.ucf_crime import read_video_list

    ucf = tmp_path / "Anomaly_Train.txt"
    ucf.write_text("Abuse/Abuse001_x264.mp4\nAbuse/.Abuse002_x264.mp4\nAbuse/Ab use003.mp4\n")
    with pytest.raises(
        BadDatasetError, match=r"2 problems:\n  line 2: video id '.Abuse002_x264'.*\n  line 3: video id 'Ab use003'"
    ):
        read_video_list(ucf)
    stech = tmp_path / "SH_Train.txt"
    stech.write_text("01_001\n../01_002\n")
    with pytest.raises(BadDatasetError, match=r"line 2: video id '../01_002' is not allowed"):
        read_id_list(stech)


def test_published_ids_fit_unchanged(tmp_path):
    """UCF-Crime ids are the file stems, ShanghaiTech's the listed ids, as published."""
    from gclvad.datasets.shanghaitech import read_id_list
    from gclvad.datasets.ucf_crime import read_video_list

    ucf = tmp_path / "Anomaly_Test.txt"
    ucf.write_text("Abuse/Abuse028_x264.mp4\r\nTesting_Normal_Videos_Anomaly/Normal_Videos_003_x264.mp4\r\n")
    assert read_video_list(ucf) == ["Abuse028_x264", "Normal_Videos_003_x264"]
    stech = tmp_path / "SH_Test.txt"
    stech.write_text("01_0014\n12_0175")
    assert read_id_list(stech) == ["01_0014", "12_0175"]


# ---------------------------------------------------------------- item 5: a failed job's log


def test_job_log_writes_a_user_error_once_without_traceback(tmp_path, capsys):
    from gclvad.logs import job_log

    log = tmp_path / "job.log"
    with pytest.raises(SystemExit) as exited, job_log(log):
        raise BadDatasetError("videos.csv", "line 3: split must be 'train', 'test' or empty, found 'tset'")
    assert exited.value.code == 1
    text = log.read_text()
    assert text.count("line 3: split must be") == 1 and "Traceback" not in text
    assert "ERROR gclvad: job failed: videos.csv: line 3: split must be" in text
    assert "split must be" not in capsys.readouterr().err  # Snakemake prints the failed job's log


def test_job_log_keeps_the_traceback_of_a_bug(tmp_path, capsys):
    from gclvad.logs import job_log

    log = tmp_path / "job.log"
    with pytest.raises(SystemExit), job_log(log):
        {}["missing key"]
    text = log.read_text()
    assert "job failed with an unexpected error" in text and "Traceback" in text and "KeyError: 'missing key'" in text
    assert "Traceback" not in capsys.readouterr().err
