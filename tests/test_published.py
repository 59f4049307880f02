"""Published features (the `features` dataset format): the field's list, label and array layouts,
read in place, trained on and evaluated with the field's metrics."""

from __future__ import annotations

import numpy as np
import pytest
from published_fixtures import SEGMENT, write_published

from gclvad.datasets.readers import load_dataset
from gclvad.datasets.segment_index import build_segment_index, split_videos, write_segment_index
from gclvad.errors import BadDatasetError, GclvadError
from gclvad.evaluation.metrics import frame_metrics
from gclvad.features.feature_set import load_feature_set
from gclvad.gcl.data import TrainingData
from gclvad.gcl.store import score
from gclvad.gcl.train import train
from gclvad.gcl.variants import get_variant
from gclvad.scoring.scorer import score_feature_set
from gclvad.stages.preparation import link_published_features

pytestmark = pytest.mark.usefixtures("one_torch_thread")
CONVENTIONS = ("ucf_crime", "shanghaitech", "xd_violence")


def _spec(published):
    return {**published.spec, "segment_length": SEGMENT}


@pytest.mark.parametrize("convention", CONVENTIONS)
def test_each_layout_reads_with_names_labels_and_frame_truths(tmp_path, convention):
    published = write_published(tmp_path, convention, crops=5 if convention == "xd_violence" else 10)
    videos = {video.id: video for video in load_dataset(_spec(published))}
    assert sorted(videos) == sorted(name.replace("#", "-") for name in published.features)
    for name, features in published.features.items():
        video = videos[name.replace("#", "-")]
        assert video.kind == "features" and video.problem == ""
        assert video.label == published.labels[name], name
        assert video.parts[0].name.startswith(name)
        if video.split == "test":
            truth = video.truth(SEGMENT * len(features))
            assert np.array_equal(truth, published.truths[name]), name
    table = build_segment_index(list(videos.values()), SEGMENT)
    assert (table["status"] == "ok").all()
    assert (table["frames"] == table["segments"] * SEGMENT).all() and (table["padded_tail"] == 0).all()


def test_shanghaitech_names_follow_the_original_split(tmp_path):
    published = write_published(tmp_path, "shanghaitech")
    for video in load_dataset(_spec(published)):
        assert video.label == (1 if len(video.id) == 7 else 0), video.id  # NN_NNNN: original testing set


@pytest.fixture
def linked(tmp_path):
    """A UCF-Crime-style dataset indexed and linked as the workflow does."""
    published = write_published(tmp_path, "ucf_crime")
    spec = _spec(published)
    index_path = tmp_path / "segments.tsv"
    write_segment_index(build_segment_index(load_dataset(spec), SEGMENT), index_path)
    merged = tmp_path / "merged.h5"
    link_published_features(spec=spec, index_path=index_path, extractor="i3d_rtfm", out_path=merged)
    return published, spec, index_path, merged


def test_linked_features_are_read_in_place_with_every_crop_use(linked):
    published, _, _, merged = linked
    assert merged.stat().st_size < 200_000  # links, not a copy of 18 videos x 10 crops
    name, features = next(iter(published.features.items()))
    for crops, expected in (
        ("each", features),
        ("mean", features.mean(axis=1)),
        ("first", features[:, 0]),
        ("centre", features[:, 4]),  # torchvision's TenCrop order: four corners, then the centre
    ):
        np.testing.assert_allclose(load_feature_set(merged, [name], crops).of(name), expected, rtol=1e-6)
    feature_set = load_feature_set(merged, crops="each")
    rows, track, _position = feature_set.tracks()
    assert rows.shape == (10 * len(feature_set.features), 32) and track.max() == 10 * len(feature_set.videos) - 1
    assert feature_set.attrs["weights_sha256"] == "published" and len(feature_set.attrs["train_list_sha256"]) == 64
    assert feature_set.attrs["feature_source"].endswith("features")


@pytest.mark.parametrize("crops", ["mean", "each"])
def test_gcl_finds_the_planted_anomalies_of_published_features(linked, crops):
    published, spec, index_path, merged = linked
    import pandas as pd

    train_ids, test_ids = split_videos(pd.read_csv(index_path, sep="\t", dtype=str, keep_default_na=False), ["train"])
    features, track, position = load_feature_set(merged, train_ids, crops).tracks()
    config = get_variant("GCL_PT", preset="small", **{"min_steps_per_stage": 60})
    models = train(config, TrainingData(features, track, position), seed=0).models
    test_set = load_feature_set(merged, test_ids, crops)
    scores = score_feature_set(models, test_set, SEGMENT)
    truths = {video.id: video.truth(SEGMENT * len(published.features[video.id])) for video in load_dataset(spec)}
    metrics = frame_metrics({v: s["d"] for v, s in scores.items()}, truths)
    assert metrics["auc"] > 0.8 and metrics["average_precision"] > 0.3  # chance: 0.5 and ~0.1
    assert 0 <= metrics["false_alarm_rate"] <= 1 and metrics["macro_auc_videos"] >= 1
    if crops == "each":  # a segment's score is the mean of its ten crops' scores
        first = test_set.of(test_ids[0])
        by_crop = score(models, first.reshape(-1, first.shape[-1]))["d"].reshape(len(first), 10)
        assert np.allclose(scores[test_ids[0]]["d"][::SEGMENT], by_crop.mean(axis=1), atol=1e-6)


def test_a_label_array_that_does_not_line_up_fails_naming_the_video(tmp_path):
    published = write_published(tmp_path, "xd_violence", crops=5)
    gt = np.load(published.spec["labels"])
    assert all(video.truth is not None for video in load_dataset(_spec(published)))
    np.save(published.spec["labels"], gt[:-SEGMENT])  # one row short: the last video is cut
    with pytest.raises(
        BadDatasetError, match=r"gt\.npy: holds \d+ frame labels, but the test videos' features need more"
    ):
        load_dataset(_spec(published))
    np.save(published.spec["labels"], np.concatenate([gt, np.zeros(SEGMENT)]))
    with pytest.raises(BadDatasetError, match=r"but the test list's features cover"):
        load_dataset(_spec(published))
    shifted = np.concatenate([np.zeros(SEGMENT), gt[:-SEGMENT]])  # same length, one row off
    np.save(published.spec["labels"], shifted)
    try:
        videos = load_dataset(_spec(published))
    except BadDatasetError as error:  # a normal video now holds anomalous labels
        assert "normal test video" in str(error)
    else:  # or the truths moved with the shift: then they differ from the planted ones
        moved = [
            v
            for v in videos
            if v.split == "test"
            and not np.array_equal(
                v.truth(len(published.truths[v.id.replace("-", "#", 1)])), published.truths[v.id.replace("-", "#", 1)]
            )
        ]
        assert moved


def test_bad_published_files_are_named(tmp_path):
    published = write_published(tmp_path, "ucf_crime")
    spec = _spec(published)
    folder = tmp_path / "features" / "Test"
    victim = sorted(folder.glob("*_i3d.npy"))[0]
    array = np.load(victim)
    array[2, 3, 5] = np.nan
    np.save(victim, array)
    (tmp_path / "features" / "Train" / sorted(p.name for p in (tmp_path / "features" / "Train").iterdir())[0]).unlink()
    table = build_segment_index(load_dataset(spec), SEGMENT, on_bad_video="skip")
    reasons = dict(zip(table["video"], table["reason"], strict=True))
    assert "row 2 of the features holds NaN or infinity" in reasons[victim.name[: -len("_i3d.npy")]]
    assert sum("is listed but not found below" in reason for reason in reasons.values()) == 1
    with pytest.raises(GclvadError, match="2 of 18 videos cannot be used"):
        build_segment_index(load_dataset(spec), SEGMENT, on_bad_video="stop")
    with pytest.raises(GclvadError, match="one source of frame labels"):
        load_dataset({**spec, "labels": str(tmp_path / "gt.npy")})
