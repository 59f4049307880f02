"""Prototype of the levers of issue 10 on cached features: feature sets (crops, windows), TD
rules, training runs with cached scores, and the evaluation (crop combination, windows to
frames, seed ensembles, smoothing). Used by benchmarks/detection.py; the reusable pieces are
in gclvad.scoring.postprocess.

Feature sets (rows the networks train on and score):
    centre_s16     the paper: centre crop, non-overlapping 16-frame segments
    centre_s8      centre crop, windows every 8 frames
    three_s16      left/centre/right crops, each crop its own training track
    three_avg_s16  the three crops' features averaged into one row per segment
    three_s8       three crops as tracks, windows every 8 frames
    ten_s16 / ten_avg_s16   the ten-crop (corners + centre, flipped), as tracks / averaged
TD rules (which rows G is pre-trained on): "paper" D_th = 0.70 on L2-normalised features;
"pct<q>": distances <= the q-th percentile of all observed distances; "vid<q>": <= the q-th
percentile of the distances within the row's own track (video x crop).
"""

from __future__ import annotations

import itertools
import json
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from detection_features import load_mode

from gclvad.atomic import write_atomic
from gclvad.cleaning import CleaningConfig, temporal_difference_mask, temporal_differences
from gclvad.evaluation.metrics import frame_auc
from gclvad.scoring.frames import gaussian_smooth, window_frame_scores
from gclvad.scoring.postprocess import combine_crops, reference_ranks

SEGMENT = 16
SIGMAS = (0, 8, 16, 32)
FEATURE_SETS = {  # name: (cached mode, crops or None for all, stride, "tracks" | "average")
    "centre_s16": ("three_s8", ["c"], 16, "tracks"),
    "centre_only_s16": ("centre_s16", ["c"], 16, "tracks"),  # for benchmarks extracted in centre mode only
    "centre_s8": ("three_s8", ["c"], 8, "tracks"),
    "three_s16": ("three_s8", None, 16, "tracks"),
    "three_avg_s16": ("three_s8", None, 16, "average"),
    "three_s8": ("three_s8", None, 8, "tracks"),
    "ten_s16": ("ten_s16", None, 16, "tracks"),
    "ten_avg_s16": ("ten_s16", None, 16, "average"),
}
COMBINATIONS = [("mean", "none"), ("max", "none"), ("mean", "rank"), ("max", "rank"), ("mean", "z"), ("max", "z")]


@dataclass
class Rows:
    """Training rows of a feature set over all videos, with what evaluation needs."""

    features: np.ndarray  # (N, d)
    track: np.ndarray  # (N,) video x crop
    position: np.ndarray  # (N,) window index within the track
    video: np.ndarray  # (N,) index into `videos`
    crop: np.ndarray  # (N,) crop index
    start: np.ndarray  # (N,) first frame of the window
    anomalous: np.ndarray  # (N,) fraction of the window's frames annotated anomalous (evaluation only)
    videos: list[str]
    frames: dict[str, int]
    n_crops: int


def truths_of(manifest: Path, frames: dict[str, int]) -> dict[str, np.ndarray]:
    """Frame ground truth of the test videos (the only videos evaluated)."""
    videos = pd.read_csv(manifest)
    spans = pd.read_csv(manifest.parent / "annotations.csv")
    out = {}
    for video in videos.loc[videos["split"] == "test", "video"]:
        truth = np.zeros(frames[video], bool)
        for span in spans[spans.video == video].itertuples():
            truth[span.start_frame : span.end_frame] = True
        out[video] = truth
    return out


def build_rows(work: Path, manifest: Path, name: str) -> Rows:
    mode, wanted, stride, layout = FEATURE_SETS[name]
    videos = pd.read_csv(manifest)["video"].tolist()
    stored = load_mode(work / "features", mode, videos)
    spans = pd.read_csv(manifest.parent / "annotations.csv")
    parts = {key: [] for key in ("features", "track", "position", "video", "crop", "start", "anomalous")}
    frames, tracks = {}, 0
    for v, video in enumerate(videos):
        values = stored[video]
        frames[video] = int(values["frames"])
        truth = np.zeros(frames[video], bool)
        for span in spans[spans.video == video].itertuples():
            truth[span.start_frame : span.end_frame] = True
        keep = values["starts"] % stride == 0
        starts = values["starts"][keep]
        names = list(values["crops"])
        crops = [names.index(c) for c in wanted] if wanted else list(range(len(names)))
        feats = values["features"][keep][:, crops]  # (W, C, d)
        if layout == "average":
            feats = feats.mean(axis=1, keepdims=True)
        anomalous = np.array([truth[s : s + SEGMENT].mean() for s in starts])
        for c in range(feats.shape[1]):
            parts["features"].append(feats[:, c])
            parts["track"].append(np.full(len(starts), tracks))
            parts["position"].append(np.arange(len(starts)))
            parts["video"].append(np.full(len(starts), v))
            parts["crop"].append(np.full(len(starts), c))
            parts["start"].append(starts)
            parts["anomalous"].append(anomalous)
            tracks += 1
    joined = {key: np.concatenate(value) for key, value in parts.items()}
    n_crops = int(joined["crop"].max()) + 1
    return Rows(**joined, videos=videos, frames=frames, n_crops=n_crops)


# ---------------------------------------------------------------- TD rules


def td_mask(rows: Rows, rule: str) -> tuple[np.ndarray, dict]:
    """Rows kept for G's pre-training under `rule`, and the cleaning summary."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the paper's rule warns that it keeps ~100 %
        if rule == "paper":
            return temporal_difference_mask(rows.features, rows.track, rows.position, CleaningConfig())
        if rule.startswith("pct"):
            config = CleaningConfig(threshold=float(rule[3:]), mode="percentile")
            return temporal_difference_mask(rows.features, rows.track, rows.position, config)
    if rule.startswith("vid"):
        distances, first = temporal_differences(rows.features, rows.track, rows.position, "l2")
        keep = first.copy()
        for track in np.unique(rows.track):
            own = (rows.track == track) & ~first
            if own.any():
                keep[own] = distances[own] <= np.percentile(distances[own], float(rule[3:]))
        return keep, {"rule": rule, "kept_fraction": float(keep.mean())}
    raise ValueError(f"unknown TD rule {rule}")


def enrichment(rows: Rows, rule: str) -> dict:
    """Kept fraction and anomaly rate among kept vs all rows (a window counts as anomalous when
    at least half its frames are): labels evaluate the rule here, they never tune it."""
    keep, summary = td_mask(rows, rule)
    anomalous = rows.anomalous >= 0.5
    return {
        "rule": rule,
        "kept": float(keep.mean()),
        "anomalous_all": float(anomalous.mean()),
        "anomalous_kept": float(anomalous[keep].mean()),
        "anomalous_removed": float(anomalous[~keep].mean()) if (~keep).any() else float("nan"),
        "threshold": summary.get("threshold"),
    }


# ---------------------------------------------------------------- training


def run_name(variant: str, features: str, rule: str) -> str:
    return f"{variant}.{features}.{rule}"


def train_one(rows: Rows, variant: str, rule: str, seed: int) -> tuple[np.ndarray, float]:
    """Train `variant` (preset small) on all rows; (score of every row, seconds)."""
    from gclvad.gcl.data import TrainingData
    from gclvad.gcl.store import score
    from gclvad.gcl.train import train
    from gclvad.gcl.variants import get_variant

    config = get_variant(variant, "small")
    data = TrainingData(features=rows.features, video=rows.track, position=rows.position)
    if config.pretrain_g.data == "td":
        data.td_mask, data.td_summary = td_mask(rows, rule)
    started = time.perf_counter()
    result = train(config, data, seed)
    scores = score(result.models, rows.features)["score"]
    return scores, time.perf_counter() - started


def planned_runs() -> list[tuple[str, str, str, list[int]]]:
    """(variant, feature set, TD rule, seeds) of every run of the table, most important first."""
    five, more = list(range(5)), list(range(5, 15))
    runs = [("AE_AllData", "centre_s16", "paper", five)]
    runs += [
        ("GCL_PT", features, "paper", five)
        for features in ("centre_s16", "centre_s8", "three_s16", "three_avg_s16", "three_s8")
    ]
    runs += [("GCL_PT", "centre_s16", rule, five) for rule in ("pct50", "vid50")]
    runs += [("AE_AllData", features, "paper", five) for features in ("centre_s8", "three_s16", "three_s8")]
    runs += [("GCL_PT", "centre_s16", "paper", more)]  # seed ensembles: 15 seeds
    runs += [("GCL_PT", "centre_s16", rule, five) for rule in ("pct30", "pct70")]
    runs += [("GCL_PT", "three_s16", "pct50", five + more), ("GCL_PT", "three_s16", "paper", more)]
    runs += [("GCL_PT", features, "paper", five) for features in ("ten_s16", "ten_avg_s16")]
    runs += [("AE_AllData", features, "paper", five) for features in ("ten_s16", "ten_avg_s16")]
    runs += [("AE_TD", features, rule, five) for features in ("centre_s16", "three_s16") for rule in ("pct50", "pct70")]
    runs += [("GCL_PT", "three_s16", "pct70", five + more), ("GCL_PT", "three_s16", "pct90", five + more)]
    runs += [("AE_TD", "three_s16", "pct90", five)]
    return runs


def train_all(work: Path, manifest: Path, only: list[str] | None = None, runs=None) -> None:
    cache: dict[str, Rows] = {}
    for variant, features, rule, seeds in runs or planned_runs():
        name = run_name(variant, features, rule)
        if only and name not in only and features not in only:
            continue
        if not (work / "features" / FEATURE_SETS[features][0]).is_dir():
            print(f"skip {name}: features {FEATURE_SETS[features][0]} not extracted", flush=True)
            continue
        rows = cache.setdefault(features, build_rows(work, manifest, features))
        for seed in seeds:
            path = work / "scores" / name / f"seed{seed}.npz"
            if path.exists():
                continue
            scores, seconds = train_one(rows, variant, rule, seed)

            def write(temporary: Path, scores=scores, seconds=seconds) -> None:
                with open(temporary, "wb") as out:
                    np.savez(out, scores=scores, seconds=seconds)

            write_atomic(path, write)
            print(f"{name} seed {seed}: {seconds:.1f} s on {len(scores)} rows", flush=True)


# ---------------------------------------------------------------- evaluation


def window_scores(rows: Rows, row_scores: np.ndarray, combination=("max", "rank")) -> dict[str, tuple]:
    """Per video: (window starts, one score per window) after combining the crops."""
    reference = np.column_stack([row_scores[rows.crop == c] for c in range(rows.n_crops)])
    out = {}
    for v, video in enumerate(rows.videos):
        own = rows.video == v
        starts = rows.start[own & (rows.crop == 0)]
        matrix = np.column_stack([row_scores[own & (rows.crop == c)] for c in range(rows.n_crops)])
        if rows.n_crops == 1:
            combined = matrix[:, 0]
        else:
            combined = combine_crops(matrix, reference, reduce=combination[0], normalise=combination[1])
        out[video] = (starts, combined)
    return out


def frame_scores(rows: Rows, windows: dict[str, tuple], normalise: str = "none") -> dict[str, np.ndarray]:
    """Per video frame scores; normalise (for ensembles) against all windows of all videos (the
    training footage): "rank" (empirical CDF), "z" (mean and std) or "none"."""
    reference = np.concatenate([scores for _, scores in windows.values()])
    out = {}
    for video, (starts, scores) in windows.items():
        if normalise == "rank":
            values = reference_ranks(scores, reference)
        elif normalise == "z":
            values = (scores - reference.mean()) / reference.std()
        else:
            values = scores
        out[video] = window_frame_scores(values, starts, rows.frames[video], SEGMENT)
    return out


def auc(frames: dict[str, np.ndarray], truths: dict, sigma: float) -> float:
    tested = {v: gaussian_smooth(frames[v], sigma) for v in truths}
    return frame_auc(tested, truths)


def seed_frames(work: Path, rows: Rows, name: str, combination, normalise: str) -> dict[int, dict]:
    out = {}
    for path in sorted((work / "scores" / name).glob("seed*.npz")):
        with np.load(path) as stored:
            out[int(path.stem[4:])] = frame_scores(rows, window_scores(rows, stored["scores"], combination), normalise)
    return out


def ensemble(members: list[dict]) -> dict[str, np.ndarray]:
    return {video: np.mean([m[video] for m in members], axis=0) for video in members[0]}


def seconds_of(work: Path, name: str) -> float:
    values = [float(np.load(p)["seconds"]) for p in (work / "scores" / name).glob("seed*.npz")]
    return float(np.mean(values)) if values else float("nan")


def _cell(values) -> str:
    return f"{np.mean(values):.3f} +- {np.std(values, ddof=1) if len(values) > 1 else 0:.3f}"


def print_tables(work: Path, manifest: Path) -> dict:
    names = sorted(p.name for p in (work / "scores").iterdir())
    first = names[0].split(".")[1]
    cache: dict[str, Rows] = {first: build_rows(work, manifest, first)}
    truths = truths_of(manifest, cache[first].frames)
    report: dict = {"single": [], "ensembles": [], "td": []}
    print("\nframe AUC on the walkway test split (5 seeds, mean +- std); sigma = smoothing in frames")
    print(f"{'run':44s} {'crops':10s} " + " ".join(f"{'sigma ' + str(s):>15s}" for s in SIGMAS) + "  train s")
    for name in names:
        features = name.split(".")[1]
        rows = cache.setdefault(features, build_rows(work, manifest, features))
        for combination in COMBINATIONS if rows.n_crops > 1 else [("mean", "none")]:
            runs = seed_frames(work, rows, name, combination, normalise="none")
            first = {s: f for s, f in runs.items() if s < 5}
            cells = {sigma: [auc(f, truths, sigma) for f in first.values()] for sigma in SIGMAS}
            label = "-" if rows.n_crops == 1 else "/".join(combination)
            print(
                f"{name:44s} {label:10s} "
                + " ".join(f"{_cell(cells[s]):>15s}" for s in SIGMAS)
                + f"  {seconds_of(work, name):6.1f}",
                flush=True,
            )
            report["single"].append({"run": name, "crops": label, **{f"sigma{s}": cells[s] for s in SIGMAS}})
    report["ensembles"] = ensemble_table(work, manifest, truths, cache)
    report["td"] = td_table(work, manifest, cache)
    write_atomic(work / "table.json", lambda temporary: temporary.write_text(json.dumps(report, indent=1)))
    return report


def ensemble_table(work: Path, manifest: Path, truths: dict, cache: dict, combination=("mean", "none")) -> list:
    """Seed ensembles: disjoint groups of K seeds, each seed's scores normalised against its own
    windows of all videos, averaged; mean +- std over groups (runs with at least 15 seeds)."""
    print("\nseed ensembles: disjoint groups of K seeds; per-seed normalisation rank | z | none, then the mean")
    out = []
    for name in sorted(p.name for p in (work / "scores").iterdir()):
        features = name.split(".")[1]
        rows = cache.setdefault(features, build_rows(work, manifest, features))
        if len(list((work / "scores" / name).glob("seed*.npz"))) < 15:
            continue
        for normalise in ("rank", "z", "none"):
            runs = seed_frames(work, rows, name, combination, normalise=normalise)
            seeds = sorted(runs)
            for k in (1, 3, 5):
                groups = [seeds[i : i + k] for i in range(0, len(seeds) - k + 1, k)][:5]
                cells = {s: [auc(ensemble([runs[i] for i in g]), truths, s) for g in groups] for s in SIGMAS}
                label = f"{name} {normalise} K={k} ({len(groups)})"
                print(f"{label:55s} " + " ".join(f"{_cell(cells[s]):>15s}" for s in SIGMAS))
                out.append(
                    {
                        "run": name,
                        "normalise": normalise,
                        "k": k,
                        "groups": len(groups),
                        **{f"sigma{s}": cells[s] for s in SIGMAS},
                    }
                )
    return out


def td_table(work: Path, manifest: Path, cache: dict) -> list:
    print("\nTD cleaning: kept fraction, anomalous windows (>= half their frames) among all / kept / removed rows")
    out = []
    for features, rule in itertools.product(
        ("centre_s16", "three_s8", "centre_s8"), ("paper", "pct50", "pct70", "pct90", "vid50", "vid70")
    ):
        if not (work / "features" / FEATURE_SETS[features][0]).is_dir():
            continue
        rows = cache.setdefault(features, build_rows(work, manifest, features))
        row = {"features": features, **enrichment(rows, rule)}
        print(
            f"{features:12s} {rule:6s} kept {row['kept']:.3f}  anomalous: all {row['anomalous_all']:.3f} "
            f"kept {row['anomalous_kept']:.3f} removed {row['anomalous_removed']:.3f}"
        )
        out.append(row)
    return out
