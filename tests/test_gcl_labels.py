"""Pseudo-label thresholds and negative-learning targets against hand-computed cases."""

import pytest
import torch

from gclvad.gcl.labels import negative_learning_loss, pseudo_targets, soft_targets, threshold_labels

# mean 0.4, population std sqrt(0.4 / 6) = 0.2582
VALUES = torch.tensor([0.1, 0.2, 0.3, 0.4, 0.5, 0.9])


def test_g_threshold_mean_plus_one_std():
    # mu + sigma = 0.658: only 0.9
    assert threshold_labels(VALUES, 1.0).tolist() == [False, False, False, False, False, True]


def test_d_threshold_mean_plus_a_tenth_std():
    # mu + 0.1 sigma = 0.4258: 0.5 and 0.9, but not the mean itself (0.4)
    assert threshold_labels(VALUES, 0.1).tolist() == [False, False, False, False, True, True]


def test_threshold_uses_population_std():
    # [0, 0, 0, 1]: mean .25, population std .433 -> mu + 1.7 sigma = .986 labels the 1;
    # the sample std (.5) would give 1.1 and label nothing.
    assert threshold_labels(torch.tensor([0.0, 0.0, 0.0, 1.0]), 1.7).tolist() == [False, False, False, True]


def test_equal_values_get_no_anomalous_label():
    assert not threshold_labels(torch.full((5,), 0.3), 0.1).any()


def test_soft_targets_are_min_max_normalised_errors():
    assert soft_targets(torch.tensor([2.0, 4.0, 3.0])).tolist() == [0.0, 1.0, 0.5]
    assert soft_targets(torch.tensor([2.0, 2.0])).tolist() == [0.0, 0.0]


FEATURES = torch.tensor([[0.5, -1.0], [2.0, 3.0], [4.0, 5.0], [-2.0, 0.0]])
ANOMALOUS = torch.tensor([False, True, False, True])


def test_ones_target_replaces_only_anomalous_rows():
    targets = pseudo_targets(FEATURES, ANOMALOUS, "ones")
    assert targets.tolist() == [[0.5, -1.0], [1.0, 1.0], [4.0, 5.0], [1.0, 1.0]]


def test_random_normal_target_is_a_normal_row_of_the_batch():
    generator = torch.Generator().manual_seed(0)
    targets = pseudo_targets(FEATURES, ANOMALOUS, "random_normal", generator=generator)
    normal_rows = [FEATURES[0].tolist(), FEATURES[2].tolist()]
    assert targets[0].tolist() == FEATURES[0].tolist() and targets[2].tolist() == FEATURES[2].tolist()
    assert targets[1].tolist() in normal_rows and targets[3].tolist() in normal_rows
    # over many draws both normal rows are used
    many = torch.zeros(200, 2)
    many[:100] = FEATURES[0]
    many[100:] = FEATURES[2]
    labels = torch.zeros(200, dtype=torch.bool)
    labels[::2] = True
    drawn = pseudo_targets(many, labels, "random_normal", generator=generator)[labels]
    assert {tuple(row) for row in drawn.tolist()} == {tuple(FEATURES[0].tolist()), tuple(FEATURES[2].tolist())}


def test_random_normal_without_normal_rows_keeps_inputs():
    everything = torch.ones(4, dtype=torch.bool)
    assert torch.equal(pseudo_targets(FEATURES, everything, "random_normal"), FEATURES)


def test_gaussian_target_is_input_plus_sigma_times_the_generators_noise():
    sigma = 6.0
    targets = pseudo_targets(FEATURES, ANOMALOUS, "gaussian", sigma, torch.Generator().manual_seed(5))
    noise = torch.randn((2, 2), generator=torch.Generator().manual_seed(5))
    assert torch.equal(targets[~ANOMALOUS], FEATURES[~ANOMALOUS])
    torch.testing.assert_close(targets[ANOMALOUS], FEATURES[ANOMALOUS] + sigma * noise)
    big = pseudo_targets(torch.zeros(20000, 4), torch.ones(20000, dtype=torch.bool), "gaussian", 1.5)
    assert big.std().item() == pytest.approx(1.5, rel=0.02)


def test_negative_learning_loss_by_hand():
    reconstruction = torch.tensor([[0.5, 0.0], [1.0, 2.0], [4.0, 4.0], [0.0, 0.0]])
    # ones: rows' squared errors 1, 1, 1, 2 -> mean 1.25
    assert negative_learning_loss(reconstruction, FEATURES, ANOMALOUS, "ones").item() == pytest.approx(1.25)
    # none: only normal rows 0 and 2 (errors 1 and 1) -> 1.0, whatever the anomalous rows do
    assert negative_learning_loss(reconstruction, FEATURES, ANOMALOUS, "none").item() == pytest.approx(1.0)
    # none with every row anomalous: zero loss that still backpropagates
    grad_input = reconstruction.clone().requires_grad_(True)
    loss = negative_learning_loss(grad_input, FEATURES, torch.ones(4, dtype=torch.bool), "none")
    loss.backward()
    assert loss.item() == 0.0 and torch.equal(grad_input.grad, torch.zeros(4, 2))
