"""Score post-processing: windows to frames, Gaussian smoothing, rank normalisation, crops."""

from __future__ import annotations

import numpy as np
import pytest

from gclvad.errors import GclvadError
from gclvad.scoring.frames import gaussian_kernel, gaussian_smooth, segment_to_frame_scores, window_frame_scores
from gclvad.scoring.postprocess import PostprocessConfig, combine_crops, normalised, rank_normalise, reference_ranks


def test_non_overlapping_windows_are_the_papers_protocol():
    scores = np.array([0.1, 0.7, 0.3])
    # 40 frames: the last window reaches past the end (padded tail), as extraction pads it.
    assert np.array_equal(window_frame_scores(scores, [0, 16, 32], 40, 16), segment_to_frame_scores(scores, 40, 16))


def test_overlapping_windows_average_every_window_covering_a_frame():
    # Windows of 4 frames every 2 frames over 8 frames: [0,4) [2,6) [4,8).
    frames = window_frame_scores([1.0, 3.0, 8.0], [0, 2, 4], 8, 4)
    assert frames.tolist() == [1, 1, 2, 2, 5.5, 5.5, 8, 8]


def test_windows_must_cover_every_frame():
    with pytest.raises(GclvadError, match="frame 4 of 10 lies in no window"):
        window_frame_scores([1.0, 2.0], [0, 6], 10, 4)


def test_gaussian_smoothing_matches_its_definition_and_keeps_constants():
    rng = np.random.default_rng(0)
    scores = rng.uniform(size=50)
    smoothed = gaussian_smooth(scores, 3.0)
    offsets = np.arange(-12, 13)
    weights = np.exp(-0.5 * (offsets / 3.0) ** 2)
    weights /= weights.sum()
    # An interior frame is the plain weighted sum of its neighbours.
    assert smoothed[25] == pytest.approx(float(np.dot(weights, scores[25 + offsets])))
    # Mirrored edges: a constant video stays constant, also when the kernel is longer than it.
    assert np.allclose(gaussian_smooth(np.full(5, 0.4), 16.0), 0.4)
    # sigma 0 changes nothing; mass is conserved away from the edges.
    assert np.array_equal(gaussian_smooth(scores, 0.0), scores)
    assert gaussian_kernel(3.0).sum() == pytest.approx(1.0) and len(gaussian_kernel(3.0)) == 25
    with pytest.raises(GclvadError, match="sigma"):
        gaussian_smooth(scores, -1.0)


def test_smoothing_lifts_a_long_event_above_isolated_spikes():
    scores = np.zeros(200)
    scores[[20, 60, 140]] = 1.0  # isolated spikes in normal footage
    scores[90:130:3] = 0.8  # an event scored high in every third frame
    smoothed = gaussian_smooth(scores, 8.0)
    assert smoothed[90:130].min() > smoothed[[20, 60, 140]].max()


def test_reference_ranks_are_the_empirical_cdf_with_ties_counted_half():
    reference = [0.0, 1.0, 1.0, 2.0]
    assert reference_ranks([-1.0, 0.0, 1.0, 1.5, 3.0], reference).tolist() == [0.0, 0.125, 0.5, 0.75, 1.0]
    ranked = rank_normalise([5.0, 1.0, 3.0])
    assert ranked.tolist() == pytest.approx([5 / 6, 1 / 6, 3 / 6])
    # Monotone: ranks never reorder scores (so one network's AUC is unchanged).
    scores = np.random.default_rng(1).normal(size=100)
    assert (np.diff(reference_ranks(np.sort(scores), scores[:30])) >= 0).all()


def test_crops_normalised_per_position_before_the_max():
    # Crop 1 scores everything high (e.g. a busy part of the picture); crop 0 alone sees the event.
    reference = np.column_stack([np.linspace(0.0, 0.2, 11), np.linspace(0.8, 1.0, 11)])
    scores = np.array([[0.05, 0.95], [0.2, 0.82]])  # segment 1: crop 0 at its top
    assert combine_crops(scores, reduce="max", normalise="none").tolist() == [0.95, 0.82]
    ranked = combine_crops(scores, reference, reduce="max", normalise="rank")
    assert ranked[1] > ranked[0]
    z = combine_crops(scores, reference, reduce="mean", normalise="z")
    assert z[1] > z[0]
    with pytest.raises(GclvadError, match="reference scores"):
        combine_crops(scores, None, normalise="rank")


def test_normalised_puts_scores_on_the_reference_scale():
    reference = np.array([0.0, 1.0, 2.0, 3.0])  # mean 1.5, std sqrt(1.25)
    scores = np.array([1.5, 3.0])
    assert np.allclose(normalised(scores, reference, "z"), [0.0, 1.5 / np.sqrt(1.25)])
    assert normalised(scores, reference, "rank").tolist() == [0.5, 0.875]
    assert normalised(scores, reference, "none").tolist() == [1.5, 3.0]
    assert normalised(scores, np.ones(3), "z").tolist() == [0.5, 2.0]  # a flat reference: spread 1
    with pytest.raises(GclvadError, match="normalisation must be one of none, rank, z"):
        normalised(scores, reference, "minmax")


class _FixedMember:
    """A stand-in ensemble member: the same segment scores whatever it is given."""

    def __init__(self, scores, postprocess):
        self.scores, self.postprocess, self.dim = np.asarray(scores, np.float64), postprocess, 4

    def segment_scores(self, feature_set):
        return {"score": self.scores, "d": self.scores}


@pytest.mark.parametrize("how", ["z", "rank", "none"])
def test_an_ensemble_averages_its_members_each_on_its_own_training_scale(how):
    from gclvad.scoring.scorer import EnsembleScorer

    post = PostprocessConfig(ensemble_normalise=how)
    # member b scores like member a, ten times larger: on their own scales they agree
    members = [_FixedMember([1.0, 3.0], post), _FixedMember([10.0, 30.0], post)]
    references = [np.array([0.0, 1.0, 2.0, 3.0]), np.array([0.0, 10.0, 20.0, 30.0])]
    combined = EnsembleScorer(members, references).segment_scores(None)["score"]
    expected = {
        "z": [(1.0 - 1.5) / np.sqrt(1.25), 1.5 / np.sqrt(1.25)],
        "rank": [0.375, 0.875],
        "none": [5.5, 16.5],
    }[how]
    assert np.allclose(combined, expected)
    assert PostprocessConfig().ensemble_normalise == "z"
