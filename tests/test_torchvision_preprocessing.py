"""Torchvision backbones see the frames torchvision's own KINETICS400_V1 transforms make
(issue 11, item 14): same bilinear resize without antialiasing, same rounding of the resized
size and of the centre-crop offset, checked end to end on the decoded frames of a generated
video, and the I3D / ResNeXt-101 convention left exactly as it was."""

from __future__ import annotations

import dataclasses
import json
import warnings

import av
import numpy as np
import pytest
import torch
import torchvision.models.video as tv_video

from gclvad.decode.preprocessing import Preprocessing
from gclvad.decode.video import iter_frames, iter_segments
from gclvad.extract.networks.i3d import I3D_PREPROCESSING
from gclvad.extract.networks.registry import build_extractor
from gclvad.extract.networks.resnext import RESNEXT_PREPROCESSING

FRAMES = 16
# 240 x 324: R3D's (128, 171) scales it down (antialiasing matters); Swin's shorter side 256
# gives a long side of 345.6, which torchvision truncates to 345 (rounding gives 346).
SIZE = (240, 324)


@pytest.fixture(scope="module")
def textured_video(tmp_path_factory):
    """Lossless frames with detail at every scale (so that the resize filter matters), moving."""
    rng = np.random.default_rng(0)
    height, width = SIZE
    noise = rng.integers(0, 256, (height, width + FRAMES, 3)).astype(np.float64)
    y, x = np.mgrid[0:height, 0 : width + FRAMES]
    smooth = 127 + 100 * np.sin(x / 9.0)[..., None] * np.cos(y / 13.0)[..., None]
    canvas = np.clip(0.6 * smooth + 0.4 * noise, 0, 255).astype(np.uint8)
    frames = [np.ascontiguousarray(canvas[:, t : t + width]) for t in range(FRAMES)]
    path = tmp_path_factory.mktemp("tv") / "textured.mkv"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("ffv1", rate=25)
        stream.height, stream.width, stream.pix_fmt = height, width, "bgr0"
        for pixels in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")))
        container.mux(stream.encode(None))
    return path


def torchvision_clip(video, weights_enum: str, frames: int) -> torch.Tensor:
    """(3, T, h, w): the first `frames` decoded RGB frames through torchvision's own transform."""
    decoded = torch.from_numpy(np.stack(list(iter_frames(video))[:frames])).permute(0, 3, 1, 2)  # (T, 3, H, W)
    return getattr(tv_video, weights_enum).KINETICS400_V1.transforms()(decoded)


def our_clip(video, preprocessing: Preprocessing, frames: int) -> torch.Tensor:
    """The first segment of `frames` frames, as extraction makes it."""
    return next(iter_segments(video, preprocessing, frames)).clip


def relative_distance(ours: torch.Tensor, reference: torch.Tensor) -> float:
    return float((ours - reference).norm() / reference.norm())


def today(preprocessing: Preprocessing) -> Preprocessing:
    """The convention every extractor had before: FFmpeg's resize, floor crop offset."""
    return dataclasses.replace(preprocessing, antialias=True, rounding="gclvad")


# Swin on 4 frames: a 16-frame clip costs it ~10 s on CI's cores, and the frame count is
# not what is compared.
@pytest.mark.parametrize(
    "name, weights_enum, frames", [("r3d_18", "R3D_18_Weights", 16), ("swin3d_t", "Swin3D_T_Weights", 4)]
)
def test_features_match_torchvision_transforms_on_decoded_frames(textured_video, name, weights_enum, frames):
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        extractor = build_extractor(name, "random", device="cpu")
    reference = torchvision_clip(textured_video, weights_enum, frames)
    ours = our_clip(textured_video, extractor.preprocessing, frames)
    before = our_clip(textured_video, today(extractor.preprocessing), frames)
    assert ours.shape == reference.shape == before.shape
    # The same uint8 pixels, normalised in another order of float operations.
    assert torch.allclose(ours, reference, atol=1e-5, rtol=0)

    features = extractor.extract(torch.stack([reference, ours, before]))
    after_distance = relative_distance(features[1], features[0])
    before_distance = relative_distance(features[2], features[0])
    print(f"{name}: features vs torchvision's transform: before {before_distance:.2e}, after {after_distance:.2e}")
    assert after_distance < 1e-5
    assert before_distance > 100 * after_distance  # the old convention was measurably off


def test_crop_offset_and_resized_size_round_as_torchvision():
    r3d = Preprocessing(size=(128, 171), crop=112, antialias=False, rounding="torchvision")
    assert r3d.crop_offsets(128, 171) == (8, 30)  # int(round(59 / 2)) = 30; floor gave 29
    assert today(r3d).crop_offsets(128, 171) == (8, 29)
    swin = Preprocessing(size=256, crop=224, antialias=False, rounding="torchvision")
    assert swin.resized_shape(240, 324) == (256, 345) and today(swin).resized_shape(240, 324) == (256, 346)


def test_i3d_and_resnext_keep_their_convention_and_descriptions():
    """Their features (the paper's variants, the demo) must not change by a bit: same resize,
    same crop, and the same description stored beside existing features and runs."""
    for preprocessing in (I3D_PREPROCESSING, RESNEXT_PREPROCESSING):
        assert preprocessing.antialias and preprocessing.rounding == "gclvad"
        described = json.loads(preprocessing.describe())
        assert set(described) == {"size", "crop", "scale", "mean", "std"}
    frames = np.random.default_rng(1).integers(0, 256, (4, 171, 229, 3), dtype=np.uint8)
    floor_crop = torch.from_numpy(frames)[:, 29 : 29 + 112, 58 : 58 + 112]
    clip = Preprocessing(size=(171, 229), crop=112).normalize(frames)
    assert torch.equal(clip, floor_crop.permute(3, 0, 1, 2).to(torch.float32))
