"""Every paper variant runs end to end; only the OCC and WS variants ever read video labels."""

import numpy as np
import pytest
from synthetic import make_train_test

from gclvad.gcl.config import BadConfigError
from gclvad.gcl.data import BadTrainingDataError, TrainingData
from gclvad.gcl.store import score
from gclvad.gcl.train import train
from gclvad.gcl.variants import LABEL_READING_VARIANTS, get_variant, variant_names

# On a shared 2-core machine two intra-op threads fight other processes; one is faster.
pytestmark = pytest.mark.usefixtures("one_torch_thread")

EXPECTED_STAGES = {  # the stages each variant trains, in its training log
    "AE_AllData": ["autoencoder"],
    "AE_OCC": ["autoencoder"],
    "AE_TD": ["autoencoder"],
    "GCL_wo_NL": ["gcl_loop"],
    "GCL_B": ["gcl_loop"],
    "GCL_PT": ["pretrain_g", "pretrain_d", "gcl_loop"],
    "GCL_OCC": ["pretrain_g", "pretrain_d", "gcl_loop"],
    "GCL_WS": ["pretrain_g", "pretrain_d", "gcl_loop"],
    "GCL_soft": ["pretrain_g", "pretrain_d", "gcl_loop"],
    "GCL_Gself": ["pretrain_g", "pretrain_d", "gcl_loop"],
}


@pytest.fixture(scope="module")
def small_sets():
    return make_train_test(train_videos=8, test_videos=3, segments=(12, 16), seed=5)


class LabelTrap:
    """Stands in for video_label and fails the test on any use at all."""

    def __getattribute__(self, name):
        raise AssertionError(f"video_label was read ({name})")

    def __len__(self):
        raise AssertionError("video_label was read (len)")

    def __getitem__(self, index):
        raise AssertionError("video_label was read (index)")

    def __iter__(self):
        raise AssertionError("video_label was read (iter)")

    def __array__(self, *args, **kwargs):
        raise AssertionError("video_label was read (array)")

    def __bool__(self):
        raise AssertionError("video_label was read (bool)")


def _config(name, **changes):
    values = {
        "loop.epochs": 1,
        "pretrain_g.epochs": 1,
        "pretrain_d.epochs": 1,
        "min_steps_per_stage": 0,
        "max_batch_fraction": 0.25,
    }
    return get_variant(name, preset="small", **{**values, **changes})


def test_variant_table_is_complete():
    assert variant_names() == list(EXPECTED_STAGES)
    assert set(LABEL_READING_VARIANTS) == {name for name in variant_names() if get_variant(name).reads_labels}
    assert get_variant("GCL_wo_NL").loop.nl_target == "none" and get_variant("GCL_wo_NL").pretrain_g.data == "none"
    assert get_variant("GCL_WS", fraction=0.33).supervision.fraction == 0.33
    assert [str(stage) for stage in get_variant("GCL_PT").stages] == EXPECTED_STAGES["GCL_PT"]
    assert get_variant("GCL_PT") == get_variant("GCL_PT", preset="paper")
    with pytest.raises(BadConfigError, match="unknown variant 'GCL_X'"):
        get_variant("GCL_X")
    with pytest.raises(BadConfigError, match="unknown setting 'bogus'"):
        get_variant("GCL_PT", bogus=1)


@pytest.mark.parametrize("name", list(EXPECTED_STAGES))
def test_every_variant_runs_end_to_end(small_sets, name):
    train_set, test_set = small_sets
    data = TrainingData(train_set.features, train_set.video, train_set.position, train_set.video_label)
    result = train(_config(name), data, seed=0)
    assert [row["stage"] for row in result.log] == EXPECTED_STAGES[name]
    assert all(
        row["steps"] >= 1 and np.isfinite(row["loss_g"] if "loss_g" in row else row["loss_d"]) for row in result.log
    )
    scores = score(result.models, test_set.features)
    assert scores["score"].shape == (len(test_set.features),) and np.isfinite(scores["score"]).all()
    assert ("d" in scores) == name.startswith("GCL")
    assert np.array_equal(scores["score"], scores["g" if name.startswith("AE") else "d"])


@pytest.mark.parametrize("name", [n for n in EXPECTED_STAGES if n not in LABEL_READING_VARIANTS])
def test_label_free_variants_never_touch_video_labels(small_sets, name):
    train_set, test_set = small_sets
    trapped = TrainingData(train_set.features, train_set.video, train_set.position, LabelTrap())
    without = TrainingData(train_set.features, train_set.video, train_set.position, None)
    first = score(train(_config(name), trapped, seed=2).models, test_set.features)
    second = score(train(_config(name), without, seed=2).models, test_set.features)
    assert all(np.array_equal(first[key], second[key]) for key in first)


@pytest.mark.parametrize("name", LABEL_READING_VARIANTS)
def test_label_reading_variants_say_they_need_labels(small_sets, name):
    train_set, _ = small_sets
    data = TrainingData(train_set.features, train_set.video, train_set.position, None)
    with pytest.raises(BadTrainingDataError, match="reads video-level labels"):
        train(_config(name), data, seed=0)


def test_one_class_pretraining_uses_exactly_the_normal_videos(small_sets):
    train_set, _ = small_sets
    data = TrainingData(train_set.features, train_set.video, train_set.position, train_set.video_label)
    result = train(_config("AE_OCC"), data, seed=0)
    normal_rows = int((train_set.video_label[train_set.video] == 0).sum())
    assert result.log[0]["rows"] == normal_rows == result.supervision["normal_rows_for_pretraining"]


def test_weak_supervision_reveals_a_seeded_fraction_of_videos(small_sets):
    train_set, _ = small_sets
    labels = train_set.video_label.copy()
    labels[0] = -1  # an unknown label stays unknown even when the video is drawn
    data = TrainingData(train_set.features, train_set.video, train_set.position, labels)
    full = train(_config("GCL_WS"), data, seed=0).supervision
    assert full["videos_revealed"] == 8
    assert full["revealed_normal"] == int((labels == 0).sum())
    assert full["revealed_anomalous"] == int((labels == 1).sum())
    assert full["rows_forced_normal"] == int(np.isin(train_set.video, np.flatnonzero(labels == 0)).sum())
    half = train(_config("GCL_WS", fraction=0.5), data, seed=0).supervision
    again = train(_config("GCL_WS", fraction=0.5), data, seed=0).supervision
    assert half["videos_revealed"] == 4 and half == again
    # forced-normal rows never carry an anomalous pseudo-label, so with every video revealed
    # as normal no row is ever labelled anomalous
    all_normal = TrainingData(train_set.features, train_set.video, train_set.position, np.zeros(8, dtype=int))
    result = train(_config("GCL_WS"), all_normal, seed=0)
    assert all(row.get("g_label_fraction", 0) == 0 and row.get("d_label_fraction", 0) == 0 for row in result.log)


def test_the_label_trap_does_catch_a_variant_that_reads_labels(small_sets):
    train_set, _ = small_sets
    trapped = TrainingData(train_set.features, train_set.video, train_set.position, LabelTrap())
    with pytest.raises(AssertionError, match="video_label was read"):
        train(_config("GCL_OCC"), trapped, seed=0)
