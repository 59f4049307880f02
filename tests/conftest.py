"""Shared pytest fixtures: small generated videos (helpers live in tests/videos.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from videos import make_empty_file, make_frame_folder, make_text_file, make_video, truncate_copy


@pytest.fixture
def lossless_video(tmp_path: Path) -> Path:
    """40 frames, 24x32, FFV1 RGB (.mkv): frame i is flat `index_colour(i)`, exactly."""
    return make_video(tmp_path / "lossless.mkv", 40, (24, 32))


@pytest.fixture
def bad_videos(tmp_path: Path) -> dict[str, Path]:
    """Sources every reader must reject, by what is wrong with them."""
    folder = tmp_path / "bad"
    folder.mkdir()
    empty_folder = folder / "empty_frames"
    empty_folder.mkdir()
    broken_folder = make_frame_folder(folder / "broken_frames", 3)
    (broken_folder / "2.png").write_bytes(b"not a png")
    return {
        "missing": folder / "missing.mp4",
        "zero_bytes": make_empty_file(folder / "zero.mp4"),
        "text": make_text_file(folder / "notes.mp4"),
        "empty_folder": empty_folder,
        "unreadable_image": broken_folder,
    }


@pytest.fixture
def truncated_video(tmp_path: Path) -> Path:
    """An .mkv of 100 lossless frames (24x32) with the second half of its bytes cut off."""
    whole = make_video(tmp_path / "whole.mkv", 100, (24, 32))
    return truncate_copy(whole, tmp_path / "cut.mkv", 0.5)


@pytest.fixture(scope="module")
def one_torch_thread():
    """Training tests run torch on one thread: on a loaded 2-core machine two fight each other."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
