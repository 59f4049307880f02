"""NaN and infinity never flow silently (issue 11, item 1), and a broken models file says what
it should be (item 9): the feature store, TD cleaning, training, score files and `gclvad
score` each stop at the first non-finite number, naming where it is."""

from __future__ import annotations

import warnings
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import torch
from videos import make_video

from gclvad.errors import GclvadError
from gclvad.features.feature_set import load_feature_set
from gclvad.features.files import merge_video_features, read_video_features, write_video_features

ATTRS = {"extractor": "r3d_18", "weights_sha256": "random", "segment_length": 16, "frames": 64, "padded_tail": 0}


def h5_part(path: Path, features: np.ndarray) -> Path:
    """A per-video feature file written past the store's checks, as a damaged or foreign one."""
    with h5py.File(path, "w") as out:
        out.create_dataset("features", data=features)
        for key, value in ATTRS.items():
            out.attrs[key] = value
    return path


def features_with_nan(row: int = 2) -> np.ndarray:
    values = np.random.default_rng(0).standard_normal((4, 8)).astype(np.float32)
    values[row, 5] = np.nan
    return values


# ---------------------------------------------------------------- the feature store


def test_reading_a_feature_file_with_nan_names_file_and_segment(tmp_path):
    part = h5_part(tmp_path / "v.h5", features_with_nan(row=2))
    with pytest.raises(GclvadError, match=r"v\.h5: features hold 1 NaN/inf values \(in segment\(s\) \[2\]\)"):
        read_video_features(part)


def test_merging_refuses_a_part_with_nan_and_writes_nothing(tmp_path):
    good = tmp_path / "good.h5"
    write_video_features(good, np.ones((4, 8), np.float32), ATTRS)
    bad = h5_part(tmp_path / "bad.h5", features_with_nan(row=3))
    merged = tmp_path / "merged.h5"
    with pytest.raises(
        GclvadError, match=r"bad\.h5: features of video bad hold 1 NaN/inf values \(in segment\(s\) \[3\]\)"
    ):
        merge_video_features({"good": good, "bad": bad}, merged)
    assert not merged.exists() and list(tmp_path.glob(".merged*")) == []


def test_loading_a_merged_file_with_nan_names_the_video(tmp_path):
    for video in ("a", "b"):
        write_video_features(tmp_path / f"{video}.h5", np.ones((4, 8), np.float32), ATTRS)
    merged = tmp_path / "merged.h5"
    merge_video_features({v: tmp_path / f"{v}.h5" for v in "ab"}, merged)
    with h5py.File(merged, "r+") as out:
        out["videos/b/features"][1, 0] = np.inf
    assert load_feature_set(merged, ["a"]).features.shape == (4, 8)  # the clean video still loads
    with pytest.raises(
        GclvadError, match=r"merged\.h5: features of video b hold 1 NaN/inf values \(in segment\(s\) \[1\]\)"
    ):
        load_feature_set(merged)


# ---------------------------------------------------------------- TD cleaning and training


def test_td_cleaning_refuses_nan_instead_of_keeping_it_as_a_first_segment():
    from gclvad.cleaning import temporal_difference_mask, temporal_differences

    features = np.random.default_rng(0).standard_normal((6, 4))
    video, position = np.array([0, 0, 0, 1, 1, 1]), np.array([0, 1, 2, 0, 1, 2])
    _, first = temporal_differences(features, video, position)
    assert first.tolist() == [True, False, False, True, False, False]
    features[4, 1] = np.nan
    with pytest.raises(
        GclvadError, match="1 feature row\\(s\\) hold NaN or infinity, the first is segment 1 of video 1"
    ):
        temporal_difference_mask(features, video, position)


@pytest.mark.parametrize("variant, stage", [("AE_AllData", "autoencoder"), ("GCL_B", "gcl_loop")])
def test_training_stops_at_the_first_non_finite_loss(variant, stage):
    from gclvad.gcl.data import TrainingData
    from gclvad.gcl.train import NonFiniteLossError, train
    from gclvad.gcl.variants import get_variant

    # Finite but extreme features: their squared reconstruction error overflows float32.
    features = (np.random.default_rng(0).standard_normal((64, 8)) * 1e20).astype(np.float32)
    data = TrainingData(features, np.repeat(np.arange(4), 16), np.tile(np.arange(16), 4))
    config = get_variant(
        variant, preset="small", **{"pretrain_g.epochs": 1, "loop.epochs": 1, "min_steps_per_stage": 0}
    )
    with pytest.raises(
        NonFiniteLossError, match=f"training stage {stage}, epoch 1, step 1 of 2: loss_g = inf"
    ) as caught:
        train(config, data, seed=0)
    assert "lower optimiser.lr" in str(caught.value)


# ---------------------------------------------------------------- score files


def test_no_scores_file_or_csv_is_written_with_nan(tmp_path):
    from gclvad.scoring.frames import write_scores, write_scores_csv

    scores = {"score": np.array([0.1, np.nan, 0.3]), "g": np.array([1.0, 2.0, 3.0])}
    with pytest.raises(
        GclvadError, match="video clip: 1 'score' frame scores are NaN or infinite; no scores are written"
    ):
        write_scores(tmp_path / "scores.h5", {"clip": scores})
    with pytest.raises(GclvadError, match="NaN or infinite"):
        write_scores_csv(tmp_path / "clip.csv", scores, fps=25.0)
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- gclvad score


def scoring_run(folder: Path, broken: bool = False) -> Path:
    """A run folder as the workflow leaves it (models.pt and its record), on r3d_18 random features."""
    from gclvad.extract.networks.torchvision_models import MODELS
    from gclvad.gcl.models import build_models
    from gclvad.gcl.store import save_models
    from gclvad.gcl.variants import get_variant

    torch.manual_seed(0)
    models = build_models(get_variant("GCL_PT", preset="small"), 512)
    if broken:  # what a run trained into NaN would have held before training refused NaN losses
        with torch.no_grad():
            next(models.discriminator.parameters()).fill_(float("nan"))
    metadata = {
        "extractor": {"name": "r3d_18", "weights": "random", "batch_size": 2, "dtype": "float32"},
        "segment_length": 16,
        "weights_sha256": "random",
        "preprocessing": MODELS["r3d_18"].preprocessing.describe(),
    }
    save_models(folder / "models.pt", models, metadata)
    return folder


def score(run: Path, video: Path, out: Path) -> int:
    from gclvad.cli.main import main

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return main(["score", str(run), str(video), "-o", str(out), "--device", "cpu"])


def test_score_extracts_again_over_a_cached_feature_file_holding_nan(tmp_path):
    run, video, out = scoring_run(tmp_path), make_video(tmp_path / "clip.mkv", 32), tmp_path / "out"
    assert score(run, video, out) == 0
    first = pd.read_csv(out / "clip.csv")
    cache = out / "features" / "clip.h5"
    with h5py.File(cache, "r+") as stored:  # damaged in place: attributes still match the run
        stored["features"][1, 3] = np.nan
    assert score(run, video, out) == 0
    again = pd.read_csv(out / "clip.csv")
    assert not again.isna().any().any() and len(again) == 32
    pd.testing.assert_frame_equal(again, first)
    assert np.isfinite(read_video_features(cache)[0]).all()  # the cache was extracted again


def test_score_with_a_run_whose_networks_are_nan_fails_and_writes_no_csv(tmp_path, capsys):
    run, video, out = scoring_run(tmp_path, broken=True), make_video(tmp_path / "clip.mkv", 32), tmp_path / "out"
    assert score(run, video, out) == 2
    assert (
        "gclvad: error: video clip: 32 'score' frame scores are NaN or infinite; no scores are written"
        in capsys.readouterr().err
    )
    assert not (out / "clip.csv").exists() and not (out / "clip.png").exists()


# ---------------------------------------------------------------- item 9: models files


class NotPlain:
    """Pickled by reference: loading it would import and run code of this module."""


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "empty file \\(0 bytes\\) where a GCL models file \\(gclvad-gcl-models/1\\) was expected"),
        (
            b"PK\x03\x04 not a zip archive at all" * 10,
            "cannot be read as a GCL models file .*damaged or another kind of file",
        ),
        (
            bytes(np.random.default_rng(0).integers(0, 256, 300, np.uint8)),
            "cannot be read as a GCL models file .*damaged",
        ),
        (None, "refused for safety: it holds a pickled Python object \\(test_non_finite.NotPlain\\), not only tensors"),
    ],
)
def test_a_broken_models_file_says_what_it_should_be_and_what_writes_it(tmp_path, content, message):
    from gclvad.gcl.store import ModelsFileError, load_models

    path = tmp_path / "models.pt"
    if content is None:
        torch.save({"format": "gclvad-gcl-models/1", "trap": NotPlain()}, path)
    else:
        path.write_bytes(content)
    with pytest.raises(ModelsFileError, match=message) as caught:
        load_models(path)
    text = str(caught.value)
    assert text.startswith(f"{path}: ")
    assert "the workflow's training rules write it (models.pt: the run's last training stage" in text
    assert "weights_only" not in text
