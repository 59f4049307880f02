"""The HDF5 feature store: per-video files, merged files, FeatureSet and the RTFM import."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

import gclvad.features.files as features_module
from gclvad.errors import GclvadError
from gclvad.features.feature_set import FeatureSet, load_feature_set
from gclvad.features.files import merge_video_features, read_video_features, write_video_features


def attrs_for(frames: int, segment_length: int = 16, **changes) -> dict:
    segments = -(-frames // segment_length)
    attrs = {
        "extractor": "i3d_rgb",
        "weights_sha256": "0f" * 32,
        "weights_random": False,
        "segment_length": segment_length,
        "frames": frames,
        "fps": 30.0,
        "preprocessing": json.dumps({"size": 256, "crop": 224}),
        "padded_tail": segments * segment_length - frames,
    }
    attrs.update(changes)
    return attrs


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


# ---------------------------------------------------------------- per-video files


def test_float32_round_trip_is_exact_and_keeps_attribute_types(tmp_path):
    values = np.random.default_rng(0).normal(size=(5, 8)).astype(np.float32)
    attrs = attrs_for(70)
    write_video_features(tmp_path / "v.h5", values, attrs)
    read, read_attrs = read_video_features(tmp_path / "v.h5")
    assert read.dtype == np.float32 and np.array_equal(read, values)
    assert read_attrs == attrs
    assert type(read_attrs["weights_random"]) is bool and type(read_attrs["frames"]) is int
    assert read_attrs["padded_tail"] == 10  # 5 segments of 16 cover 80 frames, 70 are real
    assert leftovers(tmp_path) == []


def test_float16_round_trip_is_near_and_stored_half_size(tmp_path):
    values = np.random.default_rng(1).normal(scale=10, size=(4, 6))  # float64 input is fine
    write_video_features(tmp_path / "v.h5", values, attrs_for(64), dtype="float16")
    with h5py.File(tmp_path / "v.h5", "r") as stored:
        assert stored["features"].dtype == np.float16
    read, _ = read_video_features(tmp_path / "v.h5")
    assert read.dtype == np.float32
    assert np.array_equal(read, values.astype(np.float16).astype(np.float32))
    np.testing.assert_allclose(read, values, rtol=1e-3, atol=1e-3)
    assert not np.array_equal(read, values.astype(np.float32))  # it really was rounded


@pytest.mark.parametrize(
    "values, dtype, message",
    [
        (
            np.array([[1.0, np.nan], [0.0, 1.0], [np.inf, 2.0]]),
            "float32",
            r"2 NaN/inf values \(in segment\(s\) \[0, 2\]",
        ),
        (np.array([[1.0, 70000.0]]), "float16", "cast to float16 hold 1 NaN/inf"),
        (np.zeros((3,)), "float32", r"\[segments, crops, dim\] array, got shape \(3,\)"),
        (np.zeros((0, 4)), "float32", "non-empty"),
        (np.zeros((2, 4)), "float64", "dtype must be one of"),
    ],
)
def test_bad_features_are_rejected_and_nothing_is_written(tmp_path, values, dtype, message):
    with pytest.raises(GclvadError, match=message) as caught:
        write_video_features(tmp_path / "v.h5", values, attrs_for(16), dtype=dtype)
    assert "v.h5" in str(caught.value)
    assert list(tmp_path.iterdir()) == []


def test_unstorable_attribute_is_rejected(tmp_path):
    with pytest.raises(GclvadError, match="attribute 'preprocessing' has a value of type dict"):
        write_video_features(tmp_path / "v.h5", np.ones((1, 2)), attrs_for(16, preprocessing={"size": 1}))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("failure", [RuntimeError("disk full"), KeyboardInterrupt()])
def test_a_write_that_fails_midway_leaves_the_old_file_and_no_partial_one(tmp_path, monkeypatch, failure):
    old = np.full((2, 3), 7.0, dtype=np.float32)
    write_video_features(tmp_path / "v.h5", old, attrs_for(32))

    def fail_after_the_dataset_is_written(*args, **kwargs):
        raise failure

    # The features dataset is already in the (temporary) file when attributes are set.
    monkeypatch.setattr(features_module, "set_attrs", fail_after_the_dataset_is_written)
    with pytest.raises(type(failure)):
        write_video_features(tmp_path / "v.h5", np.zeros((4, 3)), attrs_for(64))
    with pytest.raises(type(failure)):
        write_video_features(tmp_path / "new.h5", np.zeros((4, 3)), attrs_for(64))

    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.h5"]
    read, attrs = read_video_features(tmp_path / "v.h5")
    assert np.array_equal(read, old) and attrs["frames"] == 32


def test_missing_corrupt_and_incomplete_files_are_named(tmp_path):
    with pytest.raises(GclvadError, match=r"absent\.h5: feature file not found"):
        read_video_features(tmp_path / "absent.h5")
    (tmp_path / "corrupt.h5").write_bytes(b"\x89HDF but not really" * 10)
    with pytest.raises(GclvadError, match=r"corrupt\.h5: not a readable HDF5"):
        read_video_features(tmp_path / "corrupt.h5")
    with h5py.File(tmp_path / "empty.h5", "w"):
        pass
    with pytest.raises(GclvadError, match=r"empty\.h5: no 2-D or 3-D dataset 'features'"):
        read_video_features(tmp_path / "empty.h5")


# ---------------------------------------------------------------- merged files


@pytest.fixture
def three_parts(tmp_path):
    rng = np.random.default_rng(2)
    lengths = {"b": 5, "a": 3, "c": 2}  # deliberately not in id order
    originals, parts = {}, {}
    for i, (video, segments) in enumerate(lengths.items()):
        values = rng.normal(size=(segments, 4)).astype(np.float32)
        frames = segments * 16 - i  # padded_tail 0, 1, 2
        parts[video] = tmp_path / "parts" / f"{video}.h5"
        write_video_features(parts[video], values, attrs_for(frames, fps=25.0 + i), dtype="float16")
        originals[video] = values.astype(np.float16).astype(np.float32)
    return parts, originals


def test_merge_and_load_keep_rows_offsets_and_positions(tmp_path, three_parts):
    parts, originals = three_parts
    merge_video_features(parts, tmp_path / "merged.h5")
    assert leftovers(tmp_path) == []
    with h5py.File(tmp_path / "merged.h5", "r") as merged:
        assert merged["index/offset"][()].tolist() == [0, 3, 8]
        assert merged["index/segments"][()].tolist() == [3, 5, 2]
        assert merged["videos/b/features"].dtype == np.float16

    feature_set = load_feature_set(tmp_path / "merged.h5")
    assert feature_set.videos == ["a", "b", "c"]  # index order: sorted ids
    assert feature_set.features.dtype == np.float32 and feature_set.features.shape == (10, 4)
    assert feature_set.offsets.tolist() == [0, 3, 8, 10]
    assert feature_set.video_of_row().tolist() == [0, 0, 0, 1, 1, 1, 1, 1, 2, 2]
    assert feature_set.position_of_row().tolist() == [0, 1, 2, 0, 1, 2, 3, 4, 0, 1]
    assert feature_set.frames.tolist() == [3 * 16 - 1, 5 * 16, 2 * 16 - 2]
    assert feature_set.padded_tail.tolist() == [1, 0, 2]
    for video, values in originals.items():
        assert np.array_equal(feature_set.of(video), values)
    assert np.shares_memory(feature_set.of("b"), feature_set.features)  # a view, not a copy
    # What all parts share goes to the root; fps differs per video, so it stays per video.
    assert feature_set.attrs["extractor"] == "i3d_rgb" and feature_set.attrs["segment_length"] == 16
    assert feature_set.attrs["dim"] == 4 and feature_set.attrs["dtype"] == "float16"
    assert "fps" not in feature_set.attrs and feature_set.video_attrs["c"]["fps"] == 27.0


def test_load_and_subset_chosen_videos_in_the_order_asked(tmp_path, three_parts):
    parts, originals = three_parts
    merge_video_features(parts, tmp_path / "merged.h5")
    chosen = load_feature_set(tmp_path / "merged.h5", videos=["c", "a"])
    assert chosen.videos == ["c", "a"] and chosen.offsets.tolist() == [0, 2, 5]
    assert np.array_equal(chosen.features, np.concatenate([originals["c"], originals["a"]]))
    assert chosen.padded_tail.tolist() == [2, 1]

    subset = load_feature_set(tmp_path / "merged.h5").subset(["c", "a"])
    assert subset.videos == chosen.videos and np.array_equal(subset.features, chosen.features)
    assert subset.offsets.tolist() == [0, 2, 5] and subset.frames.tolist() == chosen.frames.tolist()
    assert subset.position_of_row().tolist() == [0, 1, 0, 1, 2]

    with pytest.raises(GclvadError, match=r"merged\.h5: has no features for 2 requested video\(s\): x, y"):
        load_feature_set(tmp_path / "merged.h5", videos=["a", "x", "y"])
    with pytest.raises(KeyError, match="'x'"):
        chosen.of("x")


@pytest.mark.parametrize(
    "changes, dim, key",
    [
        ({"segment_length": 32}, 4, "segment_length"),
        ({"extractor": "c3d"}, 4, "extractor"),
        ({"weights_sha256": "ab" * 32}, 4, "weights_sha256"),
        ({}, 5, "dim"),
    ],
)
def test_parts_that_disagree_are_rejected_naming_both_files(tmp_path, three_parts, changes, dim, key):
    parts, _ = three_parts
    odd = tmp_path / "parts" / "odd.h5"
    write_video_features(odd, np.ones((2, dim)), {**attrs_for(32), **changes}, dtype="float16")
    with pytest.raises(GclvadError, match=f"disagree on {key}: .*a\\.h5 has .* but .*odd\\.h5 has") as caught:
        merge_video_features({**parts, "z_odd": odd}, tmp_path / "merged.h5")
    assert not (tmp_path / "merged.h5").exists() and leftovers(tmp_path) == []
    assert "features of one merged file" in str(caught.value)


def test_a_part_without_index_attributes_is_rejected(tmp_path, three_parts):
    parts, _ = three_parts
    bare = tmp_path / "bare.h5"
    write_video_features(bare, np.ones((2, 4)), {"extractor": "i3d_rgb"})
    with pytest.raises(
        GclvadError, match=r"bare\.h5: lacks the attribute\(s\) weights_sha256, segment_length, frames, padded_tail"
    ):
        merge_video_features({**parts, "bare": bare}, tmp_path / "merged.h5")


def test_loading_a_per_video_file_as_merged_is_named(tmp_path, three_parts):
    parts, _ = three_parts
    with pytest.raises(GclvadError, match=r"a\.h5: not a merged feature file"):
        load_feature_set(parts["a"])


def test_feature_set_checks_its_offsets():
    with pytest.raises(ValueError, match="do not partition"):
        FeatureSet(np.zeros((4, 2), np.float32), ["a", "b"], np.array([0, 1, 3]), np.zeros(2), np.zeros(2), {})
