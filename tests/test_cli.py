"""The `gclvad` command in-process: importing RTFM features, writing demo data, usage errors."""

import numpy as np
import pandas as pd

from gclvad.cli import main
from gclvad.features import read_video_features


def test_import_rtfm_from_a_windows_list(tmp_path, capsys):
    features = tmp_path / "npy"
    features.mkdir()
    ten_crop = np.arange(3 * 10 * 4, dtype=np.float32).reshape(3, 10, 4)
    np.save(features / "Abuse028_x264_i3d.npy", ten_crop)
    (tmp_path / "test.list").write_bytes(b"G:\\UCF_Test_ten_crop_i3d\\Abuse028_x264_i3d.npy\r\n")
    assert (
        main(["import-rtfm", str(tmp_path / "test.list"), str(features), str(tmp_path / "out"), "--extractor", "i3d"])
        == 0
    )
    assert "1 videos imported" in capsys.readouterr().out
    stored, attrs = read_video_features(tmp_path / "out" / "Abuse028_x264.h5")
    assert np.allclose(stored, ten_crop.mean(axis=1))
    assert attrs["extractor"] == "i3d" and attrs["frames"] == 3 * 16


def test_missing_list_file_exits_2_with_one_line(tmp_path, capsys):
    code = main(["import-rtfm", str(tmp_path / "none.list"), str(tmp_path), str(tmp_path / "o"), "--extractor", "i3d"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "none.list" in err


def test_demo_data(tmp_path, capsys):
    assert main(["demo-data", str(tmp_path / "demo"), "--seed", "1"]) == 0
    manifest = pd.read_csv(tmp_path / "demo" / "videos.csv")
    assert set(manifest["split"]) == {"train", "test"}
