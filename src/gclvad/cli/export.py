"""`gclvad export`: a finished run's frame scores as per-video CSVs and one RTFM-style .npy."""

from __future__ import annotations

import argparse
from pathlib import Path

from gclvad.scoring.export import ORDER_FILE, PREDICTIONS_FILE, export_run


def add_parser(commands) -> None:
    export = commands.add_parser(
        "export",
        help="a finished run's frame scores as CSV files and a concatenated .npy",
        description="From a workflow run folder (results/{dataset}/{extractor}/{variant}/seed{seed}/, "
        "holding scores.h5) write <video>.csv per scored video (the columns `gclvad score` writes), "
        f"{PREDICTIONS_FILE} (float32, the delivered score of every frame, videos concatenated in the "
        f"segment index's order, as RTFM / UR-DMU evaluation scripts load it) and {ORDER_FILE} (that "
        "order, one video id a line).",
    )
    export.add_argument("run", type=Path, help="a finished run folder (holds scores.h5)")
    export.add_argument("-o", "--out", type=Path, required=True, help="folder for the exported files")
    export.add_argument(
        "--index",
        type=Path,
        help="the dataset's segment index (default: RUN/../../../segments.tsv, i.e. results/{dataset}/segments.tsv)",
    )
    export.add_argument("--force", action="store_true", help="overwrite files of an earlier export")


def run(args: argparse.Namespace) -> int:
    exported = export_run(args.run, args.out, index_path=args.index, force=args.force)
    print(f"{len(exported.videos)} videos, {exported.frames} frames -> {exported.predictions}, {exported.order}")
    return 0
