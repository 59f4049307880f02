"""A shard extraction in its own process, for tests that SIGKILL it.

    python shard_child.py OUT_DIR BATCH_SIZE DECODERS MODE VIDEO...

Runs `extract_shard` with the small random ResNeXt of test_extraction.py, fp32, float32
storage. MODE: "plain"; "slow" (a pause after each written file, so that a test can kill the
shard between files); "hang-in-write" (the first feature file's HDF5 write stops halfway,
after its dataset and before its attributes, and waits there after touching OUT_DIR/writing).
Prints the decoder pids as JSON on its first line.
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from pathlib import Path

import torch

from gclvad.extract import shards as shard_extraction
from gclvad.extract.decoders import DecoderPool
from gclvad.extract.networks.base import RandomWeightsWarning
from gclvad.extract.networks.resnext import build_resnext101
from gclvad.extract.shards import VideoJob, extract_shard
from gclvad.features import files as features

SMALL = dict(layers=(1, 1, 1, 1), widths=(8, 16, 32, 64), cardinality=4, stem_channels=8, num_classes=10)


def small_resnext():
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RandomWeightsWarning)
        return build_resnext101("random", "cpu", "fp32", **SMALL)


def jobs_for(videos: list[Path], out_dir: Path) -> list[VideoJob]:
    return [VideoJob(video.stem, video, out_dir / f"{video.stem}.h5") for video in videos]


def main() -> None:
    out_dir, batch_size, decoders, mode = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    videos = [Path(v) for v in sys.argv[5:]]
    if mode == "slow":
        write = shard_extraction.write_video_features

        def slow_write(*args, **kwargs):
            write(*args, **kwargs)
            time.sleep(0.3)

        shard_extraction.write_video_features = slow_write
    elif mode == "hang-in-write":

        def hang(*args, **kwargs):
            (out_dir / "writing").touch()
            time.sleep(600)

        features.set_attrs = hang
    with DecoderPool(decoders, max_queued=2 * batch_size) as pool:
        print(json.dumps([process.pid for process in pool._processes]), flush=True)
        extractor = small_resnext()
        extract_shard(extractor, jobs_for(videos, out_dir), pool, batch_size=batch_size, dtype="float32")


if __name__ == "__main__":
    main()
