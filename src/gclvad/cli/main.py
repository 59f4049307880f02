"""The `gclvad` command: the package's stages for people outside Snakemake.

`main(argv)` is what tests call in-process; `main_cli()` is the console entry point. Usage
errors and bad input (GclvadError) end with a one-line message and exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gclvad.cli import export as export_cli
from gclvad.cli import summary as summary_cli
from gclvad.cli import watch as watch_cli
from gclvad.errors import GclvadError
from gclvad.logs import command_log


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gclvad", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    score = commands.add_parser(
        "score",
        help="score new videos with a trained run",
        description="Decode, extract (same extractor and weights as the run, checked by sha256) "
        "and score videos or frame folders; writes <video>.csv (per-frame scores) and <video>.png.",
    )
    score.add_argument("run", type=Path, help="a trained run folder (holds models.pt)")
    score.add_argument("videos", type=Path, nargs="+", help="video files or folders of frame images")
    score.add_argument("-o", "--out", type=Path, default=Path("scores"), help="output folder (default: scores)")
    score.add_argument(
        "--weights",
        help="extractor weights file (or 'random' / 'package'), if not where the run recorded them; "
        "its sha256 must be the one the run was trained with",
    )
    score.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    score.add_argument("--batch-size", type=int, help="clips per extractor call (default: the run's)")

    extract = commands.add_parser(
        "extract",
        help="extract features of videos (no training)",
        description="Write one HDF5 feature file per video (<out>/<id>.h5, id = file stem or folder name), "
        "with parallel decoder processes and one network; files already complete are kept, so a "
        "killed run resumes.",
    )
    extract.add_argument("videos", type=Path, nargs="+", help="video files, frame folders, or folders of videos")
    extract.add_argument("-o", "--out", type=Path, required=True, help="folder for the feature files")
    extract.add_argument("--extractor", required=True, help="resnext101, i3d, r3d_18, ... (config/README.md)")
    extract.add_argument("--weights", help="weights file, or 'random' (untrained); default for i3d: 'package'")
    extract.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    extract.add_argument(
        "--decoders", default="auto", help="decoder processes (default: one per core on a GPU, 1 on the CPU)"
    )
    extract.add_argument("--batch-size", type=int, default=4, help="clips per forward pass (default: 4)")
    extract.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    extract.add_argument("--dtype", choices=["float16", "float32"], default="float16", help="storage type")
    extract.add_argument("--segment-length", type=int, default=16, help="frames per segment (default: 16)")
    extract.add_argument(
        "--segment-stride", type=int, help="frames between segment starts (default: the segment length)"
    )
    extract.add_argument("--crops", choices=["centre", "three", "ten"], default="centre", help="crops of every segment")
    extract.add_argument("--on-bad-video", choices=["stop", "skip"], default="stop")

    demo = commands.add_parser("demo-data", help="write the synthetic demo dataset")
    demo.add_argument("out", type=Path)
    demo.add_argument("--seed", type=int, default=0)

    watch_cli.add_parsers(commands)
    export_cli.add_parser(commands)
    summary_cli.add_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    with command_log():
        return _run_command(args)


def _run_command(args: argparse.Namespace) -> int:
    try:
        if args.command == "score":
            from gclvad.scoring.footage import score_videos

            written = score_videos(
                args.run, args.videos, args.out, weights=args.weights, device=args.device, batch_size=args.batch_size
            )
            for path in written:
                print(path)
        elif args.command == "extract":
            from gclvad.extract.command import extract_to_folder

            report = extract_to_folder(
                args.videos, args.out, extractor=args.extractor, weights=args.weights, device=args.device,
                decoders=args.decoders, batch_size=args.batch_size, precision=args.precision, dtype=args.dtype,
                segment_length=args.segment_length, on_bad_video=args.on_bad_video,
                stride=args.segment_stride, crops=args.crops,
            )  # fmt: skip
            print(f"{len(report.written)} written, {len(report.kept)} kept, {len(report.bad)} bad -> {args.out}")
        elif args.command == "demo-data":
            from gclvad.datasets.synthetic.demo import generate_demo

            print(generate_demo(args.out, seed=args.seed))
        elif args.command == "watch":
            return watch_cli.run_watch(args)
        elif args.command == "calibrate":
            return watch_cli.run_calibrate(args)
        elif args.command in ("export", "summary"):
            return {"export": export_cli, "summary": summary_cli}[args.command].run(args)
    except GclvadError as error:
        print(f"gclvad: error: {error}", file=sys.stderr)
        return 2
    return 0


def main_cli() -> None:
    sys.exit(main())
