"""Temporal-difference cleaning (paper §3.3) against hand-computed small cases."""

import math
import warnings

import numpy as np
import pytest

from gclvad.cleaning import CleaningConfig, enrichment, temporal_difference_mask, temporal_differences
from gclvad.errors import GclvadError

# Video 0: four segments; video 1: three segments. Hand-computed distances below.
FEATURES = np.array(
    [
        [1.0, 0.0],  # v0 t0: first of its video
        [2.0, 0.0],  # v0 t1: normalised (1,0) -> distance 0; raw distance 1
        [0.0, 3.0],  # v0 t2: normalised (0,1) -> distance sqrt(2); raw sqrt(13)
        [0.0, 3.5],  # v0 t3: normalised distance 0; raw 0.5
        [3.0, 4.0],  # v1 t0: first of its video
        [4.0, 3.0],  # v1 t1: normalised (.6,.8)->(.8,.6): distance sqrt(.08); raw sqrt(2)
        [0.0, 0.0],  # v1 t2: all-zero feature stays zero: distance 1 normalised; raw 5
    ]
)
VIDEO = np.array([0, 0, 0, 0, 1, 1, 1])
POSITION = np.array([0, 1, 2, 3, 0, 1, 2])


def test_distances_by_hand_normalised_and_raw():
    normalised, first = temporal_differences(FEATURES, VIDEO, POSITION, normalise="l2")
    expected = [np.nan, 0.0, math.sqrt(2), 0.0, np.nan, math.sqrt(0.08), 1.0]
    np.testing.assert_allclose(normalised, expected, atol=1e-12)
    assert first.tolist() == [True, False, False, False, True, False, False]
    raw, _ = temporal_differences(FEATURES, VIDEO, POSITION, normalise="none")
    np.testing.assert_allclose(raw, [np.nan, 1.0, math.sqrt(13), 0.5, np.nan, math.sqrt(2), 5.0], atol=1e-12)


def test_absolute_threshold_keeps_small_steps_and_every_first_segment():
    mask, summary = temporal_difference_mask(FEATURES, VIDEO, POSITION, CleaningConfig(threshold=0.7))
    # sqrt(2) and 1.0 exceed 0.7; sqrt(.08)=0.28 does not; first segments are kept.
    assert mask.tolist() == [True, True, False, True, True, True, False]
    assert summary["threshold"] == 0.7
    assert summary["kept"] == 5 and summary["kept_fraction"] == pytest.approx(5 / 7)
    assert summary["first_segments_kept"] == 2
    assert summary["distance_max"] == pytest.approx(math.sqrt(2))
    raw_mask, _ = temporal_difference_mask(FEATURES, VIDEO, POSITION, CleaningConfig(threshold=1.0, normalise="none"))
    assert raw_mask.tolist() == [True, True, False, True, True, False, False]


def test_percentile_threshold_is_a_percentile_of_observed_distances():
    mask, summary = temporal_difference_mask(FEATURES, VIDEO, POSITION, CleaningConfig(threshold=50, mode="percentile"))
    observed = [0.0, math.sqrt(2), 0.0, math.sqrt(0.08), 1.0]
    assert summary["threshold"] == pytest.approx(np.median(observed))
    assert mask.tolist() == [True, True, False, True, True, True, False]


def test_row_order_does_not_matter():
    shuffle = np.random.default_rng(3).permutation(len(FEATURES))
    mask, _ = temporal_difference_mask(FEATURES[shuffle], VIDEO[shuffle], POSITION[shuffle])
    reference, _ = temporal_difference_mask(FEATURES, VIDEO, POSITION)
    assert mask.tolist() == reference[shuffle].tolist()


def test_warns_when_almost_everything_or_almost_nothing_is_kept():
    with pytest.warns(UserWarning, match="keeps 100.0%"):
        temporal_difference_mask(FEATURES, VIDEO, POSITION, CleaningConfig(threshold=10.0))
    rng = np.random.default_rng(0)
    features = rng.normal(size=(200, 8))
    with pytest.warns(UserWarning, match="keeps 0.5%"):
        temporal_difference_mask(features, np.zeros(200, dtype=int), np.arange(200), CleaningConfig(threshold=1e-9))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        temporal_difference_mask(FEATURES, VIDEO, POSITION)  # 71 % kept: no warning


def test_bad_inputs_name_the_problem():
    with pytest.raises(GclvadError, match="two rows at segment position 1"):
        temporal_difference_mask(FEATURES, VIDEO, np.array([0, 1, 1, 3, 0, 1, 2]))
    with pytest.raises(GclvadError, match="one entry per feature row"):
        temporal_difference_mask(FEATURES, VIDEO[:3], POSITION)
    with pytest.raises(GclvadError, match=r"cleaning.mode must be one of absolute, percentile"):
        temporal_difference_mask(FEATURES, VIDEO, POSITION, CleaningConfig(mode="relative"))
    with pytest.raises(GclvadError, match=r"cleaning.threshold is a percentile .* \(0, 100\]; found 0"):
        CleaningConfig(threshold=0, mode="percentile")


def test_non_finite_features_are_refused_naming_video_and_segment():
    features = FEATURES.copy()
    features[5, 1] = np.nan  # video 1, segment 1
    with pytest.raises(GclvadError, match="segment 1 of video 1"):
        temporal_difference_mask(features, VIDEO, POSITION)
    # a lone first segment with NaN (no distance at all) is refused too, not kept as "first"
    features = FEATURES.copy()
    features[4, 0] = np.inf
    with pytest.raises(GclvadError, match="segment 0 of video 1"):
        temporal_difference_mask(features[4:5], VIDEO[4:5], POSITION[4:5])


def test_settings_name_a_folder_and_come_back_from_it():
    for config in (CleaningConfig(), CleaningConfig(threshold=85, mode="percentile", normalise="none")):
        assert CleaningConfig.from_name(config.name) == config
    assert CleaningConfig().name == "l2-absolute-0.7"


def test_enrichment_counts_anomalous_rows_among_kept_and_removed_labelled_rows():
    keep = np.array([True, True, True, False, False, True])
    anomalous = np.array([0, 1, 0, 1, 1, -1])  # the last row's video has no labels
    assert enrichment(keep, anomalous) == {
        "labelled_rows": 5,
        "anomalous_fraction_all": 0.6,
        "anomalous_fraction_kept": 1 / 3,
        "anomalous_fraction_removed": 1.0,
    }
    assert enrichment(np.ones(2, bool), np.array([0, 1]))["anomalous_fraction_removed"] is None


def test_a_window_is_anomalous_when_at_least_half_its_frames_are():
    from gclvad.features.feature_set import FeatureSet
    from gclvad.stages.data import anomalous_rows

    # video a: 40 frames, windows of 16 every 8 frames (4 rows: the last one a padded tail);
    # frames 10..19 anomalous. Video b has no labels.
    features = FeatureSet(
        features=np.zeros((6, 2), np.float32), videos=["a", "b"], offsets=np.array([0, 4, 6]),
        frames=np.array([40, 32]), padded_tail=np.array([8, 0]),
        attrs={"segment_length": 16, "segment_stride": 8},
    )  # fmt: skip
    truth = np.zeros(40, bool)
    truth[10:20] = True
    # windows [0,16): 6 of 16; [8,24): 10 of 16; [16,32): 4 of 16; [24,40): 0
    assert anomalous_rows(features, {"a": truth, "b": None}).tolist() == [0, 1, 0, 0, -1, -1]
