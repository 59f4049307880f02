"""`gclvad`'s promises on its own help: every option explained, training named, the version."""

from __future__ import annotations

import argparse

import pytest
from videos import make_frame_folder, make_video

import gclvad
from gclvad.cli.main import build_parser, main
from gclvad.datasets.readers import load_dataset


def _parsers(parser: argparse.ArgumentParser, name: str = "gclvad"):
    """(name, parser) of the command and of every subcommand, depth first."""
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub, subparser in action.choices.items():
                yield from _parsers(subparser, f"{name} {sub}")


def test_every_option_and_subcommand_has_help():
    missing = []
    for name, parser in _parsers(build_parser()):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                helped = {choice.dest for choice in action._choices_actions if choice.help}
                missing += [f"{name} {sub} (subcommand)" for sub in action.choices if sub not in helped]
            elif not action.help or action.help == argparse.SUPPRESS:
                missing.append(f"{name} {'/'.join(action.option_strings) or action.dest}")
    assert missing == []


def test_help_says_training_is_the_workflow(capsys):
    with pytest.raises(SystemExit) as stopped:
        main(["--help"])
    shown = capsys.readouterr().out
    assert stopped.value.code == 0
    assert "snakemake --cores 8 results/<dataset>/auc.json" in shown and "training is the workflow" in shown
    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices
    assert not {"train", "fit"} & set(commands)


def test_version_is_the_packages(capsys):
    with pytest.raises(SystemExit) as stopped:
        main(["--version"])
    assert stopped.value.code == 0 and capsys.readouterr().out.strip() == f"gclvad {gclvad.__version__}"


# ---------------------------------------------------------------- gclvad manifest


@pytest.fixture
def footage(tmp_path):
    """UCF-Crime-like class folders: clashing stems, an unsafe name, a frame folder, a non-video."""
    root = tmp_path / "footage"
    make_video(root / "Abuse" / "clip 1.mkv", 16)
    make_video(root / "Arson" / "clip 1.mkv", 16)
    make_video(root / "Arson" / "clip_1.mkv", 16)
    make_video(root / "street.mkv", 16)
    make_frame_folder(root / "Lobby" / "cam.2", 16)
    (root / "notes.txt").write_text("not a video\n")
    return root


def test_manifest_reads_back_with_safe_unique_ids(footage, tmp_path, capsys):
    out = tmp_path / "lists" / "videos.csv"
    out.parent.mkdir()
    assert main(["manifest", str(footage), "-o", str(out)]) == 0
    printed = capsys.readouterr().out.splitlines()
    videos = load_dataset({"format": "generic", "manifest": str(out)})
    assert [(v.id, v.source.resolve()) for v in videos] == [
        ("clip_1", (footage / "Abuse" / "clip 1.mkv").resolve()),
        ("clip_1-2", (footage / "Arson" / "clip 1.mkv").resolve()),
        ("clip_1-3", (footage / "Arson" / "clip_1.mkv").resolve()),
        ("cam.2", (footage / "Lobby" / "cam.2").resolve()),
        ("street", (footage / "street.mkv").resolve()),
    ]
    assert all(v.split is None and v.problem == "" for v in videos)
    assert out.read_text().splitlines()[1] == "clip_1,../footage/Abuse/clip 1.mkv"  # relative to the csv
    assert printed == [
        f"{footage / 'Abuse' / 'clip 1.mkv'} -> clip_1",
        f"{footage / 'Arson' / 'clip 1.mkv'} -> clip_1-2",
        f"{footage / 'Arson' / 'clip_1.mkv'} -> clip_1-3",
        f"5 videos (3 ids changed to be safe and unique) -> {out}",
    ]


def test_manifest_refuses_to_overwrite_without_force(footage, tmp_path, capsys):
    out = tmp_path / "videos.csv"
    out.write_text("mine\n")
    assert main(["manifest", str(footage), "-o", str(out)]) == 2
    assert capsys.readouterr().err.strip() == f"gclvad: error: {out}: exists; pass --force to overwrite it"
    assert out.read_text() == "mine\n"
    assert main(["manifest", str(footage), "-o", str(out), "--force"]) == 0
    assert out.read_text().startswith("video,path\n")


def test_manifest_of_a_folder_without_videos_names_it(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["manifest", str(tmp_path / "empty"), "-o", str(tmp_path / "v.csv")]) == 2
    assert f"{tmp_path / 'empty'}: holds no videos" in capsys.readouterr().err
    assert not (tmp_path / "v.csv").exists()
