"""`gclvad summary`: one table of every finished run under a results folder."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(commands) -> None:
    summary = commands.add_parser(
        "summary",
        help="one TSV row per finished run (every dataset, extractor, variant, seed)",
        description="Gather the auc.json of every run present under RESULTS_DIR "
        "({dataset}/{extractor}/{variant}/seed{seed}/auc.json) into one table: the run, then auc, auc_raw, "
        "average_precision, auc_anomalous_videos, macro_auc, false_alarm_rate, videos, frames. "
        "It reads what is there, whichever configs produced it, so it is a command, not a workflow rule.",
    )
    summary.add_argument("results_dir", type=Path, help="the workflow's results folder")
    summary.add_argument("-o", "--out", type=Path, help="the table (default: RESULTS_DIR/summary.tsv)")


def run(args: argparse.Namespace) -> int:
    # stages.results loads the scorer (torch): only when the command runs, not for --help
    from gclvad.stages.results import results_summary

    out = args.out or args.results_dir / "summary.tsv"
    table = results_summary(results_dir=args.results_dir, out_path=out)
    print(f"{len(table)} runs -> {out}")
    return 0
