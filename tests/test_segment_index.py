"""The segment index: probing a mixed set of videos, bad-video policy, annotation checks, TSV."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from videos import make_empty_file, make_text_file, make_video, truncate_copy

from gclvad.datasets.base import FrameMask, Intervals, Video
from gclvad.datasets.segment_index import (
    COLUMNS,
    build_segment_index,
    read_segment_index,
    usable_videos,
    write_segment_index,
)
from gclvad.errors import BadDatasetError, GclvadError


@pytest.fixture
def mixed_videos(tmp_path) -> list[Video]:
    good = make_video(tmp_path / "good.mkv", 40)
    truncated = truncate_copy(make_video(tmp_path / "whole.mkv", 100), tmp_path / "cut.mkv", 0.5)
    annotations = tmp_path / "annotations.csv"
    mask_file = tmp_path / "mask.npy"
    np.save(mask_file, np.zeros(39, dtype=np.uint8))  # one entry short of the 40 frames
    return [
        Video("good", good, "test", 1, Intervals(((10, 20),), annotations)),
        Video("cut", truncated, "train", 0),
        Video("empty", make_empty_file(tmp_path / "empty.mp4"), "train", 0),
        Video("text", make_text_file(tmp_path / "notes.mp4"), "train", 0),
        Video("short", make_video(tmp_path / "short.mkv", 10), "train", 0),
        Video("outside", good, "test", 1, Intervals(((30, 50),), annotations)),
        Video("mask", good, "test", 1, FrameMask(mask_file)),
        Video("unsplit", good, None, None),
    ]


BAD_IDS = ["empty", "text", "short", "outside", "mask"]


def test_stop_lists_every_bad_video_at_once(mixed_videos):
    with pytest.raises(GclvadError) as caught:
        build_segment_index(mixed_videos, 16, on_bad_video="stop")
    message = str(caught.value)
    lines = message.splitlines()
    assert lines[0] == "5 of 8 videos cannot be used:"
    for video in mixed_videos:
        listed = [line for line in lines if f"(video {video.id})" in line]
        if video.id in BAD_IDS:
            assert len(listed) == 1 and str(video.source) in listed[0]
        else:
            assert not listed
    assert "`on_bad_video: skip`" in lines[-1]
    assert "empty file (0 bytes)" in message and "has 10 frames, fewer than one segment of 16" in message
    assert "interval [30, 50) lies outside the video's 40 frames" in message
    assert "frame mask has 39 entries but the video has 40 frames" in message


def test_skip_records_bad_videos(mixed_videos):
    index = build_segment_index(mixed_videos, 16, on_bad_video="skip")
    assert list(index.columns) == COLUMNS
    by_id = index.set_index("video")
    assert by_id.loc[BAD_IDS, "status"].tolist() == ["bad"] * 5
    assert by_id.loc["outside", "reason"].endswith("interval [30, 50) lies outside the video's 40 frames")
    assert str(mixed_videos[0].annotation.source) in by_id.loc["outside", "reason"]
    assert by_id.loc["short", ["frames", "segments", "width"]].tolist() == [10, 0, 32]
    assert by_id.loc["empty", ["frames", "segments", "width"]].tolist() == [0, 0, 0]
    good = by_id.loc["good"]
    assert (good.frames, good.fps, good.width, good.height) == (40, 25.0, 32, 24)
    assert (good.segments, good.padded_tail, good.status, good.reason) == (3, 8, "ok", "")
    cut = by_id.loc["cut"]
    assert cut.status == "truncated" and f"stopped at frame {cut.frames}" in cut.reason
    assert cut.segments == -(-cut.frames // 16)
    assert usable_videos(index) == ["good", "cut", "unsplit"]


def test_segment_length_changes_counts(mixed_videos):
    index = build_segment_index(mixed_videos[:1], 12)
    assert index.loc[0, ["segments", "padded_tail"]].tolist() == [4, 8]


def test_tsv_round_trip(mixed_videos, tmp_path):
    index = build_segment_index(mixed_videos, 16, on_bad_video="skip")
    path = tmp_path / "out" / "segments.tsv"
    write_segment_index(index, path)
    assert [p.name for p in path.parent.iterdir()] == ["segments.tsv"]  # no temp file left
    again = read_segment_index(path)
    pd.testing.assert_frame_equal(again, index)
    assert pd.isna(again.loc[again["video"] == "unsplit", "split"].item())


def test_reading_a_file_without_the_columns(tmp_path):
    path = tmp_path / "segments.tsv"
    path.write_text("video\tframes\nx\t3\n")
    with pytest.raises(BadDatasetError, match="segment index lacks columns source, split"):
        read_segment_index(path)


def test_unknown_policy_and_duplicate_ids(mixed_videos):
    with pytest.raises(GclvadError, match="on_bad_video must be one of stop, skip; got 'ignore'"):
        build_segment_index(mixed_videos, 16, on_bad_video="ignore")
    twice = [mixed_videos[0], Video("good", mixed_videos[1].source, listed_at="videos.csv line 3")]
    duplicate = f"listed more than once.*\n  good: {mixed_videos[0].source}, videos.csv line 3"
    with pytest.raises(GclvadError, match=duplicate):
        build_segment_index(twice, 16, on_bad_video="skip")


# ---------------------------------------------------------------- MPEG-TS cut inside its last frame

TS_PACKET = 188


def transport_stream(path, frames: int, keep_of_last: int | None = None, size=(64, 96)):
    """An MPEG-4 video in MPEG-TS, muxed packet by packet. keep_of_last: the last frame's
    packet keeps only its first bytes, as when a recorder is killed just after starting to
    write that frame: the file still ends on a transport-packet boundary."""
    from fractions import Fraction

    import av

    encoder = av.CodecContext.create("mpeg4", "w")
    encoder.width, encoder.height, encoder.pix_fmt = size[1], size[0], "yuv420p"
    encoder.time_base, encoder.framerate = Fraction(1, 25), 25
    packets = []
    for i in range(frames):
        frame = av.VideoFrame.from_ndarray(np.random.default_rng(i).integers(0, 256, (*size, 3), np.uint8), "rgb24")
        frame.pts = i
        packets += encoder.encode(frame)
    packets += encoder.encode(None)
    with av.open(str(path), "w", format="mpegts") as container:
        stream = container.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = size[1], size[0], "yuv420p"
        for n, packet in enumerate(packets):
            if keep_of_last is not None and n == len(packets) - 1:
                cut = av.Packet(bytes(packet)[:keep_of_last])
                cut.pts, cut.dts, cut.time_base = packet.pts, packet.dts, packet.time_base
                packet = cut
            packet.stream = stream
            container.mux(packet)
    return path


def test_a_transport_stream_whose_last_frame_decodes_to_nothing_is_truncated(tmp_path):
    """Only the first 8 bytes of frame 29 made it into the file: its packet is demuxed but
    decodes to no picture, and neither the byte count (whole 188-byte packets) nor the
    container (MPEG-TS declares no length) shows the cut."""
    cut = transport_stream(tmp_path / "cut.ts", 30, keep_of_last=8)
    assert cut.stat().st_size % TS_PACKET == 0
    index = build_segment_index([Video("cut", cut)], segment_length=16)
    row = index.iloc[0]
    assert (row.status, row.frames, row.segments) == ("truncated", 29, 2)
    assert row.reason == (
        "decoding stopped at frame 29: the data of the last 1 of the file's 30 frames decoded to no picture "
        "(file cut short inside a frame)"
    )


def test_an_intact_transport_stream_is_ok(tmp_path):
    whole = transport_stream(tmp_path / "whole.ts", 30)
    row = build_segment_index([Video("whole", whole)], segment_length=16).iloc[0]
    assert (row.status, row.frames, row.reason) == ("ok", 30, "")
