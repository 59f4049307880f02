"""The synthetic demo dataset: determinism, anomaly budget, manifest format, visible events."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from gclvad.datasets.synthetic.demo import ANOMALY_KINDS, Event, anomalous_count, generate_demo, scene_frames
from gclvad.decode.video import iter_frames, probe_video
from gclvad.errors import GclvadError

TINY = dict(n_train=3, n_test=4, frames=32, size=(48, 64))


def decoded(manifest_path, video_path) -> list[torch.Tensor]:
    return [torch.from_numpy(frame) for frame in iter_frames(manifest_path.parent / video_path)]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return generate_demo(tmp_path_factory.mktemp("demo"), seed=0, **TINY)


def test_manifest_and_annotations_format(demo):
    videos = pd.read_csv(demo)
    annotations = pd.read_csv(demo.parent / "annotations.csv")
    assert list(videos.columns) == ["video", "path", "split", "label"]
    assert list(annotations.columns) == ["video", "start_frame", "end_frame"]
    assert videos["split"].tolist() == ["train"] * 3 + ["test"] * 4
    assert videos["video"].is_unique
    # Label 1 exactly for the videos with an annotated event.
    assert set(videos.loc[videos["label"] == 1, "video"]) == set(annotations["video"])
    for row in videos.itertuples():
        info = probe_video(demo.parent / row.path)
        assert (info.frames, info.height, info.width, info.fps, info.status) == (32, 48, 64, 25.0, "ok")
    assert ((annotations["start_frame"] >= 0) & (annotations["start_frame"] < annotations["end_frame"])).all()
    assert (annotations["end_frame"] <= 32).all()


def test_anomalies_are_a_minority_within_budget(demo):
    videos = pd.read_csv(demo)
    annotations = pd.read_csv(demo.parent / "annotations.csv")
    for split, group in videos.groupby("split"):
        assert 1 <= group["label"].sum() < len(group) / 2, split
    anomalous = (annotations["end_frame"] - annotations["start_frame"]).sum()
    assert anomalous <= 0.15 * 32 * len(videos)
    assert [anomalous_count(n) for n in (1, 2, 3, 4, 6, 12)] == [0, 0, 1, 1, 2, 4]


def test_same_seed_same_dataset_other_seed_differs(demo, tmp_path):
    again = generate_demo(tmp_path / "again", seed=0, **TINY)
    other = generate_demo(tmp_path / "other", seed=1, **TINY)
    for name in ("videos.csv", "annotations.csv"):
        assert (again.parent / name).read_text() == (demo.parent / name).read_text()
    for path in pd.read_csv(demo)["path"]:
        first, second = decoded(demo, path), decoded(again, path)
        assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True)) and len(first) == len(second)
    assert not torch.equal(decoded(demo, "train_000.mp4")[0], decoded(other, "train_000.mp4")[0])


@pytest.mark.parametrize("kind", ANOMALY_KINDS)
def test_event_is_visible_exactly_during_its_interval(kind):
    event = Event(kind, 10, 22)
    with_event = np.stack(list(scene_frames(np.random.default_rng(5), 32, (120, 160), event)))
    without = np.stack(list(scene_frames(np.random.default_rng(5), 32, (120, 160), None)))
    changed = (np.abs(with_event.astype(int) - without).max(axis=-1) > 30).mean(axis=(1, 2))
    assert (changed[:10] == 0).all() and (changed[22:] == 0).all()
    # While it crosses, the event covers a clear part of the picture (bigger for the vehicle).
    assert np.median(changed[10:22]) > (0.08 if kind == "vehicle" else 0.01)


def test_normal_walkers_move_at_walking_speed():
    frames = np.stack(list(scene_frames(np.random.default_rng(3), 20, (240, 320)))).astype(int)
    moving = (np.abs(np.diff(frames, axis=0)).max(axis=-1) > 30).mean()
    assert 0.001 < moving < 0.05  # a few walkers' edges change from frame to frame, not the scene


def test_rejects_sizes_yuv420p_cannot_hold(tmp_path):
    with pytest.raises(GclvadError, match="must be even"):
        generate_demo(tmp_path, n_train=1, n_test=0, frames=16, size=(49, 64))
    with pytest.raises(GclvadError, match="at least one 16-frame segment"):
        generate_demo(tmp_path, frames=8)


def test_crowd_is_as_dense_at_the_start_as_later():
    # Walkers start anywhere on their wrap-around loop, off-screen margins included: had
    # they all started on screen, the first frames would be ~40 % more crowded than later
    # ones and every video's first segments would look anomalous (issue 10, item 7).
    from gclvad.datasets.synthetic.demo import _Scene

    size = (60, 80)
    coverage = []
    for seed in range(80):
        scene = _Scene(np.random.default_rng(seed), size, None)
        coverage.append(
            [
                (np.abs(scene.frame(t).astype(float) - scene.background).max(axis=-1) > 20).mean()
                for t in (0, 40, 80, 120)
            ]
        )
    start, *later = np.mean(coverage, axis=0)
    assert 0.9 < start / np.mean(later) < 1.1
