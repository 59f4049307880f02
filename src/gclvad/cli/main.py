"""The `gclvad` command: a trained run on new videos, features and manifests outside Snakemake.

`main(argv)` is what tests call in-process; `main_cli()` is the console entry point. Usage
errors and bad input (GclvadError) end with a one-line message and exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from importlib import metadata
from pathlib import Path

from gclvad import __version__
from gclvad.cli import export as export_cli
from gclvad.cli import summary as summary_cli
from gclvad.cli import view as view_cli
from gclvad.cli import watch as watch_cli
from gclvad.datasets.manifest import write_manifest
from gclvad.decode.crops import CROP_MODES
from gclvad.decode.inputs import ON_BAD_VIDEO
from gclvad.errors import GclvadError
from gclvad.logs import command_log

EPILOG = """\
training is the workflow, not a subcommand: from the repository, with the dataset in
config/config.yaml (README.md),
  snakemake --cores 8 results/<dataset>/auc.json
trains the run (and evaluates it); `gclvad score` and `gclvad watch` then use it.

exit status: 0 done; 2 usage error or bad input (the message names the file and the
problem); watch: 3 a stream stayed lost longer than --give-up-after."""

FRAME_STEP_HELP = (
    "every k-th frame feeds the 16-frame segment, so a segment covers k times the time and a "
    "camera-second costs 1/k (default: 1, every frame: the paper's protocol)"
)
BAD_VIDEO_HELP = (
    "what a video that cannot be decoded does: 'stop' (default) stops at the first with an error naming "
    "it (exit 2); 'skip' reports each one with its reason and goes on; exit 0 then if at least one "
    "video was {done}, else 2"
)


def package_version() -> str:
    """The installed distribution's version, else (a source tree on sys.path) the package's."""
    try:
        return metadata.version("gclvad")
    except metadata.PackageNotFoundError:
        return __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gclvad",
        description=__doc__.splitlines()[0],
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", title="commands")

    score = commands.add_parser(
        "score",
        help="score new videos with a trained run",
        description="Decode, extract (same extractor and weights as the run, checked by sha256) "
        "and score videos; writes <out>/<id>.csv (per-frame scores) and <out>/<id>.png (id = file stem "
        "or folder name), prints each file written and then a summary. Exit status: 0 done (with "
        "--on-bad-video skip: at least one video scored); 2 usage error or bad input.",
    )
    score.add_argument("run", type=Path, help="a trained run folder (holds models.pt)")
    score.add_argument(
        "videos", type=Path, nargs="+", help="video files, frame folders, or folders of videos (as extract takes)"
    )
    score.add_argument("-o", "--out", type=Path, default=Path("scores"), help="output folder (default: scores)")
    score.add_argument(
        "--weights",
        help="extractor weights file (or 'random' / 'package'), if not where the run recorded them; "
        "its sha256 must be the one the run was trained with",
    )
    score.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    score.add_argument("--batch-size", type=int, help="clips per extractor call (default: the run's)")
    watch_cli.add_run_input_options(score)
    score.add_argument(
        "--on-bad-video", choices=ON_BAD_VIDEO, default="stop", help=BAD_VIDEO_HELP.format(done="scored")
    )

    extract = commands.add_parser(
        "extract",
        help="extract features of videos (no training)",
        description="Write one HDF5 feature file per video (<out>/<id>.h5, id = file stem or folder name), "
        "with parallel decoder processes and one network; files already complete are kept, so a "
        "killed run resumes. Exit status: 0 done (with --on-bad-video skip: at least one feature "
        "file written or kept); 2 usage error or bad input.",
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
    extract.add_argument(
        "--precision",
        choices=["auto", "fp32", "bf16"],
        default="auto",
        help="arithmetic of the network: auto (default: bf16 where the CPU or GPU computes it natively, else fp32), "
        "fp32, or bf16 (faster where native, features differ slightly; the files record the one used)",
    )
    extract.add_argument(
        "--dtype",
        choices=["float16", "float32"],
        default="float16",
        help="storage type of the features (default: float16)",
    )
    extract.add_argument("--segment-length", type=int, default=16, help="frames per segment (default: 16)")
    extract.add_argument(
        "--segment-stride", type=int, help="frames between segment starts (default: the segment length)"
    )
    extract.add_argument(
        "--crops", choices=list(CROP_MODES), default="centre", help="crops of every segment (default: centre)"
    )
    extract.add_argument("--frame-step", type=int, default=1, help=FRAME_STEP_HELP)
    extract.add_argument(
        "--on-bad-video", choices=ON_BAD_VIDEO, default="stop", help=BAD_VIDEO_HELP.format(done="extracted")
    )

    manifest = commands.add_parser(
        "manifest",
        help="write a generic dataset's videos.csv from a folder of videos",
        description="Find every video file and frame folder under DIR (recursively: class folders such as "
        "UCF-Crime's are searched; a folder of images is one video) and write the generic format's "
        "manifest (columns video,path; no split: every video is trained on and scored). Ids are the "
        "file stems or folder names, made safe (characters other than letters, digits, '_', '-', '.' "
        "become '_') and unique (-2, -3, ... on clashes); paths are relative to the manifest. Prints "
        "each id that differs from its file's name.",
    )
    manifest.add_argument("folder", type=Path, metavar="DIR", help="the folder of videos")
    manifest.add_argument("-o", "--out", type=Path, required=True, help="the manifest to write, e.g. videos.csv")
    manifest.add_argument("--force", action="store_true", help="overwrite the manifest if it exists")

    demo = commands.add_parser("demo-data", help="write the synthetic demo dataset")
    demo.add_argument("out", type=Path, help="folder to write the demo's videos and videos.csv into")
    demo.add_argument("--seed", type=int, default=0, help="random seed of the generated videos (default: 0)")

    watch_cli.add_parsers(commands)
    view_cli.add_parser(commands)
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
            return _score(args)
        elif args.command == "extract":
            return _extract(args)
        elif args.command == "manifest":
            return _manifest(args)
        elif args.command == "demo-data":
            from gclvad.datasets.synthetic.demo import generate_demo

            print(generate_demo(args.out, seed=args.seed))
        elif args.command == "watch":
            return watch_cli.run_watch(args)
        elif args.command == "calibrate":
            return watch_cli.run_calibrate(args)
        elif args.command in ("view", "export", "summary"):
            return {"view": view_cli, "export": export_cli, "summary": summary_cli}[args.command].run(args)
    except GclvadError as error:
        print(f"gclvad: error: {error}", file=sys.stderr)
        return 2
    return 0


def _skipped(bad: dict[str, str], done: int, what: str) -> int:
    """Each skipped video and its reason on stderr; exit status 2 when nothing was `what`."""
    for video, problem in bad.items():
        print(f"gclvad: skipped {video}: {problem}", file=sys.stderr)
    if bad and not done:
        print(f"gclvad: error: every video was bad ({len(bad)} skipped); none {what}", file=sys.stderr)
        return 2
    return 0


def _score(args: argparse.Namespace) -> int:
    from gclvad.scoring.footage import score_all

    report = score_all(
        args.run, args.videos, args.out, weights=args.weights, device=args.device,
        batch_size=args.batch_size, on_bad_video=args.on_bad_video, precision=args.precision,
        frame_step=args.frame_step,
    )  # fmt: skip
    for video in report.scored:  # stdout: the files written, one a line, for scripts
        print(video.csv)
        print(video.png)
    print(f"{len(report.scored)} scored, {len(report.bad)} bad -> {args.out}", file=sys.stderr)
    return _skipped(report.bad, len(report.scored), "scored")


def _extract(args: argparse.Namespace) -> int:
    from gclvad.extract.command import extract_to_folder

    report = extract_to_folder(
        args.videos, args.out, extractor=args.extractor, weights=args.weights, device=args.device,
        decoders=args.decoders, batch_size=args.batch_size, precision=args.precision, dtype=args.dtype,
        segment_length=args.segment_length, on_bad_video=args.on_bad_video,
        stride=args.segment_stride, crops=args.crops, frame_step=args.frame_step,
    )  # fmt: skip
    print(f"{len(report.written)} written, {len(report.kept)} kept, {len(report.bad)} bad -> {args.out}")
    return _skipped(report.bad, len(report.written) + len(report.kept), "extracted")


def _manifest(args: argparse.Namespace) -> int:
    entries = write_manifest(args.folder, args.out, force=args.force)
    for entry in entries:
        if entry.renamed:
            print(f"{entry.source} -> {entry.video}")
    renamed = sum(entry.renamed for entry in entries)
    print(f"{len(entries)} videos ({renamed} ids changed to be safe and unique) -> {args.out}")
    return 0


def main_cli() -> None:
    sys.exit(main())
