"""The walkway benchmark: determinism, anomaly fractions, annotations that match the drawing."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gclvad.datasets.readers import generate_synthetic, load_dataset
from gclvad.datasets.synthetic.pooled_walkway import POOLED_EVENTS
from gclvad.datasets.synthetic.walkway import KINDS, _Video, generate_walkway, plan_walkway, spans_of, walkway_frames
from gclvad.decode.video import iter_frames, probe_video
from gclvad.errors import GclvadError

SIZE = (48, 64)
TINY = {"n_train": 4, "n_test": 6, "frames": 160, "size": SIZE, "scenes": 2}


@pytest.fixture(scope="module")
def walkway(tmp_path_factory):
    return generate_walkway(tmp_path_factory.mktemp("walkway"), seed=0, **TINY)


def decoded(manifest, path) -> np.ndarray:
    return np.stack(list(iter_frames(manifest.parent / path)))


def test_files_in_the_generic_format(walkway):
    videos = pd.read_csv(walkway)
    annotations = pd.read_csv(walkway.parent / "annotations.csv")
    assert list(videos.columns) == ["video", "path", "split", "label"]
    assert videos["split"].tolist() == ["train"] * 4 + ["test"] * 6
    assert set(videos.loc[videos["label"] == 1, "video"]) == set(annotations["video"])
    info = probe_video(walkway.parent / videos["path"][0])
    assert (info.frames, info.height, info.width, info.fps) == (160, 48, 64, 25.0)
    read = {
        v.id: v
        for v in load_dataset(
            {"format": "generic", "manifest": str(walkway), "annotations": str(walkway.parent / "annotations.csv")}
        )
    }
    annotated = annotations.assign(n=annotations.end_frame - annotations.start_frame).groupby("video")["n"].sum()
    for video, frames in annotated.items():
        assert read[video].truth(160).sum() == frames


def test_same_seed_same_frames_other_seed_differs(walkway, tmp_path):
    again = generate_synthetic(tmp_path / "again", kind="walkway", seed=0, **TINY)
    other = generate_walkway(tmp_path / "other", seed=1, **TINY)
    for name in ("videos.csv", "annotations.csv"):
        assert (again.parent / name).read_text() == (walkway.parent / name).read_text()
    for path in pd.read_csv(walkway)["path"][:3]:
        assert np.array_equal(decoded(walkway, path), decoded(again, path))
    assert not np.array_equal(decoded(walkway, "train_000.mp4"), decoded(other, "train_000.mp4"))


def test_anomalous_fractions_as_specified(walkway):
    # Planned on the benchmark's real size (nothing drawn): every seed meets its budget.
    for seed in range(5):
        videos, _ = plan_walkway(seed, 24, 24, 240, (240, 320), 4, 0.10, 0.35)
        assert {v.scene for v in videos} == set(range(4))
        assert {c.kind for v in videos for c in v.crossings} == set(KINDS)
        assert 0.2 < np.mean([bool(v.crossings) for v in videos if v.split == "test"]) < 0.8
    # Drawn: the annotated frames of each split, from the drawing itself.
    videos = pd.read_csv(walkway)
    annotations = pd.read_csv(walkway.parent / "annotations.csv").merge(videos[["video", "split"]])
    anomalous = (annotations.end_frame - annotations.start_frame).groupby(annotations.split).sum()
    assert anomalous["test"] / (6 * 160) == pytest.approx(0.35, abs=0.05)
    assert anomalous["train"] / (4 * 160) == pytest.approx(0.10, abs=0.05)
    # Long events: one video's event lasts more than half of it.
    assert (annotations.end_frame - annotations.start_frame).max() > 80


def test_annotations_are_the_frames_where_an_anomaly_is_drawn(walkway):
    videos, layouts = plan_walkway(
        0, **{k: v for k, v in TINY.items() if k != "scenes"}, scenes=2, train_fraction=0.10, test_fraction=0.35
    )
    spans = pd.read_csv(walkway.parent / "annotations.csv")
    checked = 0
    for video in [v for v in videos if v.crossings][:3]:
        layout = layouts[video.scene]
        with_events = list(walkway_frames(video, layout, 160, SIZE))
        without = np.stack([picture for picture, _ in walkway_frames(video, layout, 160, SIZE, events=False)])
        pictures = np.stack([picture for picture, _ in with_events])
        visible = [seen for _, seen in with_events]
        written = spans[spans.video == video.name]
        assert spans_of(visible) == list(zip(written.start_frame, written.end_frame, strict=False))
        changed = np.abs(pictures.astype(int) - without).max(axis=-1) > 0
        differs = changed.any(axis=(1, 2))
        assert not differs[~np.asarray(visible)].any()  # nothing anomalous outside the annotation
        assert differs[np.asarray(visible)].mean() > 0.97  # (a walker in front may hide it briefly)
        for start, _ in spans_of(visible):  # every event enters at the left or right edge
            first_seen = start + int(np.flatnonzero(differs[start:])[0])  # a walker in front may hide it
            columns = np.flatnonzero(changed[first_seen].any(axis=0))
            assert first_seen - start < 4 and (columns.max() < 4 or columns.min() >= SIZE[1] - 4)
        checked += 1
    assert checked == 3


def test_walkers_walk_both_ways_at_walking_speed():
    videos, layouts = plan_walkway(0, 8, 0, 64, (240, 320), 4, 0.0, 0.0)
    speeds = [w.speed for v in videos for w in _Video(v, layouts[v.scene], (240, 320), 64).walkers]
    assert min(speeds) < 0 < max(speeds)
    assert 0.7 < np.median(np.abs(speeds)) < 1.6  # pixels per frame at 320 wide


def test_bad_arguments_are_refused(tmp_path):
    with pytest.raises(GclvadError, match="test_fraction"):
        generate_walkway(tmp_path, test_fraction=0.95)
    with pytest.raises(GclvadError, match="could not plan"):
        generate_walkway(tmp_path, n_train=1, n_test=1, frames=32, train_fraction=0.0, test_fraction=0.05)
    with pytest.raises(GclvadError, match="unknown synthetic dataset kind"):
        generate_synthetic(tmp_path, kind="street")


def test_the_pooled_walkway_has_anomalies_in_most_test_frames_and_a_normal_training_split(tmp_path):
    # Planned on the benchmark's real size: the test split's budget met at every seed, events long.
    for seed in range(4):
        videos, _ = plan_walkway(seed, 16, 12, 180, (240, 320), 1, 0.0, 0.7, POOLED_EVENTS)
        assert not any(v.crossings for v in videos if v.split == "train")
        assert sum(bool(v.crossings) for v in videos if v.split == "test") >= 9
    # Drawn (small): videos of the walkway's kind, annotated from the drawing.
    manifest = generate_synthetic(tmp_path, kind="pooled_walkway", n_train=2, n_test=4, frames=96, size=SIZE)
    videos = pd.read_csv(manifest)
    annotations = pd.read_csv(manifest.parent / "annotations.csv").merge(videos[["video", "split"]])
    assert set(annotations.split) == {"test"} and videos["split"].tolist() == ["train"] * 2 + ["test"] * 4
    assert (annotations.end_frame - annotations.start_frame).sum() / (4 * 96) == pytest.approx(0.7, abs=0.05)
    assert probe_video(manifest.parent / "test_000.mp4").frames == 96
