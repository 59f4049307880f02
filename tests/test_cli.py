"""The `gclvad` command in-process: writing demo data, usage errors."""

import pandas as pd

from gclvad.cli.main import main


def test_a_missing_video_exits_2_with_one_line(tmp_path, capsys):
    code = main(["score", str(tmp_path / "run"), str(tmp_path / "none.mp4"), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "none.mp4" in err


def test_demo_data(tmp_path, capsys):
    assert main(["demo-data", str(tmp_path / "demo"), "--seed", "1"]) == 0
    manifest = pd.read_csv(tmp_path / "demo" / "videos.csv")
    assert set(manifest["split"]) == {"train", "test"}
