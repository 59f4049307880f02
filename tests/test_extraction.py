"""Per-video extraction: real H.264 video in, HDF5 feature file out, resumable."""

from __future__ import annotations

import json
import threading
import time
import warnings

import numpy as np
import pytest
import torch
from videos import make_h264

from gclvad.decode.video import iter_segments
from gclvad.errors import BadVideoError, GclvadError
from gclvad.extract.networks.base import RandomWeightsWarning
from gclvad.extract.networks.resnext import build_resnext101
from gclvad.extract.one_video import BackgroundIterator, extract_video
from gclvad.features.files import read_video_features

SMALL = dict(layers=(1, 1, 1, 1), widths=(8, 16, 32, 64), cardinality=4, stem_channels=8, num_classes=10)


@pytest.fixture(scope="module")
def extractor():
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RandomWeightsWarning)
        return build_resnext101("random", "cpu", "fp32", **SMALL)


@pytest.fixture
def video(tmp_path):
    """40 frames of 64x80 H.264 with a moving ramp, so segments differ."""
    return make_h264(tmp_path / "clip.mp4", 40, (64, 80), pattern="ramp")


def direct_features(extractor, video, segment_length=16):
    segments = list(iter_segments(video, extractor.preprocessing, segment_length))
    return extractor.extract(torch.stack([s.clip for s in segments])).numpy(), segments


def test_extract_video_writes_rows_and_attributes(extractor, video, tmp_path):
    out = tmp_path / "features" / "clip.h5"
    summary = extract_video(extractor, video, out, segment_length=16, batch_size=2, dtype="float32")
    features, attrs = read_video_features(out)
    assert features.shape == (3, extractor.dim) == (3, 128)  # ceil(40 / 16) segments
    assert attrs["frames"] == 40 and attrs["padded_tail"] == 8 and attrs["segment_length"] == 16
    assert attrs["extractor"] == "resnext101" and attrs["weights_sha256"] == "random"
    assert attrs["weights_random"] is True and attrs["fps"] == pytest.approx(25.0) and attrs["precision"] == "fp32"
    assert json.loads(attrs["preprocessing"])["size"] == 112
    assert summary["segments"] == 3 and summary["frames"] == 40
    expected, segments = direct_features(extractor, video)
    assert [s.real_frames for s in segments] == [16, 16, 8]
    # batches of 2 and 1 against one batch of 3: same numbers up to rounding of the kernels
    np.testing.assert_allclose(features, expected, rtol=1e-4, atol=1e-5)
    assert np.abs(features[0] - features[1]).max() > 1e-4  # the content moves


def test_float16_storage(extractor, video, tmp_path):
    out = tmp_path / "half.h5"
    extract_video(extractor, video, out, batch_size=4, dtype="float16", fps=10.0)
    features, attrs = read_video_features(out)
    expected, _ = direct_features(extractor, video)
    assert attrs["fps"] == 10.0
    np.testing.assert_allclose(features, expected, rtol=2e-3, atol=1e-3)


def test_bad_video_raises_and_writes_nothing(extractor, tmp_path):
    source = tmp_path / "notes.mp4"
    source.write_text("not a video\n" * 20)
    out = tmp_path / "notes.h5"
    with pytest.raises(BadVideoError, match=r"notes.mp4"):
        extract_video(extractor, source, out)
    assert not out.exists() and list(tmp_path.iterdir()) == [source]


def test_segment_length_must_fit_the_extractor(extractor, video, tmp_path):
    extractor.required_frames = 16
    try:
        with pytest.raises(GclvadError, match="only accepts 16-frame segments"):
            extract_video(extractor, video, tmp_path / "x.h5", segment_length=8)
    finally:
        extractor.required_frames = None


def test_background_iterator_overlaps_and_forwards_errors():
    produced = []

    def numbers():
        for i in range(5):
            produced.append(i)
            yield i
        raise ValueError("decoder broke")

    with pytest.raises(ValueError, match="decoder broke"), BackgroundIterator(numbers, max_queued=2) as items:
        for item in items:
            time.sleep(0.01)
            # the producer runs ahead of the consumer, by at most the queue size (+1 in hand)
            assert item <= len(produced) - 1 <= item + 3
    assert produced == [0, 1, 2, 3, 4]


def test_background_iterator_stops_when_consumer_leaves():
    started = threading.Event()

    def endless():
        i = 0
        while True:
            started.set()
            yield i
            i += 1

    with BackgroundIterator(endless, max_queued=2) as items:
        assert next(iter(items)) == 0
    # __exit__ joined the producer thread: nothing named gclvad-decode is left running
    assert not any(t.name == "gclvad-decode" for t in threading.enumerate())


def test_three_crops_and_overlapping_windows_are_extracted_as_the_clips_say(extractor, tmp_path):
    """(S, C, d) features, each crop the network's features of that crop's clip, in windows
    every `stride` frames; the shard runner writes the very same bytes."""
    import copy

    from gclvad.extract.decoders import DecoderPool
    from gclvad.extract.one_video import compute_features
    from gclvad.extract.shards import VideoJob, extract_shard

    video = make_h264(tmp_path / "wide.mp4", 40, (32, 64), pattern="ramp")
    three = copy.copy(extractor)
    three.preprocessing = extractor.preprocessing.with_crops("three")
    features, frames, padded = compute_features(three, video, segment_length=16, batch_size=4, stride=8)
    segments = list(iter_segments(video, three.preprocessing, 16, 8))
    assert features.shape == (len(segments), 3, 128) and (frames, padded) == (40, 0)
    assert [s.first_frame for s in segments] == [0, 8, 16, 24]
    clips = torch.stack([crop for s in segments for crop in s.clip])  # (S * 3, 3, T, H, W)
    expected = np.concatenate([three.extract(clips[i : i + 4]).numpy() for i in range(0, len(clips), 4)])
    np.testing.assert_allclose(features.reshape(-1, 128), expected, rtol=1e-5, atol=1e-6)
    # the middle crop is the centre crop of the one-crop extractor
    centre, _, _ = compute_features(extractor, video, segment_length=16, batch_size=4, stride=8)
    np.testing.assert_allclose(features[:, 1], centre, rtol=1e-5, atol=1e-6)
    with DecoderPool(1, max_queued=8) as pool:
        job = VideoJob("wide", video, tmp_path / "shard" / "wide.h5", len(segments))
        extract_shard(three, [job], pool, segment_length=16, batch_size=4, dtype="float32", stride=8, progress=False)
    stored, attrs = read_video_features(job.out_path)
    assert np.array_equal(stored, features) and attrs["segment_stride"] == 8
    assert json.loads(attrs["preprocessing"])["crops"] == "three"


def test_tiles_and_the_motion_crop_see_the_frame_upscaled_twice(extractor, tmp_path):
    """Six tiles a segment, each the network's features of that tile of the upscaled frame, and
    one motion crop; both stored as the shard runner writes them, and the tiles' features have
    no centre crop to keep."""
    import copy

    from gclvad.extract.decoders import DecoderPool
    from gclvad.extract.one_video import compute_features
    from gclvad.extract.shards import VideoJob, extract_shard
    from gclvad.features.feature_set import load_feature_set
    from gclvad.features.files import merge_video_features

    video = make_h264(tmp_path / "wide.mp4", 32, (48, 64), pattern="ramp")
    for mode, crops in (("tiles", 6), ("motion", 1)):
        seeing = copy.copy(extractor)
        seeing.preprocessing = extractor.preprocessing.with_crops(mode)
        features, _, _ = compute_features(seeing, video, segment_length=16, batch_size=4)
        segments = list(iter_segments(video, seeing.preprocessing, 16))
        assert segments[0].clip.shape[-2:] == (112, 112)  # the network's native size ...
        assert seeing.preprocessing.size == 2 * extractor.preprocessing.size  # ... of a frame twice as large
        clips = torch.cat([s.clip.reshape(-1, *s.clip.shape[-4:]) for s in segments])
        expected = seeing.extract(clips).numpy()
        assert features.shape == ((2, crops, 128) if crops > 1 else (2, 128))
        np.testing.assert_allclose(features.reshape(-1, 128), expected, rtol=1e-5, atol=1e-6)
        with DecoderPool(1, max_queued=8) as pool:
            job = VideoJob("wide", video, tmp_path / mode / "wide.h5", 2)
            extract_shard(seeing, [job], pool, segment_length=16, batch_size=4, dtype="float32", progress=False)
        stored, attrs = read_video_features(job.out_path)
        assert np.array_equal(stored, features) and json.loads(attrs["preprocessing"])["crops"] == mode
    merged = tmp_path / "tiles.h5"
    merge_video_features({"wide": tmp_path / "tiles" / "wide.h5"}, merged)
    assert load_feature_set(merged, crops="each").features.shape == (2, 6, 128)
    with pytest.raises(
        GclvadError, match=r"tiles\.h5: features of 6 crops a segment \(the tiles\?\) have no centre crop"
    ):
        load_feature_set(merged, crops="centre")
