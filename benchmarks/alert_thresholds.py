"""Label-free alert thresholds compared on finished runs (issue 17): which rule alerts on every
event and not on normal footage.

    .venv/bin/python benchmarks/alert_thresholds.py RUN [RUN ...] [--hold 2.0]

RUN: a workflow run folder (results/{dataset}/{extractor}/{variant}/seed{seed}) of a dataset
with frame ground truth, e.g. the demo's default run and the walkway benchmark's
(benchmarks/configs/alert_datasets.yaml). Each rule (gclvad.live.threshold.THRESHOLD_RULES)
computes the threshold from the run's scores of its own training segments only (as
delivered: crops combined, ensembles as they score); the test videos' segment scores are
then replayed through the watch's detector (gclvad.live.alerts.replay_alerts) and judged by
event recall, false alarms per hour of normal footage and latency
(gclvad.evaluation.events). Labels are read only to judge. Prints the machine first.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from machine import describe

from gclvad.datasets.readers import load_dataset
from gclvad.datasets.segment_index import read_segment_index, split_videos
from gclvad.evaluation.events import event_metrics
from gclvad.features.feature_set import load_feature_set
from gclvad.live.alerts import alert_of, replay_alerts
from gclvad.live.threshold import THRESHOLD_RULES, rule_threshold
from gclvad.scoring.quantiles import score_quantiles
from gclvad.scoring.run import read_run
from gclvad.scoring.scorer import load_scorer
from gclvad.stages.settings import ensemble_members


def run_data(run: Path):
    """(training scores, {video: segment scores}, truths, fps, segment_length) of a run's dataset."""
    record = read_run(run)
    dataset = record.folder.parents[2]
    features = dataset / "features" / f"{record.folder.parents[1].name}.h5"  # the extractor's config name
    index = read_segment_index(dataset / "segments.tsv")
    train_ids, scored = split_videos(index, ["train"])
    scorer = load_scorer(record.models_path, record.postprocess)
    training = scorer.segment_scores(load_feature_set(features, train_ids, record.crops))["score"]
    test_set = load_feature_set(features, scored, record.crops)
    values = scorer.segment_scores(test_set)["score"]
    per_video = {v: values[test_set.offsets[i] : test_set.offsets[i + 1]] for i, v in enumerate(test_set.videos)}
    frames = index.set_index("video")["frames"]
    fps = index.set_index("video")["fps"].astype(float).to_dict()
    # the generated dataset's files, as the workflow reads them
    spec = {
        "format": "generic",
        "manifest": dataset / "videos/videos.csv",
        "annotations": dataset / "videos/annotations.csv",
    }
    videos = {video.id: video for video in load_dataset(spec)}
    truths = {v: videos[v].truth(int(frames[v])) for v in per_video}
    return training, per_video, truths, fps, frames, record.segment_length


def loop_anomalous_share(run: Path) -> float | None:
    """The share of training rows D labels anomalous in the GCL loop's last epoch, averaged over
    the run's logs (an ensemble's: its members'): the model's own estimate of contamination."""
    record = read_run(run)
    variant = record.folder.parent.name
    folders = [record.folder]
    if "~ensemble=" in variant:
        members = ensemble_members(variant, int(record.folder.name.removeprefix("seed")))
        folders = [record.folder.parents[1] / name / f"seed{seed}" for name, seed in members]
    shares = []
    for folder in folders:
        log = folder / "training_log.tsv"
        if log.is_file():
            table = pd.read_csv(log, sep="\t")
            if "d_label_fraction" in table:
                last = table[table["stage"] == table["stage"].iloc[-1]] if "stage" in table else table
                epoch = last[last["epoch"] == last["epoch"].max()] if "epoch" in last else last.tail(1)
                shares.append(float(epoch["d_label_fraction"].mean()))
    return float(np.mean(shares)) if shares else None


def judge(run: Path, hold_s: float) -> None:
    training, per_video, truths, fps, frames, length = run_data(run)
    record = score_quantiles(training, "score")
    print(f"\n{run}: {len(training)} training segments, {len(per_video)} test videos, hold {hold_s:g} s")
    header = (
        f"{'rule':<22}{'threshold':>10}{'recall':>8}{'alerted':>9}{'false':>7}{'FA/h':>9}{'lat.med':>9}{'lat.max':>9}"
    )
    print(header)
    share = loop_anomalous_share(run)
    rules = list(THRESHOLD_RULES) + ([f"quantile:{1 - share:.4f}"] if share is not None else [])
    print(f"the GCL loop's own share of anomalous training rows: {share}")
    for rule in rules:
        if rule.startswith("quantile:") and rule not in THRESHOLD_RULES:  # the contamination rule
            threshold = float(np.quantile(training, float(rule.partition(":")[2])))
        else:
            threshold = rule_threshold(record, rule, "benchmark").value
        alerts = {
            video: [
                alert_of(e) for e in replay_alerts(scores, length, int(frames[video]), fps[video], threshold, hold_s)
            ]
            for video, scores in per_video.items()
        }
        m = event_metrics(alerts, truths, fps)
        latency = [m["latency_s_median"], m["latency_s_max"]]
        shown = [f"{x:>9.2f}" if x is not None else f"{'-':>9}" for x in latency]
        fah = m["false_alarms_per_hour"]
        print(
            f"{rule:<22}{threshold:>10.4g}{m['event_recall']:>8.2f}{m['alerted_events']:>5}/{m['events']:<3}"
            f"{m['false_alarms']:>7}{fah:>9.1f}{''.join(shown)}"
        )
    per_normal = [float(np.max(s)) for v, s in per_video.items() if truths[v] is not None and not truths[v].any()]
    print(f"highest segment score of a normal test video: {max(per_normal):.4g}" if per_normal else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--hold", type=float, default=2.0, help="seconds at or below the threshold that close an alert")
    args = parser.parse_args()
    print(f"machine: {describe()}")
    for run in args.runs:
        judge(run, args.hold)


if __name__ == "__main__":
    main()
