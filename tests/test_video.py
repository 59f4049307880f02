"""Decoding into frames and segments: counts, boundaries, padding, pixel values, bad input."""

from __future__ import annotations

import json

import av
import numpy as np
import pytest
import torch
from videos import (
    frame_pixels,
    grey_level,
    index_colour,
    make_frame_folder,
    make_h264,
    make_video,
)

from gclvad.decode.preprocessing import Preprocessing
from gclvad.decode.video import iter_frames, iter_segments, probe_video
from gclvad.decode.windows import padded_tail, segment_count
from gclvad.errors import BadVideoError, GclvadError

NATIVE = Preprocessing(size=(24, 32), crop=(24, 32))  # no resize, no crop: pixels pass unchanged


def expected_clip(frame_indices: list[int], size=(24, 32)) -> torch.Tensor:
    """What NATIVE.normalize gives for frames of the "index" pattern, computed independently."""
    colours = torch.tensor([index_colour(i) for i in frame_indices], dtype=torch.float32)  # (T, 3)
    return colours.T[:, :, None, None].expand(3, len(frame_indices), *size)


def test_segment_helpers():
    assert [segment_count(n, 16) for n in (16, 17, 32, 40, 1)] == [1, 2, 2, 3, 1]
    assert [padded_tail(n, 16) for n in (16, 17, 32, 40, 1)] == [0, 15, 0, 8, 15]


def test_probe_counts_frames_by_decoding(lossless_video):
    info = probe_video(lossless_video)
    assert (info.frames, info.fps, info.width, info.height) == (40, 25.0, 32, 24)
    assert (info.status, info.reason) == ("ok", "")


def frames_of(*args):
    """iter_frames' numpy frames as tensors, for torch comparisons."""
    return [torch.from_numpy(frame) for frame in iter_frames(*args)]


def test_frames_are_exact_for_a_lossless_video(lossless_video):
    first = next(iter_frames(lossless_video))
    assert isinstance(first, np.ndarray) and first.dtype == np.uint8  # numpy: decoding needs no torch
    frames = frames_of(lossless_video)
    assert len(frames) == 40
    for i in (0, 7, 39):
        assert frames[i].dtype == torch.uint8 and frames[i].shape == (24, 32, 3)
        assert torch.equal(frames[i], torch.from_numpy(frame_pixels(i, (24, 32))))


def test_segment_boundaries_and_padded_tail(lossless_video):
    segments = list(iter_segments(lossless_video, NATIVE, segment_length=16))
    assert [(s.first_frame, s.real_frames) for s in segments] == [(0, 16), (16, 16), (32, 8)]
    assert all(s.clip.dtype == torch.float32 and s.clip.shape == (3, 16, 24, 32) for s in segments)
    assert torch.equal(segments[1].clip, expected_clip(list(range(16, 32))))
    # The last 8 real frames are 32..39; the 8 padding frames repeat frame 39 exactly.
    assert torch.equal(segments[2].clip, expected_clip(list(range(32, 40)) + [39] * 8))


def test_segment_length_other_than_16(lossless_video):
    segments = list(iter_segments(lossless_video, NATIVE, segment_length=12))
    assert [(s.first_frame, s.real_frames) for s in segments] == [(0, 12), (12, 12), (24, 12), (36, 4)]


def test_normalized_values_after_resize_and_crop(lossless_video):
    mean, std = (0.43, 0.39, 0.37), (0.23, 0.22, 0.24)
    prep = Preprocessing(size=12, crop=10, scale=1 / 255, mean=mean, std=std)
    segment = next(iter_segments(lossless_video, prep, segment_length=16))
    assert segment.clip.shape == (3, 16, 10, 10)
    # Flat frames stay flat through bilinear resizing, so each value is exact.
    for t in (0, 5, 15):
        for c in range(3):
            want = (index_colour(t)[c] / 255 - mean[c]) / std[c]
            assert torch.allclose(segment.clip[c, t], torch.full((10, 10), want), atol=1e-5)


@pytest.mark.parametrize(
    "size, prep_size, resized",
    [((24, 32), 12, (12, 16)), ((32, 24), 12, (16, 12)), ((24, 32), (10, 20), (10, 20))],
)
def test_resize_keeps_aspect_with_shorter_side(tmp_path, size, prep_size, resized):
    video = make_video(tmp_path / "v.mkv", 3, size, pattern="ramp")
    frames = frames_of(video, Preprocessing(size=prep_size, crop=8))
    assert [tuple(f.shape) for f in frames] == [(*resized, 3)] * 3


def test_resize_is_bilinear_like_torchvision(tmp_path):
    video = make_video(tmp_path / "ramp.mkv", 1, (48, 64), pattern="ramp")
    frame = frames_of(video, Preprocessing(size=24, crop=24))[0]
    source = torch.from_numpy(frame_pixels(0, (48, 64), "ramp")).permute(2, 0, 1)[None].float()
    reference = torch.nn.functional.interpolate(source, size=(24, 32), mode="bilinear", antialias=True)
    difference = (frame.permute(2, 0, 1).float() - reference[0]).abs()
    assert difference.mean() < 1.5 and difference.max() <= 6


def test_frame_folder_gives_the_same_frames_as_a_video(tmp_path):
    prep = Preprocessing(size=12, crop=12)
    folder = make_frame_folder(tmp_path / "frames", 20, (24, 32), pattern="ramp")
    video = make_video(tmp_path / "same.mkv", 20, (24, 32), pattern="ramp")
    from_folder, from_video = frames_of(folder, prep), frames_of(video, prep)
    assert len(from_folder) == len(from_video) == 20
    # 1.png, 2.png, ..., 20.png in natural order: 10.png is frame 9, not frame 1.
    assert all(torch.equal(a, b) for a, b in zip(from_folder, from_video, strict=True))
    info = probe_video(folder)
    assert (info.frames, info.width, info.height, info.fps, info.status) == (20, 32, 24, 0.0, "ok")


def test_jpeg_folder_decodes_to_rgb(tmp_path):
    folder = make_frame_folder(tmp_path / "jpg", 4, (16, 16), pattern="index", ext="jpg")
    frames = frames_of(folder)
    for i, frame in enumerate(frames):
        got = frame.float().mean(dim=(0, 1))
        assert torch.allclose(got, torch.tensor(index_colour(i), dtype=torch.float32), atol=4)


def test_grayscale_video_gives_three_equal_channels(tmp_path):
    video = make_video(tmp_path / "grey.mkv", 5, (21, 33), pix_fmt="gray")
    frames = frames_of(video)
    for i, frame in enumerate(frames):
        assert frame.shape == (21, 33, 3)
        assert torch.all(frame == index_colour(i)[0])  # lossless grey: channels equal and exact


def test_odd_size_lossy_video(tmp_path):
    video = make_video(tmp_path / "odd.avi", 20, (241, 321), pattern="ramp", codec="mpeg4", pix_fmt="yuv420p")
    info = probe_video(video)
    assert (info.frames, info.width, info.height) == (20, 321, 241)
    segments = list(iter_segments(video, Preprocessing(size=112, crop=112), segment_length=16))
    assert [(s.first_frame, s.real_frames, tuple(s.clip.shape)) for s in segments] == [
        (0, 16, (3, 16, 112, 112)),
        (16, 4, (3, 16, 112, 112)),
    ]
    frame = frames_of(video, Preprocessing(size=112, crop=112))[0]
    assert frame.shape == (112, 149, 3)  # 321 * 112 / 241 = 149.2


def test_h264_video_frames_in_order(tmp_path):
    video = make_h264(tmp_path / "h264.mp4", 30, (32, 48), pattern="grey")
    assert probe_video(video).frames == 30
    levels = [frame.float().mean().item() for frame in frames_of(video)]
    assert np.allclose(levels, [grey_level(i) for i in range(30)], atol=3)


@pytest.mark.parametrize(
    "case, problem",
    [
        ("missing", "does not exist"),
        ("zero_bytes", "empty file (0 bytes)"),
        ("text", "not a video"),
        ("empty_folder", "without images"),
        ("unreadable_image", "image 2.png (frame 1) cannot be decoded"),
    ],
)
def test_bad_sources_raise_with_path_and_problem(bad_videos, case, problem):
    path = bad_videos[case]
    for read in (probe_video, lambda p: frames_of(p), lambda p: list(iter_segments(p, NATIVE))):
        with pytest.raises(BadVideoError) as caught:
            read(path)
        assert str(path) in str(caught.value) and problem in str(caught.value)
        assert caught.value.path == path


def test_audio_only_file_has_no_video_stream(tmp_path):
    path = tmp_path / "sound.wav"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("pcm_s16le", rate=8000, layout="mono")
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
        frame.sample_rate = 8000
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    with pytest.raises(BadVideoError, match="has no video stream \\(streams found: audio\\)"):
        probe_video(path)


def test_video_shorter_than_a_segment(tmp_path):
    video = make_video(tmp_path / "short.mkv", 10)
    assert probe_video(video).frames == 10  # probing alone accepts it
    with pytest.raises(BadVideoError, match="has 10 frames, fewer than one segment of 16"):
        list(iter_segments(video, NATIVE))


def test_truncated_video_keeps_the_frames_before_the_cut(truncated_video):
    info = probe_video(truncated_video)
    assert info.status == "truncated"
    assert 10 < info.frames < 100
    assert f"stopped at frame {info.frames}" in info.reason and "100" in info.reason
    frames = frames_of(truncated_video)
    assert len(frames) == info.frames
    for i in (0, info.frames - 1):
        assert torch.equal(frames[i], torch.from_numpy(frame_pixels(i, (24, 32))))


def test_frames_are_streamed(tmp_path):
    """The first frame arrives before the rest are decoded: a cut file yields before it fails."""
    folder = make_frame_folder(tmp_path / "frames", 3)
    (folder / "3.png").write_bytes(b"broken")
    frames = iter_frames(folder)
    assert np.array_equal(next(frames), frame_pixels(0, (24, 32)))
    next(frames)
    with pytest.raises(BadVideoError, match=r"3.png"):
        next(frames)


@pytest.mark.parametrize(
    ("frames", "stride", "starts", "tail"),
    [(40, 8, [0, 8, 16, 24], 0), (33, 8, [0, 8, 16, 24], 7), (40, 5, [0, 5, 10, 15, 20, 25], 1)],
)
def test_overlapping_windows_cover_every_frame_and_pad_the_last(tmp_path, frames, stride, starts, tail):
    video = make_video(tmp_path / "v.mkv", frames, (24, 32))
    segments = list(iter_segments(video, NATIVE, segment_length=16, stride=stride))
    assert [s.first_frame for s in segments] == starts
    assert segment_count(frames, 16, stride) == len(starts) and padded_tail(frames, 16, stride) == tail
    assert segments[-1].first_frame + 16 - tail == frames  # the last window reaches the last frame
    for segment in segments:  # window k holds frames first_frame .. first_frame + 15
        real = min(16, frames - segment.first_frame)
        assert segment.real_frames == real
        indices = list(range(segment.first_frame, segment.first_frame + real)) + [frames - 1] * (16 - real)
        assert torch.equal(segment.clip, expected_clip(indices))
    with pytest.raises(GclvadError, match="segment_stride must be between 1 and segment_length"):
        next(iter_segments(video, NATIVE, segment_length=16, stride=17))


@pytest.mark.parametrize(
    ("frames", "step", "stride", "starts", "reals"),
    [
        (40, 2, None, [0, 32], [32, 8]),  # a full span, then a tail of 8 frames (4 taken)
        (31, 2, None, [0], [31]),  # 16 frames taken, but the span's last frame is missing
        (64, 3, None, [0, 48], [48, 16]),
        (50, 2, 8, [0, 16, 32], [32, 32, 18]),  # overlapping windows of sampled frames
    ],
)
def test_frame_step_takes_every_kth_frame_and_counts_frames_of_the_video(tmp_path, frames, step, stride, starts, reals):
    video = make_video(tmp_path / "v.mkv", frames, (24, 32))
    segments = list(iter_segments(video, NATIVE, segment_length=16, stride=stride, frame_step=step))
    assert [s.first_frame for s in segments] == starts
    assert [s.real_frames for s in segments] == reals
    assert segment_count(frames, 16, stride, step) == len(starts)
    span = 16 * step
    assert padded_tail(frames, 16, stride, step) == starts[-1] + span - frames
    assert segments[-1].first_frame + segments[-1].real_frames == frames  # what extraction records
    for segment in segments:  # frames first_frame, +step, ... while in the video; then the last taken one
        taken = list(range(segment.first_frame, min(segment.first_frame + span, frames), step))
        assert torch.equal(segment.clip, expected_clip(taken + [taken[-1]] * (16 - len(taken))))


def test_frame_step_needs_sixteen_taken_frames(tmp_path):
    video = make_video(tmp_path / "v.mkv", 30, (24, 32))  # frames 0, 2, ..., 28: 15 taken
    with pytest.raises(BadVideoError, match="has 30 frames, fewer than one segment of 16 frames taken every 2"):
        list(iter_segments(video, NATIVE, frame_step=2))
    with pytest.raises(GclvadError, match="frame_step must be a whole number of at least 1"):
        list(iter_segments(video, NATIVE, frame_step=0))


def test_crop_modes_cut_the_crops_they_name():
    prep = Preprocessing(size=224, crop=224)
    assert prep.with_crops("three").crop_boxes(224, 298) == [(0, 0, False), (0, 37, False), (0, 74, False)]
    assert prep.with_crops("three").crop_boxes(298, 224) == [(0, 0, False), (37, 0, False), (74, 0, False)]
    ten = prep.with_crops("ten")
    assert ten.size == 256 and ten.resized_shape(240, 320) == (256, 341)
    boxes = ten.crop_boxes(256, 341)
    assert boxes[:5] == [(0, 0, False), (0, 117, False), (32, 0, False), (32, 117, False), (16, 58, False)]
    assert [b[:2] for b in boxes[5:]] == [b[:2] for b in boxes[:5]] and all(b[2] for b in boxes[5:])
    frames = np.random.default_rng(0).integers(0, 256, (2, 256, 341, 3), dtype=np.uint8)
    clips = ten.normalize(frames)
    assert clips.shape == (10, 3, 2, 224, 224)
    assert torch.equal(clips[5], clips[0].flip(-1))  # the flipped top-left corner
    # the default describes itself as before (features made earlier keep their description)
    assert "crops" not in json.loads(prep.describe()) and json.loads(ten.describe())["crops"] == "ten"


def test_tiles_are_a_grid_of_native_size_tiles_of_the_frame_upscaled_twice():
    tiles = Preprocessing(size=224, crop=224).with_crops("tiles")
    assert tiles.size == 448 and tiles.resized_shape(240, 320) == (448, 597)
    boxes = tiles.crop_boxes(448, 597)  # 2 rows x 3 columns, row by row, the last ones at the edges
    assert [b[:2] for b in boxes] == [(0, 0), (0, 186), (0, 373), (224, 0), (224, 186), (224, 373)]
    assert [b[:2] for b in tiles.crop_boxes(597, 448)] == [(0, 0), (0, 224), (186, 0), (186, 224), (373, 0), (373, 224)]
    covered = np.zeros((448, 597), bool)
    for top, left, _ in boxes:
        covered[top : top + 224, left : left + 224] = True
    assert covered.all()  # a 4:3 frame is covered completely
    small = Preprocessing(size=8, crop=8).with_crops("tiles")
    frames = np.random.default_rng(0).integers(0, 256, (2, 16, 21, 3), dtype=np.uint8)
    clips = small.normalize(frames)
    assert clips.shape == (6, 3, 2, 8, 8)
    torch.testing.assert_close(clips[5], torch.from_numpy(frames[:, 8:16, 13:21]).permute(3, 0, 1, 2).float())
    assert json.loads(tiles.describe())["crops"] == "tiles"


def _window_changes(frames: np.ndarray, crop: int) -> np.ndarray:
    """Every crop-sized window's summed absolute grey change between consecutive frames, by loops."""
    grey = frames.astype(np.int64).sum(axis=3)
    change = np.abs(np.diff(grey, axis=0)).sum(axis=0)
    rows, columns = change.shape[0] - crop + 1, change.shape[1] - crop + 1
    return np.array([[change[i : i + crop, j : j + crop].sum() for j in range(columns)] for i in range(rows)])


def test_the_motion_crop_is_centred_on_what_moves_and_stays_in_the_centre_when_nothing_does():
    motion = Preprocessing(size=12, crop=12).with_crops("motion")
    assert motion.size == 24 and motion.resized_shape(24, 32) == (24, 32)
    rng = np.random.default_rng(1)
    still = np.repeat(rng.integers(0, 256, (1, 24, 32, 3), dtype=np.uint8), 6, axis=0)
    assert motion.motion_box(torch.from_numpy(still)) == (6, 10, False)  # the centre crop
    assert motion.motion_box(torch.from_numpy(still[:1])) == (6, 10, False)  # one frame: no change
    moving = still.copy()
    for t in range(6):  # a 4x4 bright square moving right along rows 14..17, columns 20+t..23+t
        moving[t, 14:18, 20 + t : 24 + t] = 255
    top, left, flipped = motion.motion_box(torch.from_numpy(moving))
    windows = _window_changes(moving, 12)
    assert windows[top, left] == windows.max() and not flipped  # a window of the largest change ...
    # ... centred on the square's path (rows 14-17, columns 20-28; the centroid of the change
    # lies within a pixel of the path's centre, as the background is random)
    assert top == 10 and abs(left + 5.5 - 24) <= 1
    clip = motion.normalize(moving)
    assert clip.shape == (3, 6, 12, 12)
    torch.testing.assert_close(clip, torch.from_numpy(moving[:, 10:22, left : left + 12]).permute(3, 0, 1, 2).float())
    with pytest.raises(ValueError, match="motion_box"):
        motion.crop_boxes(24, 32)
