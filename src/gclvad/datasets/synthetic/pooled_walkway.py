"""The walkway as a real walkway benchmark is pooled: the development benchmark for the method.

The walkway benchmark (gclvad.datasets.synthetic.walkway) chose the levers of the default for
unlabelled footage well, but ranks the methods the wrong way round: the autoencoder trained on
every video (AE_AllData) beats GCL_PT there, while on real walkway footage and in the paper's
Table 2 GCL_PT is well ahead. This generator keeps the walkway's pictures (one camera position,
grey noisy footage, small cyclists, skaters and carts) and reproduces what the walkway lacks of
a real walkway benchmark used as unlabelled footage (UCSD Ped2 style: a normal training split
and a test split in which nearly every video holds anomalies for most of its length, all 28
videos pooled): anomalies are common in the pooled footage, about 30 % of its frames (walkway:
about 10 % of training and 35 % of test frames, in half the videos), and an event runs for most of
its video. So an autoencoder trained on everything learns to reconstruct the anomalies too,
which is what GCL's pseudo-labels and negative learning are for.

How the ordering was checked: benchmarks/method_order.py trains AE_AllData, GCL_B, GCL w/o NL
and GCL_PT for five seeds on this benchmark and on the walkway and prints their frame AUC
side by side (the README's "Development benchmarks" gives the figures).
"""

from __future__ import annotations

from pathlib import Path

from gclvad.datasets.synthetic.walkway import EventPlan, generate_walkway

# An event covers most of its video, and every test video but one in ten holds one.
POOLED_EVENTS = EventPlan(length=(0.6, 1.0), typical=0.85, most_videos=0.9)


def generate_pooled_walkway(
    out_dir: Path,
    seed: int = 0,
    n_train: int = 16,
    n_test: int = 12,
    frames: int = 180,
    size: tuple[int, int] = (240, 320),
    fps: int = 25,
    scenes: int = 1,
    test_fraction: float = 0.7,
) -> Path:
    """Write the videos (training split normal, `test_fraction` of test frames anomalous),
    videos.csv and annotations.csv into `out_dir`; return videos.csv."""
    return generate_walkway(
        out_dir,
        seed=seed,
        n_train=n_train,
        n_test=n_test,
        frames=frames,
        size=size,
        fps=fps,
        scenes=scenes,
        train_fraction=0.0,
        test_fraction=test_fraction,
        events=POOLED_EVENTS,
    )
