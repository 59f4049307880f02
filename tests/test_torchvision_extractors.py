"""Torchvision video backbones as extractors: preprocessing, feature size, weights files."""

from __future__ import annotations

import hashlib
import warnings

import pytest
import torch
import torchvision.models.video as tv_video
from torch import nn

from gclvad.errors import GclvadError
from gclvad.extract.networks.base import RandomWeightsWarning
from gclvad.extract.networks.registry import build_extractor
from gclvad.extract.networks.speed import count_batchnorms
from gclvad.extract.networks.torchvision_models import MODELS, torchvision_preprocessing

FEATURE_DIMS = {"r3d_18": 512, "mc3_18": 512, "r2plus1d_18": 512, "s3d": 1024, "mvit_v2_s": 768, "swin3d_t": 768}


def random_extractor(name: str, precision: str = "fp32"):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RandomWeightsWarning)
        return build_extractor(name, "random", "cpu", precision)


def crop_of(extractor) -> int:
    crop = extractor.preprocessing.crop
    return crop if isinstance(crop, int) else crop[0]


@pytest.mark.parametrize("name", list(FEATURE_DIMS))
def test_preprocessing_copies_torchvision_transforms(name):
    assert MODELS[name].preprocessing == torchvision_preprocessing(name)


def test_preprocessing_values():
    assert MODELS["r3d_18"].preprocessing.size == (128, 171) and MODELS["r3d_18"].preprocessing.crop == 112
    assert MODELS["s3d"].preprocessing.size == (256, 256) and MODELS["s3d"].preprocessing.crop == 224
    # torchvision resizes the shorter side to 256 for MViT and Swin (resize_size [256])
    assert MODELS["mvit_v2_s"].preprocessing.size == 256
    assert MODELS["swin3d_t"].preprocessing.mean == (0.485, 0.456, 0.406)
    assert MODELS["r2plus1d_18"].preprocessing.scale == pytest.approx(1 / 255)


@pytest.mark.parametrize("name", list(FEATURE_DIMS))
def test_builds_and_extracts(name):
    extractor = random_extractor(name)
    assert extractor.dim == FEATURE_DIMS[name] and extractor.weights_random
    size = crop_of(extractor)
    features = extractor.extract(torch.randn(1, 3, 16, size, size))
    assert features.shape == (1, FEATURE_DIMS[name]) and features.dtype == torch.float32
    assert torch.isfinite(features).all()


@pytest.mark.parametrize("name", ["r3d_18", "mc3_18", "r2plus1d_18"])
def test_weights_round_trip_matches_plain_torchvision(tmp_path, name):
    torch.manual_seed(0)
    network = getattr(tv_video, name)(weights=None).eval()
    with torch.no_grad():  # non-trivial BN statistics so that folding and loading matter
        for module in network.modules():
            if isinstance(module, nn.BatchNorm3d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    path = tmp_path / f"{name}.pth"
    torch.save(network.state_dict(), path)
    extractor = build_extractor(name, path, "cpu")
    assert extractor.weights_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert not extractor.weights_random
    assert count_batchnorms(extractor.module) == 0  # folded
    clips = torch.randn(2, 3, 8, 112, 112, generator=torch.Generator().manual_seed(3))
    network.fc = nn.Identity()
    with torch.inference_mode():
        reference = network(clips)
    features = extractor.extract(clips)
    assert (features - reference).norm() / reference.norm() < 1e-5


def test_wrong_network_weights_are_rejected(tmp_path):
    path = tmp_path / "mc3.pth"
    torch.save(tv_video.mc3_18(weights=None).state_dict(), path)
    with pytest.raises(GclvadError, match=r"mc3\.pth.*shape mismatches"):
        build_extractor("r3d_18", path, "cpu")


def test_missing_weights_file_names_config_key_and_origin(tmp_path):
    with pytest.raises(GclvadError) as caught:
        build_extractor("swin3d_t", tmp_path / "swin.pth", "cpu")
    message = str(caught.value)
    assert "extractors.swin3d_t.weights" in message and "Swin3D_T_Weights" in message


def test_mvit_requires_sixteen_frames():
    assert MODELS["mvit_v2_s"].required_frames == 16


def test_r3d_bf16_close_to_fp32(tmp_path):
    path = tmp_path / "r3d.pth"
    torch.manual_seed(0)
    torch.save(tv_video.r3d_18(weights=None).state_dict(), path)
    fp32, bf16 = build_extractor("r3d_18", path, "cpu"), build_extractor("r3d_18", path, "cpu", "bf16")
    assert next(bf16.module.parameters()).dtype == torch.bfloat16
    clips = torch.randn(2, 3, 8, 112, 112, generator=torch.Generator().manual_seed(5))
    reference, fast = fp32.extract(clips), bf16.extract(clips)
    assert fast.dtype == torch.float32 and not torch.equal(fast, reference)
    assert (fast - reference).norm() / reference.norm() < 5e-2


def test_random_weights_give_the_same_network_in_every_build():
    # one extraction job per video: all must use the same untrained network
    import warnings

    from gclvad.extract.networks.registry import build_extractor

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        first = build_extractor("r3d_18", "random", device="cpu")
        torch.manual_seed(1234)  # whatever the global RNG holds
        second = build_extractor("r3d_18", "random", device="cpu")
    clip = torch.rand(1, 3, 16, 112, 112)
    assert torch.equal(first.extract(clip), second.extract(clip))
