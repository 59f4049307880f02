"""The second opinion (issue 18, point 3): a segment's distance to the training segments of other
videos, checked against a distance computed pair by pair; an ensemble's file with it, written,
read back and scoring; the variant names that ask for it."""

import re

import numpy as np
import pytest
import torch

from gclvad.errors import GclvadError
from gclvad.features.feature_set import FeatureSet
from gclvad.gcl.config import BadConfigError
from gclvad.stages.settings import ENSEMBLE_PATTERN, ensemble_members, parse_variant, run_settings, variant_pattern


def feature_set(features, videos, segments) -> FeatureSet:
    offsets = np.concatenate([[0], np.cumsum(segments)]).astype(np.int64)
    frames = np.asarray(segments, np.int64) * 16
    return FeatureSet(np.asarray(features, np.float32), videos, offsets, frames, np.zeros(len(videos), np.int64), {})


def pairwise_density(scored: FeatureSet, training: FeatureSet, k: int) -> np.ndarray:
    """Each segment's mean over crops of the distance of its unit crop to the k-th nearest unit
    crop of another training video, pair by pair in plain Python."""

    def unit(row):
        return np.asarray(row, np.float64) / np.linalg.norm(row)

    bank = [
        (training.videos[v], unit(crop))
        for v in range(len(training.videos))
        for row in training.features[training.offsets[v] : training.offsets[v + 1]]
        for crop in row.reshape(-1, row.shape[-1])
    ]
    out = []
    for v, video in enumerate(scored.videos):
        for row in scored.features[scored.offsets[v] : scored.offsets[v + 1]]:
            crops = row.reshape(-1, row.shape[-1])
            kth = [sorted(np.linalg.norm(unit(c) - b) for owner, b in bank if owner != video)[k - 1] for c in crops]
            out.append(np.mean(kth))
    return np.array(out)


@pytest.fixture
def three_crop_videos():
    rng = np.random.default_rng(0)
    training = feature_set(rng.normal(size=(9, 3, 8)), ["a", "b", "c"], [3, 4, 2])
    new = feature_set(rng.normal(size=(5, 3, 8)), ["new", "b"], [2, 3])
    return training, new


@pytest.mark.parametrize("k", [1, 3])
def test_the_distance_is_to_the_kth_nearest_crop_of_another_video(three_crop_videos, k):
    from gclvad.scoring.density import density_scorer

    training, new = three_crop_videos
    density = density_scorer(training, k)
    # a training video is compared with the other videos only; new footage with all of them
    assert np.allclose(density.distances(training), pairwise_density(training, training, k), atol=1e-5)
    assert np.allclose(density.distances(new), pairwise_density(new, training, k), atol=1e-5)
    # rows are independent: a lone row scores as it does among others (a camera's segment)
    lone = feature_set(new.features[:1], ["new"], [1])
    assert density.distances(lone)[0] == density.distances(new)[0]


def test_a_large_bank_keeps_every_nth_crop_and_too_few_crops_are_refused(three_crop_videos):
    from gclvad.scoring.density import DensityScorer, density_scorer, unit_rows

    training, _ = three_crop_videos
    density = density_scorer(training, 1, max_rows=10)  # 27 crops: every 3rd
    assert np.array_equal(density.bank, unit_rows(training.features.reshape(-1, 8))[::3])
    assert density.owners.tolist() == [0, 0, 0, 1, 1, 1, 1, 2, 2]  # rows 0, 3, .., 24 of 9 a, 12 b, 6 c
    with pytest.raises(GclvadError, match="k must be between 1 and the bank's 9 crops"):
        DensityScorer(density.bank, density.owners, density.videos, 10)
    # video a's own crops excluded, 6 are left: k = 7 cannot be met
    with pytest.raises(GclvadError, match="only 6 bank crops of other videos, fewer than k = 7"):
        DensityScorer(density.bank, density.owners, density.videos, 7).distances(training)
    with pytest.raises(GclvadError, match="the bank holds 8-d features, the scored ones are 4-d"):
        density.distances(feature_set(np.ones((1, 4)), ["x"], [1]))


def test_an_ensemble_file_keeps_its_second_opinion(tmp_path, three_crop_videos):
    from gclvad.gcl.models import build_models
    from gclvad.gcl.store import save_models
    from gclvad.gcl.variants import get_variant
    from gclvad.scoring.postprocess import PostprocessConfig
    from gclvad.scoring.scorer import load_scorer, write_ensemble

    training, new = three_crop_videos
    members = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        members.append(tmp_path / f"member{seed}.pt")
        save_models(members[-1], build_models(get_variant("GCL_PT", preset="small"), 8))
    post = PostprocessConfig(ensemble_normalise="z")
    write_ensemble(members, training, post, tmp_path / "plain.pt", {})
    write_ensemble(members, training, post, tmp_path / "density.pt", {}, density_k=2)
    plain, fused = load_scorer(tmp_path / "plain.pt"), load_scorer(tmp_path / "density.pt")
    assert plain.density is None and fused.density.k == 2 and fused.score_name.endswith("with density (k = 2)")

    members_score = plain.segment_scores(new)["score"]
    scores = fused.segment_scores(new)
    assert np.allclose(scores["density"], pairwise_density(new, training, 2), atol=1e-5)
    # the fused score: the mean of two z-scores, each against its own training segments' scores
    levels = np.linspace(0, 1, 1001)
    on_training = plain.segment_scores(training)["score"], pairwise_density(training, training, 2)

    def z(values, reference):
        reference = np.quantile(reference, levels)
        return (values - reference.mean()) / reference.std()

    expected = (z(members_score, on_training[0]) + z(scores["density"], on_training[1])) / 2
    assert np.allclose(scores["score"], expected, atol=1e-4)
    assert np.array_equal(scores["d"], plain.segment_scores(new)["d"])


def test_variant_names_ask_for_the_second_opinion_of_an_ensemble():
    assert parse_variant("GCL_PT~ensemble=3~density=1").density == 1
    assert parse_variant("GCL_PT~density=2~ensemble=3").density == 2
    assert parse_variant("GCL_PT~ensemble=3").density == 0
    # the members are the ensemble's, trained once for both
    assert ensemble_members("GCL_PT~ensemble=3~density=1~loop.epochs=2", 0) == [
        ("GCL_PT~loop.epochs=2", s) for s in (0, 1, 2)
    ]
    assert run_settings({"base": "small"}, "GCL_PT~ensemble=3~density=1").density == 1
    for name in ("GCL_PT~ensemble=3~density=1", "GCL_PT~density=1~ensemble=3", "GCL_PT~ensemble=3"):
        assert re.fullmatch(ENSEMBLE_PATTERN, name)
    assert not re.fullmatch(variant_pattern("gcl"), "GCL_PT~density=1")  # never trained as GCL
    with pytest.raises(BadConfigError, match="density is a second opinion of a seed ensemble"):
        parse_variant("GCL_PT~density=1")
    with pytest.raises(BadConfigError, match="density must be a whole number of nearest neighbours >= 1"):
        parse_variant("GCL_PT~ensemble=3~density=0")
