"""One function per workflow stage: what a Snakemake rule (or the CLI) calls.

Each takes plain paths and values, composes the concept modules, and writes its outputs.
The Snakemake scripts in workflow/scripts/ do nothing but call these.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Mapping, Sequence

log = logging.getLogger(__name__)


def generate_demo_dataset(manifest: str | Path, generate: Mapping) -> Path:
    """Write the synthetic demo videos beside `manifest` (videos.csv + annotations.csv)."""
    from gclvad.datasets.demo import generate_demo

    written = generate_demo(Path(manifest).parent, **generate)
    log.info("demo dataset written: %s", written)
    return written


def index_dataset(spec: Mapping, segment_length: int, on_bad_video: str, out_path: str | Path) -> None:
    """Read a dataset, decode every video once and write its segment index (TSV)."""
    from gclvad.datasets import load_dataset
    from gclvad.segment_index import build_segment_index, write_segment_index

    videos = load_dataset(dict(spec))
    table = build_segment_index(videos, segment_length, on_bad_video)
    write_segment_index(table, out_path)
    log.info("%d videos indexed, %d usable", len(table), table["status"].isin(["ok", "truncated"]).sum())


def extract_video_features(
    source: str | Path, out_path: str | Path, extractor: Mapping, segment_length: int, device: str
) -> None:
    """Run one extractor over one video and store its per-segment features."""
    from gclvad.extraction import extract_video
    from gclvad.extractors import build_extractor

    model = build_extractor(
        extractor["name"], extractor["weights"], device=device, precision=extractor.get("precision", "fp32")
    )
    extract_video(
        model,
        Path(source),
        Path(out_path),
        segment_length=segment_length,
        batch_size=extractor.get("batch_size", 4),
        dtype=extractor.get("dtype", "float16"),
    )


def merge_features(parts: Sequence[str | Path], out_path: str | Path) -> None:
    """Merge per-video feature files (named <video>.h5) into one file per dataset."""
    from gclvad.features import merge_video_features

    merge_video_features({Path(p).stem: Path(p) for p in parts}, Path(out_path))


# ----------------------------------------------------------------------------------
# Which segments train and which are scored
# ----------------------------------------------------------------------------------


def split_videos(index_path: str | Path, train_on: Sequence[str]) -> tuple[list[str], list[str]]:
    """(training video ids, scored video ids) among the usable videos of the segment index.

    Unsplit footage is both trained on and scored; `train_on` may add the test split
    (transductive training).
    """
    import pandas as pd

    from gclvad.segment_index import read_segment_index, usable_videos

    table = read_segment_index(index_path).set_index("video")
    usable = usable_videos(table.reset_index())
    split = table["split"]
    unsplit = [v for v in usable if pd.isna(split[v]) or split[v] == ""]
    train = [v for v in usable if v in unsplit or split[v] in set(train_on)]
    scored = [v for v in usable if v in unsplit or split[v] == "test"]
    return train, scored


def training_data(
    features_path: str | Path,
    index_path: str | Path,
    train_on: Sequence[str],
    labels: Mapping[str, int | None] | None = None,
):
    """The training segments of a dataset as `TrainingData` (labels only when given)."""
    import numpy as np

    from gclvad.features import load_feature_set
    from gclvad.gcl.train import TrainingData

    train_ids, _ = split_videos(index_path, train_on)
    feature_set = load_feature_set(features_path, train_ids)
    video_label = None
    if labels is not None:
        video_label = np.array([-1 if labels.get(v) is None else int(labels[v]) for v in feature_set.videos])
    return TrainingData(
        features=feature_set.features,
        video=feature_set.video_of_row(),
        position=feature_set.position_of_row(),
        video_label=video_label,
    )


def clean_training_features(
    features_path: str | Path,
    index_path: str | Path,
    train_on: Sequence[str],
    cleaning: Mapping,
    mask_path: str | Path,
    summary_path: str | Path,
) -> dict:
    """Temporal-difference cleaning of the training segments (paper §3.3): mask + summary."""
    import json

    import numpy as np

    from gclvad.cleaning import temporal_difference_mask
    from gclvad.gcl.config import GCLConfig
    from gclvad.runs import cleaning_overrides

    data = training_data(features_path, index_path, train_on)
    settings = GCLConfig(**cleaning_overrides(cleaning))  # unset keys: the paper's defaults
    mask, summary = temporal_difference_mask(
        data.features,
        data.video,
        data.position,
        threshold=settings.td_threshold,
        normalize=settings.td_normalize,
        mode=settings.td_mode,
        percentile=settings.td_percentile,
    )
    np.savez_compressed(mask_path, keep=mask)
    Path(summary_path).write_text(json.dumps(summary, indent=2, default=float) + "\n")
    log.info("temporal-difference cleaning kept %d of %d segments", int(mask.sum()), mask.size)
    return summary


# ----------------------------------------------------------------------------------
# Scores, evaluation, figures
# ----------------------------------------------------------------------------------


def score_run(
    models_path: str | Path, features_path: str | Path, index_path: str | Path, train_on: Sequence[str],
    segment_length: int, out_path: str | Path, device: str = "cpu",
) -> None:
    """Frame scores of every scored video (test split and unsplit footage) of a run."""
    from gclvad.device import resolve_device
    from gclvad.features import load_feature_set
    from gclvad.frame_scores import score_feature_set, write_scores
    from gclvad.gcl.train import load_models

    _, scored = split_videos(index_path, train_on)
    models = load_models(Path(models_path), device=str(resolve_device(device)))
    scores = score_feature_set(models, load_feature_set(features_path, scored), segment_length)
    write_scores(out_path, scores)
    log.info("scored %d videos", len(scores))


def dataset_truths(spec: Mapping, index_path: str | Path, videos: Sequence[str]) -> dict:
    """Frame ground truth (bool array, or None where unknown) of `videos`."""
    from gclvad.datasets import load_dataset
    from gclvad.segment_index import read_segment_index

    frames = read_segment_index(index_path).set_index("video")["frames"]
    by_id = {video.id: video for video in load_dataset(dict(spec))}
    return {v: by_id[v].truth(int(frames[v])) for v in videos}


def evaluate_run(
    scores_path: str | Path, index_path: str | Path, spec: Mapping, training_log_path: str | Path,
    epoch_scores_path: str | Path, models_path: str | Path, segment_length: int,
    out_auc: str | Path, out_curve: str | Path,
) -> dict:
    """Frame-level ROC AUC of the run's final model (D and G), plus the per-epoch diagnostic curve."""
    import json

    import numpy as np
    import pandas as pd

    from gclvad.evaluate import frame_auc
    from gclvad.frame_scores import read_scores
    from gclvad.gcl.train import read_models_metadata

    scores = read_scores(scores_path)
    truths = dataset_truths(spec, index_path, list(scores))
    evaluated = [v for v, t in truths.items() if t is not None]
    metadata = read_models_metadata(Path(models_path))
    result = {}
    for name, key in (("score", "auc"), ("d", "auc_d"), ("g", "auc_g")):
        if evaluated and name in scores[evaluated[0]]:
            result[key] = frame_auc({v: scores[v][name] for v in evaluated}, truths)
    result.update(
        videos=len(evaluated),
        frames=int(sum(len(truths[v]) for v in evaluated)),
        anomalous_frames=int(sum(truths[v].sum() for v in evaluated)),
    )
    result.update({key: value for key, value in metadata.items() if key != "log"})
    training_log = pd.read_csv(training_log_path, sep="\t")
    curve = diagnostic_curve(np.load(epoch_scores_path), truths, index_path, segment_length)
    curve.to_csv(out_curve, sep="\t", index=False)
    result["diagnostic_note"] = (
        "auc is the model at the end of training; the per-epoch test AUC in "
        f"{Path(out_curve).name} is a diagnostic and selects nothing"
    )
    result["epochs_logged"] = int(len(training_log))
    Path(out_auc).write_text(json.dumps(result, indent=2, default=_json_default) + "\n")
    log.info("frame AUC %.4f over %d videos", result.get("auc", float("nan")), len(evaluated))
    return result


def _json_default(value):
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def diagnostic_curve(epoch_scores, truths, index_path, segment_length):
    """Test AUC after every epoch, from segment scores saved during training (diagnostic only:
    nothing is selected with it)."""
    import pandas as pd

    from gclvad.evaluate import frame_auc, segment_to_frame_scores
    from gclvad.segment_index import read_segment_index

    frames = read_segment_index(index_path).set_index("video")["frames"]
    videos = [str(v) for v in epoch_scores["videos"]]
    offsets = epoch_scores["offsets"]
    rows = []
    for label, values in zip(epoch_scores["labels"], epoch_scores["scores"]):
        stage, epoch = str(label).split(":")
        frame_scores = {
            v: segment_to_frame_scores(values[offsets[i] : offsets[i + 1]], int(frames[v]), segment_length)
            for i, v in enumerate(videos)
            if truths.get(v) is not None
        }
        auc = frame_auc(frame_scores, truths) if frame_scores else float("nan")
        rows.append({"stage": stage, "epoch": int(epoch), "diagnostic_test_auc": auc})
    return pd.DataFrame(rows, columns=["stage", "epoch", "diagnostic_test_auc"])


def plot_run(
    scores_path: str | Path, baseline_scores_path: str | Path, index_path: str | Path, spec: Mapping,
    training_log_path: str | Path, curve_path: str | Path, outputs: Mapping[str, str | Path], title: str,
) -> None:
    """The run's figures: ROC, score histograms (with AE_AllData), per-video scores, training curves."""
    import numpy as np
    import pandas as pd

    from gclvad import plots
    from gclvad.frame_scores import read_scores

    scores = read_scores(scores_path)
    baseline = read_scores(baseline_scores_path)
    truths = dataset_truths(spec, index_path, list(scores))
    evaluated = [v for v, t in truths.items() if t is not None]
    log_rows = pd.read_csv(training_log_path, sep="\t").to_dict("records")
    if not evaluated:  # footage without labels: scores and training only
        message = "no scored video has frame ground truth"
        plots.plot_message(outputs["roc"], title, message)
        plots.plot_message(outputs["histograms"], title, message)
        plots.plot_video_scores([(v, scores[v]["score"], None) for v in list(scores)[:4]], outputs["videos"])
        plots.plot_training_curves(log_rows, outputs["curves"])
        return
    truth = np.concatenate([truths[v] for v in evaluated])

    def frames_of(source, name):
        return np.concatenate([source[v][name] for v in evaluated])

    named = {k: frames_of(scores, k) for k in ("d", "g") if k in scores[evaluated[0]]}
    plots.plot_roc(truth, {f"{k.upper()}": v for k, v in named.items()}, outputs["roc"], title)
    histograms = {"AE_AllData": frames_of(baseline, "g"), **{k.upper(): v for k, v in named.items()}}
    plots.plot_score_histograms(truth, histograms, outputs["histograms"])
    plots.plot_video_scores(
        [(v, scores[v]["score"], truths[v]) for v in pick_videos(evaluated, truths)], outputs["videos"]
    )
    curve = pd.read_csv(curve_path, sep="\t")
    for row in log_rows:
        match = curve[(curve["stage"] == row["stage"]) & (curve["epoch"] == row["epoch"])]
        row["diagnostic_auc_d"] = float(match["diagnostic_test_auc"].iloc[0]) if len(match) else None
    plots.plot_training_curves(log_rows, outputs["curves"])


def pick_videos(videos: Sequence[str], truths: Mapping, count: int = 4) -> list[str]:
    """A few videos to draw: anomalous ones first, then a normal one."""
    anomalous = [v for v in videos if truths[v].any()]
    normal = [v for v in videos if not truths[v].any()]
    chosen = anomalous[: count - 1] + normal[:1]
    return chosen or list(videos[:count])


def dataset_summary(run_auc_path: str | Path, out_path: str | Path) -> dict:
    """results/{dataset}/auc.json: the default run's result, as is."""
    import json

    result = json.loads(Path(run_auc_path).read_text())
    result["run"] = str(Path(run_auc_path).parent)
    Path(out_path).write_text(json.dumps(result, indent=2) + "\n")
    return result


def aggregate_runs(auc_paths: Sequence[str | Path], out_path: str | Path) -> None:
    """One row per run (variant, seed, AUCs), then mean ± std per variant over seeds."""
    import json

    import pandas as pd

    rows = []
    for path in auc_paths:
        result = json.loads(Path(path).read_text())
        rows.append({key: result.get(key) for key in ("variant", "seed", "auc", "auc_d", "auc_g")})
    table = pd.DataFrame(rows)
    summary = table.groupby("variant", sort=False)["auc"].agg(["mean", "std", "count"]).reset_index()
    summary.insert(1, "seed", "all")
    summary = summary.rename(columns={"mean": "auc", "std": "auc_std", "count": "runs"})
    combined = pd.concat([table, summary[summary["runs"] > 1]], ignore_index=True)
    combined.to_csv(out_path, sep="\t", index=False, float_format="%.4f")


# ----------------------------------------------------------------------------------
# Training stages
# ----------------------------------------------------------------------------------

# Workflow stage -> the train() stages it runs (AE variants have one stage, "autoencoder").
# Training checkpoints: after every epoch, but at most one per this many seconds.
CHECKPOINT_INTERVAL_S = 10.0

TRAIN_STAGES = {"pretrain_g": ["pretrain_g", "autoencoder"], "pretrain_d": ["pretrain_d"], "loop": ["cooperative"]}


def train_stage(
    stage: str,
    settings: Mapping,
    features_path: str | Path,
    index_path: str | Path,
    spec: Mapping,
    train_on: Sequence[str],
    out_path: str | Path,
    device: str = "cpu",
    initial_path: str | Path | None = None,
    td_mask_path: str | Path | None = None,
    td_summary_path: str | Path | None = None,
    checkpoint_path: str | Path | None = None,
    epoch_scores_path: str | Path | None = None,
    metadata: Mapping | None = None,
) -> None:
    """Run one training stage of a run and store its networks (with the log so far).

    settings: the stage's GCL settings and seed (runs.stage_settings); settings a stage
    does not depend on keep their defaults, which it never reads. A checkpoint is written
    every epoch and removed once the stage's networks are stored.
    """
    import json

    import numpy as np

    from gclvad.device import resolve_device
    from gclvad.gcl.config import from_dict
    from gclvad.gcl.train import load_models, read_models_metadata, save_models, train

    values = {k: v for k, v in settings.items() if k != "seed"}
    config = from_dict({**values, "device": str(resolve_device(device))})
    labels = dataset_labels(spec) if config.reads_labels else None
    data = training_data(features_path, index_path, train_on, labels)
    if td_mask_path is not None:
        data.td_mask = np.load(td_mask_path)["keep"]
        data.td_summary = json.loads(Path(td_summary_path).read_text()) if td_summary_path else None
    initial = load_models(Path(initial_path), device=config.device) if initial_path else None
    previous = read_models_metadata(Path(initial_path)) if initial_path else {}

    recorder = None
    if epoch_scores_path is not None:
        recorder = EpochScores(features_path, index_path, train_on, epoch_scores_path, resume=bool(
            checkpoint_path and Path(checkpoint_path).exists()
        ), progress_path=epoch_scores_progress(checkpoint_path))
    result = train(
        config,
        data,
        int(settings["seed"]),
        checkpoint_path=Path(checkpoint_path) if checkpoint_path else None,
        on_epoch_end=recorder,
        stages=TRAIN_STAGES[stage],
        initial=initial,
        checkpoint_interval_s=CHECKPOINT_INTERVAL_S,
    )
    if recorder is not None:
        recorder.save()
    stored = {
        **previous,
        **(metadata or {}),
        "log": previous.get("log", []) + result.log,
        "steps": {**previous.get("steps", {}), **result.steps},
        **feature_provenance(features_path),
    }
    if result.cleaning is not None:
        stored["cleaning"] = result.cleaning
    if result.supervision is not None:
        stored["supervision"] = result.supervision
    save_models(Path(out_path), result, metadata=stored)
    if checkpoint_path is not None:
        Path(checkpoint_path).unlink(missing_ok=True)
        epoch_scores_progress(checkpoint_path).unlink(missing_ok=True)
    log.info("stage %s: %s optimiser steps", stage, result.steps)


def feature_provenance(features_path: str | Path) -> dict[str, str]:
    """The weights digest and preprocessing the merged features were extracted with (root
    attributes), kept in the models file so that scoring new videos (gclvad.scoring) can
    check that it extracts with the same network."""
    import h5py

    with h5py.File(features_path, "r") as source:
        return {key: str(source.attrs[key]) for key in ("weights_sha256", "preprocessing") if key in source.attrs}


def dataset_labels(spec: Mapping) -> dict[str, int | None]:
    """Video-level labels of a dataset (only OCC and weakly supervised variants ask)."""
    from gclvad.datasets import load_dataset

    return {video.id: video.label for video in load_dataset(dict(spec))}


def epoch_scores_progress(checkpoint_path: str | Path | None) -> Path | None:
    """Where the per-epoch scores are kept while a stage trains: beside its checkpoint, not at
    the output path, which Snakemake deletes before re-running a killed job."""
    return Path(f"{checkpoint_path}.epoch_scores.npz") if checkpoint_path else None


class EpochScores:
    """Records D's (or G's) segment scores of the scored videos after every epoch, for the
    diagnostic per-epoch AUC curve. Saved each epoch (to progress_path when given), so a
    resumed run keeps earlier epochs; `save()` writes out_path."""

    def __init__(self, features_path, index_path, train_on, out_path, resume: bool, progress_path=None):
        import numpy as np

        from gclvad.features import load_feature_set

        _, scored = split_videos(index_path, train_on)
        self.features = load_feature_set(features_path, scored)
        self.out_path = Path(out_path)
        self.progress_path = Path(progress_path) if progress_path else self.out_path
        self.labels: list[str] = []
        self.scores: list[np.ndarray] = []
        if resume and self.progress_path.exists():
            saved = np.load(self.progress_path)
            self.labels, self.scores = [str(x) for x in saved["labels"]], list(saved["scores"])

    def __call__(self, stage: str, epoch: int, models) -> None:
        from gclvad.gcl.train import score

        label = f"{stage}:{epoch}"
        if label in self.labels:  # a resumed run replays the epochs since its last checkpoint
            replayed = self.labels.index(label)
            del self.scores[replayed:], self.labels[replayed:]
        self.labels.append(label)
        self.scores.append(score(models, self.features.features)["score"])
        self.save(self.progress_path)

    def save(self, path: Path | None = None) -> None:
        import numpy as np

        path = Path(path or self.out_path)
        temporary = path.with_name(f".{path.name}.tmp.npz")
        rows = len(self.features.features)
        np.savez(
            temporary,
            videos=np.array(self.features.videos),
            offsets=self.features.offsets,
            labels=np.array(self.labels, dtype=str),
            scores=np.array(self.scores, dtype=np.float32).reshape(len(self.scores), rows),
        )
        temporary.replace(path)


def write_training_log(models_path: str | Path, out_path: str | Path) -> None:
    """The run's training log (every stage) as TSV."""
    import pandas as pd

    from gclvad.gcl.train import read_models_metadata

    pd.DataFrame(read_models_metadata(Path(models_path))["log"]).to_csv(out_path, sep="\t", index=False)
