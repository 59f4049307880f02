"""ResNeXt-101 3D (Hara et al.): layout, checkpoint loading, BN folding, bf16, the registry."""

from __future__ import annotations

import hashlib
import warnings

import pytest
import torch

from gclvad.device import resolve_device
from gclvad.errors import GclvadError
from gclvad.extract.networks.base import RandomWeightsWarning
from gclvad.extract.networks.registry import EXTRACTOR_NAMES, build_extractor
from gclvad.extract.networks.resnext import (
    RESNEXT_PREPROCESSING,
    ResNeXt3D,
    build_resnext101,
    load_resnext,
)
from gclvad.extract.networks.speed import count_batchnorms, fold_batchnorm
from gclvad.weights import sha256_file

# A same-family network small enough to run in milliseconds.
SMALL = dict(layers=(1, 2, 1, 1), widths=(8, 16, 32, 64), cardinality=4, stem_channels=8, num_classes=10)


def randomized(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Give every BN non-trivial statistics and affine parameters, so folding and loading matter."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm3d):
                size = module.num_features
                module.running_mean.copy_(torch.randn(size, generator=generator) * 0.1)
                module.running_var.copy_(torch.rand(size, generator=generator) + 0.5)
                module.weight.copy_(torch.rand(size, generator=generator) + 0.5)
                module.bias.copy_(torch.randn(size, generator=generator) * 0.1)
    return model.eval()


def small_model(seed: int = 0) -> ResNeXt3D:
    torch.manual_seed(seed)
    return randomized(ResNeXt3D(**SMALL), seed)


def clips(batch: int, size: int = 32, frames: int = 16, seed: int = 1) -> torch.Tensor:
    return torch.randn(batch, 3, frames, size, size, generator=torch.Generator().manual_seed(seed)) * 50


def save_hara_checkpoint(model: torch.nn.Module, path) -> None:
    """The format of Hara's released checkpoints: DataParallel keys, arch, epoch, optimizer."""
    state = {f"module.{key}": value for key, value in model.state_dict().items()}
    torch.save(
        {
            "arch": "resnext-101",
            "epoch": 200,
            "state_dict": state,
            "optimizer": {"state": {}, "param_groups": [{"lr": 0.1, "momentum": 0.9, "params": [0, 1]}]},
        },
        path,
    )


def expected_resnext101_keys() -> set[str]:
    """Hara's state-dict keys, written out from the architecture description."""

    def bn(prefix):
        return {f"{prefix}.{name}" for name in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")}

    keys = {"conv1.weight", "fc.weight", "fc.bias"} | bn("bn1")
    for stage, blocks in enumerate((3, 4, 23, 3), start=1):
        for block in range(blocks):
            prefix = f"layer{stage}.{block}"
            for i in (1, 2, 3):
                keys |= {f"{prefix}.conv{i}.weight"} | bn(f"{prefix}.bn{i}")
        keys |= {f"layer{stage}.0.downsample.0.weight"} | bn(f"layer{stage}.0.downsample.1")
    return keys


def test_resnext101_layout_matches_hara():
    model = ResNeXt3D().eval()
    assert set(model.state_dict()) == expected_resnext101_keys()
    assert sum(p.numel() for p in model.parameters()) == 48_340_816  # 48.3M incl. fc
    assert model.conv1.kernel_size == (7, 7, 7) and model.conv1.stride == (1, 2, 2)
    assert model.layer1[0].conv2.groups == 32 and model.layer1[0].conv2.out_channels == 128
    assert model.layer4[0].conv3.out_channels == 2048 and model.layer4[0].conv2.stride == (2, 2, 2)
    assert model.layer2[0].downsample[0].kernel_size == (1, 1, 1)
    model.last_fc = False
    with torch.inference_mode():
        features = model(clips(1, 112))
        scores = model.fc(features)
    assert features.shape == (1, 2048) and scores.shape == (1, 400)


def test_checkpoint_round_trip_reproduces_outputs(tmp_path):
    model = small_model()
    path = tmp_path / "resnext-small.pth"
    save_hara_checkpoint(model, path)
    loaded = load_resnext(path, **SMALL)
    with torch.inference_mode():
        assert torch.equal(loaded(clips(2)), model(clips(2)))
    # A fresh network differs, so equality above means the weights were loaded.
    with torch.inference_mode():
        assert not torch.allclose(ResNeXt3D(**SMALL).eval()(clips(2)), model(clips(2)))


def test_bare_state_dict_and_old_checkpoints_without_counters_load(tmp_path):
    model = small_model()
    state = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    path = tmp_path / "bare.pth"
    torch.save(state, path)
    loaded = load_resnext(path, **SMALL)
    with torch.inference_mode():
        assert torch.equal(loaded(clips(1)), model(clips(1)))


def test_legacy_serialization_loads(tmp_path):
    """Hara's files predate the zip format (PyTorch < 1.6); weights_only loading reads both."""
    model = small_model(seed=2)
    path = tmp_path / "legacy.pth"
    state = {f"module.{k}": v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    torch.save(
        {"arch": "resnext-101", "epoch": 1, "state_dict": state, "optimizer": {}},
        path,
        _use_new_zipfile_serialization=False,
    )
    with torch.inference_mode():
        assert torch.equal(load_resnext(path, **SMALL)(clips(1)), model(clips(1)))


def test_partial_checkpoint_lists_missing_keys(tmp_path):
    state = small_model().state_dict()
    partial = {k: v for k, v in state.items() if not k.startswith("layer4")}
    path = tmp_path / "partial.pth"
    torch.save({"arch": "resnext-101", "state_dict": partial}, path)
    with pytest.raises(GclvadError) as caught:
        load_resnext(path, **SMALL)
    message = str(caught.value)
    missing = (
        len(state) - len(partial) - sum(k.startswith("layer4") and k.endswith("num_batches_tracked") for k in state)
    )
    assert str(path) in message and f"{missing} missing keys" in message
    assert "layer4.0.conv1.weight" in message


def test_wrong_shapes_and_extra_keys_are_listed(tmp_path):
    state = small_model().state_dict()
    state["fc.weight"] = torch.zeros(3, 3)
    state["head.extra"] = torch.zeros(1)
    path = tmp_path / "odd.pth"
    torch.save(state, path)
    with pytest.raises(GclvadError, match=r"1 unexpected keys: head.extra.*1 shape mismatches: fc.weight"):
        load_resnext(path, **SMALL)


def test_real_layout_rejects_small_checkpoint(tmp_path):
    path = tmp_path / "small.pth"
    save_hara_checkpoint(small_model(), path)
    with pytest.raises(GclvadError, match="shape mismatches"):
        load_resnext(path)


def test_missing_file_says_where_it_belongs(tmp_path):
    with pytest.raises(GclvadError) as caught:
        load_resnext(tmp_path / "nowhere.pth")
    message = str(caught.value)
    assert "nowhere.pth" in message and "extractors.resnext101.weights" in message
    assert "video-classification-3d-cnn-pytorch" in message


def test_not_a_weights_file(tmp_path):
    path = tmp_path / "text.pth"
    path.write_text("hello")
    with pytest.raises(GclvadError, match="cannot be read as a PyTorch weights file"):
        load_resnext(path, **SMALL)


def test_batchnorm_folding_is_exact_in_fp32():
    model = small_model()
    model.last_fc = False
    folded = fold_batchnorm(model)
    assert count_batchnorms(model) == 3 * 5 + 4 + 1 and count_batchnorms(folded) == 0
    with torch.inference_mode():
        reference, fast = model(clips(2)), folded(clips(2))
    assert reference.shape == (2, 128)
    assert (fast - reference).norm() / reference.norm() < 1e-5


def test_extractor_fp32_and_bf16_match_unoptimized(tmp_path):
    model = small_model()
    path = tmp_path / "small.pth"
    save_hara_checkpoint(model, path)
    model.last_fc = False
    with torch.inference_mode():
        reference = model(clips(3))
    fp32 = build_resnext101(path, "cpu", "fp32", **SMALL)
    bf16 = build_resnext101(path, "cpu", "bf16", **SMALL)
    assert fp32.dim == 128 and fp32.weights_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert not fp32.weights_random and fp32.preprocessing == RESNEXT_PREPROCESSING
    for extractor, tolerance in ((fp32, 1e-5), (bf16, 5e-2)):
        features = extractor.extract(clips(3))
        assert features.dtype == torch.float32 and features.device.type == "cpu"
        assert (features - reference).norm() / reference.norm() < tolerance
    assert not torch.equal(bf16.extract(clips(3)), fp32.extract(clips(3)))  # bf16 really ran


def test_random_weights_warn_and_are_marked():
    with pytest.warns(RandomWeightsWarning, match="RANDOM"):
        extractor = build_extractor("resnext101", "random", "cpu")
    assert extractor.weights_random and extractor.weights_sha256 == "random"
    assert extractor.dim == 2048 and extractor.name == "resnext101"
    assert extractor.extract(clips(1, 112)).shape == (1, 2048)


def test_registry_rejects_unknown_and_absent_weights(tmp_path):
    with pytest.raises(GclvadError, match=r"known extractors are .*resnext101.*i3d.*swin3d_t"):
        build_extractor("resnet9000", "random")
    with pytest.raises(GclvadError, match="no weights given"):
        build_extractor("resnext101", None)
    with pytest.raises(GclvadError, match="does not exist"):
        build_extractor("resnext101", tmp_path / "random")  # a Path named random is a file
    assert {"resnext101", "i3d", "r3d_18", "mvit_v2_s"} <= set(EXTRACTOR_NAMES)


def test_registry_builds_i3d_lazily():
    with pytest.warns(RandomWeightsWarning):
        extractor = build_extractor("i3d", "random", "cpu")
    assert extractor.name == "i3d" and extractor.dim == 1024 and extractor.weights_random


def test_sha256_file_reads_in_chunks(tmp_path):
    path = tmp_path / "blob.bin"
    data = bytes(range(256)) * 1000
    path.write_bytes(data)
    assert sha256_file(path, chunk_bytes=1000) == hashlib.sha256(data).hexdigest()


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(GclvadError, match="unknown device"):
        resolve_device("gpu")
    if not torch.cuda.is_available():
        with pytest.raises(GclvadError, match="no usable CUDA"):
            resolve_device("cuda:0")


def test_unknown_precision():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RandomWeightsWarning)
        with pytest.raises(GclvadError, match="unknown precision"):
            build_extractor("resnext101", "random", "cpu", "fp8")
