"""Figures of a run: ROC curves, score histograms (paper Fig 4), per-video frame scores with
the ground truth shaded (Fig 7/8) and training curves. Each function writes one PNG."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: jobs run without a display
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from sklearn.metrics import roc_auc_score, roc_curve

from gclvad.atomic import write_atomic


def _save(fig, path: str | Path) -> None:
    """Write the figure atomically (its format from the suffix: the temporary name has none)."""
    path = Path(path)
    try:
        fig.tight_layout()
        write_atomic(path, lambda temporary: fig.savefig(temporary, dpi=110, format=path.suffix.lstrip(".") or "png"))
    finally:
        plt.close(fig)


def plot_message(path: str | Path, title: str, message: str) -> None:
    """A figure that says why there is nothing to draw (e.g. footage without ground truth)."""
    fig, ax = plt.subplots(figsize=(4.5, 2.5))
    ax.axis("off")
    ax.set_title(title)
    ax.text(0.5, 0.5, message, ha="center", va="center", wrap=True)
    _save(fig, path)


def roc_figure(truth: np.ndarray, scores: Mapping[str, np.ndarray], title: str) -> Figure:
    """ROC of each named frame-score array against the frame ground truth, each labelled
    with its frame AUC to 4 decimals (as auc.json gives it), the chance diagonal dotted."""
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    for name, values in scores.items():
        false_positive, true_positive, _ = roc_curve(truth, values)
        ax.plot(false_positive, true_positive, label=f"{name} (AUC = {roc_auc_score(truth, values):.4f})")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title(title)
    ax.legend(fontsize=8, loc="lower right")
    return fig


def plot_roc(truth: np.ndarray, scores: Mapping[str, np.ndarray], path: str | Path, title: str) -> None:
    """`roc_figure`, written to `path`."""
    _save(roc_figure(truth, scores, title), path)


def plot_score_histograms(
    truth: np.ndarray, scores: Mapping[str, np.ndarray], path: str | Path, bins: int = 40
) -> None:
    """One panel per score (e.g. AE_AllData, G, D): test-frame scores split by ground truth."""
    fig, axes = plt.subplots(1, len(scores), figsize=(4 * len(scores), 3.2), squeeze=False)
    for ax, (name, values) in zip(axes[0], scores.items(), strict=True):
        edges = np.histogram_bin_edges(values, bins=bins)
        ax.hist(values[~truth], bins=edges, alpha=0.6, density=True, label="normal frames")
        ax.hist(values[truth], bins=edges, alpha=0.6, density=True, label="anomalous frames")
        ax.set_title(name)
        ax.set_xlabel("score")
    axes[0][0].set_ylabel("density")
    axes[0][0].legend(fontsize=8)
    _save(fig, path)


def anomalous_spans(truth: np.ndarray) -> list[tuple[int, int]]:
    """Half-open [start, end) runs of True in a boolean frame array."""
    edges = np.diff(np.concatenate([[0], truth.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True))


def plot_video_scores(videos: Sequence[tuple[str, np.ndarray, np.ndarray | None]], path: str | Path) -> None:
    """Per-video frame scores (video id, scores, truth or None), ground truth shaded."""
    fig, axes = plt.subplots(len(videos), 1, figsize=(8, 1.6 * len(videos)), squeeze=False)
    # One scale for all videos, from 0 (or below: z-normalised ensemble scores go negative)
    # to at least 1 (D's probabilities)
    low = min(0.0, *(float(np.min(values)) for _, values, _ in videos))
    high = max(1.0, *(float(np.max(values)) for _, values, _ in videos))
    margin = 0.05 * (high - low)
    for ax, (name, values, truth) in zip(axes[:, 0], videos, strict=True):
        if truth is not None:
            for start, end in anomalous_spans(truth):
                ax.axvspan(start, end, color="tab:red", alpha=0.2, linewidth=0)
        ax.plot(values, color="tab:blue", linewidth=1)
        ax.set_ylim(low - (margin if low < 0 else 0.0), high + margin)
        ax.set_ylabel(name, fontsize=8)
    axes[-1, 0].set_xlabel("frame")
    _save(fig, path)


def plot_training_curves(log_rows: Sequence[Mapping], path: str | Path) -> None:
    """Loss per epoch of each stage, and the per-epoch test AUC (diagnostic only)."""
    stages = list(dict.fromkeys(row["stage"] for row in log_rows))
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    for stage in stages:
        rows = [row for row in log_rows if row["stage"] == stage]
        for key in ("loss_g", "loss_d"):
            values = [row.get(key) for row in rows]
            if any(v is not None and np.isfinite(v) for v in values):
                axes[0].plot(range(1, len(rows) + 1), values, marker=".", label=f"{stage} {key}")
        aucs = [row.get("diagnostic_auc_d") for row in rows]
        if any(a is not None and np.isfinite(a) for a in aucs):
            axes[1].plot(range(1, len(rows) + 1), aucs, marker=".", label=stage)
    axes[0].set_xlabel("epoch")
    axes[0].set_yscale("log")  # G's reconstruction loss and D's BCE differ by orders of magnitude
    axes[0].set_title("training losses")
    axes[0].legend(fontsize=7)
    axes[1].set_xlabel("epoch")
    axes[1].set_title("test AUC of D per epoch (diagnostic, not used for selection)", fontsize=8)
    if axes[1].lines:
        axes[1].legend(fontsize=7)
    _save(fig, path)


def plot_event_scores(
    segments: Sequence[tuple[float, float, float]],
    threshold: float,
    event: tuple[float, float],
    path: str | Path,
    title: str,
) -> None:
    """A live alert's score curve: (start_s, end_s, score) of each scored segment around it, as
    steps over stream time, the threshold dashed and the event's span shaded."""
    fig, ax = plt.subplots(figsize=(8, 2.6))
    ax.axvspan(*event, color="tab:red", alpha=0.2, linewidth=0, label="alert")
    if segments:
        times = [t for start, end, _ in segments for t in (start, end)]
        values = [v for _, _, value in segments for v in (value, value)]
        ax.plot(times, values, color="tab:blue", linewidth=1, label="segment score")
    ax.axhline(threshold, color="grey", linestyle="--", linewidth=1, label="threshold")
    ax.set_xlabel("stream time (s)")
    ax.set_ylabel("score")
    ax.set_title(title)
    ax.legend(fontsize=7, loc="upper left")
    _save(fig, path)
