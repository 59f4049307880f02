"""Dataset readers on small fixtures written in the exact formats of the published files."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from gclvad.datasets.base import FrameMask, Intervals, scored_videos, training_videos
from gclvad.datasets.readers import load_dataset
from gclvad.datasets.ucf_crime import read_temporal_annotations, read_video_list
from gclvad.errors import BadDatasetError, GclvadError


def touch(path: Path, content: bytes = b"not really a video") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def frame_folder(path: Path, frames: int = 3) -> Path:
    for i in range(frames):
        touch(path / f"{i:06d}.jpg")
    return path


def by_id(videos):
    return {video.id: video for video in videos}


# ---------------------------------------------------------------- generic


@pytest.fixture
def generic_dataset(tmp_path):
    data = tmp_path / "data"
    touch(data / "clips" / "a.mp4")
    touch(data / "clips" / "b.mp4")
    frame_folder(data / "frames" / "c")
    (data / "videos.csv").write_text(
        "video,path,split,label\na,clips/a.mp4,train,0\nb,clips/b.mp4,test,1\nc,frames/c,test,\n"
    )
    (data / "annotations.csv").write_text("video,start_frame,end_frame\nb,40,50\nb,10,20\n")
    return data


def test_generic_reads_paths_splits_labels_and_intervals(generic_dataset, monkeypatch):
    monkeypatch.chdir(generic_dataset.parent)  # spec paths are relative to the cwd
    videos = by_id(
        load_dataset({"format": "generic", "manifest": "data/videos.csv", "annotations": "data/annotations.csv"})
    )

    assert list(videos) == ["a", "b", "c"]
    assert videos["a"].source == Path("data/clips/a.mp4")  # relative to the manifest's folder
    assert videos["c"].source == Path("data/frames/c")
    assert [videos[v].split for v in "abc"] == ["train", "test", "test"]
    assert [videos[v].label for v in "abc"] == [0, 1, None]

    annotation = videos["b"].annotation
    assert annotation == Intervals(((10, 20), (40, 50)), source=Path("data/annotations.csv"))
    truth = videos["b"].truth(60)
    assert truth.sum() == 20 and truth[10] and not truth[20] and truth[49] and not truth[50]
    assert not videos["a"].truth(7).any()  # label 0: all normal
    assert videos["c"].truth(7) is None  # no label, no annotation: unknown

    assert [v.id for v in training_videos(videos.values())] == ["a"]
    assert [v.id for v in training_videos(videos.values(), train_on=("train", "test"))] == ["a", "b", "c"]
    assert [v.id for v in scored_videos(videos.values())] == ["b", "c"]


def test_generic_without_split_column_trains_on_and_scores_everything(tmp_path):
    touch(tmp_path / "x.avi")
    touch(tmp_path / "y.avi")
    (tmp_path / "videos.csv").write_text("video,path\r\nx,x.avi\r\ny,y.avi")  # CRLF, no final newline
    videos = load_dataset({"format": "generic", "manifest": str(tmp_path / "videos.csv")})
    assert [(v.id, v.split, v.label, v.annotation) for v in videos] == [
        ("x", None, None, None),
        ("y", None, None, None),
    ]
    assert len(training_videos(videos)) == 2 and len(scored_videos(videos)) == 2


def test_generic_annotation_beyond_the_video_fails_once_frames_are_known(generic_dataset):
    videos = by_id(
        load_dataset(
            {
                "format": "generic",
                "manifest": str(generic_dataset / "videos.csv"),
                "annotations": str(generic_dataset / "annotations.csv"),
            }
        )
    )
    with pytest.raises(BadDatasetError, match=r"annotations\.csv.*\[40, 50\).*45 frames"):
        videos["b"].truth(45)


@pytest.mark.parametrize(
    "manifest, message",
    [
        ("video,path,lable\na,a.mp4,1\n", "unknown column.*lable"),
        ("video,file\na,a.mp4\n", "lacks the column.*path"),
        ("video,path,split\na,a.mp4,val\n", "line 2: split must be.*'val'"),
        ("video,path,label\na,a.mp4,2\n", "line 2: label must be 0, 1 or empty.*'2'"),
        ("video,path\n../x,a.mp4\n", "line 2: video id '../x' is not allowed"),
        ("video,path,split\n\nb,a.mp4,val\n.c,a.mp4\n", "2 problems:\n  line 3: split.*\n  line 4: video id '.c'"),
        ("video,path\n", "lists no videos"),
    ],
)
def test_generic_manifest_errors_name_the_file_and_the_problem(tmp_path, manifest, message):
    touch(tmp_path / "a.mp4")
    (tmp_path / "videos.csv").write_text(manifest)
    with pytest.raises(BadDatasetError, match=message) as caught:
        load_dataset({"format": "generic", "manifest": str(tmp_path / "videos.csv")})
    assert caught.value.path == tmp_path / "videos.csv"


@pytest.mark.parametrize(
    "annotations, message",
    [
        ("video,start_frame,end_frame\nzz,0,5\n", "line 2: video 'zz' is not in the manifest"),
        ("video,start_frame,end_frame\na,-1,5\n", r"line 2: interval \[-1, 5\)"),
        ("video,start_frame,end_frame\na,5,5\n", r"line 2: interval \[5, 5\)"),
        ("video,start_frame,end_frame\na,x,5\n", "line 2: start_frame must be an integer"),
        ("video,start\na,1\n", "lacks the column"),
    ],
)
def test_generic_annotation_errors_name_the_file(tmp_path, annotations, message):
    touch(tmp_path / "a.mp4")
    (tmp_path / "videos.csv").write_text("video,path\na,a.mp4\n")
    (tmp_path / "annotations.csv").write_text(annotations)
    with pytest.raises(BadDatasetError, match=message) as caught:
        load_dataset(
            {
                "format": "generic",
                "manifest": str(tmp_path / "videos.csv"),
                "annotations": str(tmp_path / "annotations.csv"),
            }
        )
    assert caught.value.path == tmp_path / "annotations.csv"


def test_generic_normal_label_with_intervals_is_a_contradiction(tmp_path):
    touch(tmp_path / "a.mp4")
    (tmp_path / "videos.csv").write_text("video,path,label\na,a.mp4,0\n")
    (tmp_path / "annotations.csv").write_text("video,start_frame,end_frame\na,0,5\n")
    with pytest.raises(BadDatasetError, match="label 0"):
        load_dataset(
            {
                "format": "generic",
                "manifest": str(tmp_path / "videos.csv"),
                "annotations": str(tmp_path / "annotations.csv"),
            }
        )


def test_unknown_format_and_missing_keys_are_named():
    with pytest.raises(GclvadError, match=r"'kinetics'.*generic, shanghaitech, ucf_crime"):
        load_dataset({"format": "kinetics"})
    with pytest.raises(GclvadError, match="lacks the key 'manifest'"):
        load_dataset({"format": "generic"})
    with pytest.raises(GclvadError, match="lacks the key 'annotations'"):
        load_dataset({"format": "ucf_crime", "root": ".", "train_list": "x", "test_list": "y"})


# ---------------------------------------------------------------- UCF-Crime

# Lines copied in the exact shape of Temporal_Anomaly_Annotation_for_Testing_Videos.txt:
# two spaces between columns, two trailing spaces; here with CRLF endings too.
UCF_ANNOTATIONS = (
    "Abuse028_x264.mp4  Abuse  165  240  -1  -1  \r\n"
    "Vandalism017_x264.mp4  Vandalism  270  330  780  840  \r\n"
    "Normal_Videos_003_x264.mp4  Normal  -1  -1  -1  -1  \r\n"
)


def ucf_fixture(tmp_path: Path, layout: str = "official") -> dict:
    root = tmp_path / "UCF_Crimes"
    if layout == "official":
        places = {
            "Abuse001_x264": "Anomaly-Videos-Part-1/Abuse",
            "Abuse028_x264": "Anomaly-Videos-Part-1/Abuse",
            "Vandalism017_x264": "Anomaly-Videos-Part-4/Vandalism",
            "Normal_Videos001_x264": "Training-Normal-Videos-Part-1",
            "Normal_Videos_003_x264": "Testing_Normal_Videos_Anomaly",
        }
    else:
        places = {
            "Abuse001_x264": "Videos/Abuse",
            "Abuse028_x264": "Videos/Abuse",
            "Vandalism017_x264": "Videos/Vandalism",
            "Normal_Videos001_x264": "Videos/Normal",
            "Normal_Videos_003_x264": "Videos/Normal",
        }
    for video, folder in places.items():
        touch(root / folder / f"{video}.mp4")
    train = tmp_path / "Anomaly_Train.txt"
    train.write_bytes(b"Abuse/Abuse001_x264.mp4\r\nTraining_Normal_Videos_Anomaly/Normal_Videos001_x264.mp4\r\n\r\n")
    test = tmp_path / "ucf-crime.testing.csv"
    test.write_text("video-id\nAbuse028_x264\nVandalism017_x264\nNormal_Videos_003_x264")
    annotations = tmp_path / "Temporal_Anomaly_Annotation_for_Testing_Videos.txt"
    annotations.write_bytes(UCF_ANNOTATIONS.encode())
    return {
        "format": "ucf_crime",
        "root": str(root),
        "train_list": str(train),
        "test_list": str(test),
        "annotations": str(annotations),
    }


@pytest.mark.parametrize("layout", ["official", "flat"])
def test_ucf_crime_reads_both_layouts_labels_and_splits(tmp_path, layout):
    spec = ucf_fixture(tmp_path, layout)
    videos = by_id(load_dataset(spec))
    assert list(videos) == [
        "Abuse001_x264",
        "Normal_Videos001_x264",
        "Abuse028_x264",
        "Vandalism017_x264",
        "Normal_Videos_003_x264",
    ]
    assert [v.split for v in videos.values()] == ["train", "train", "test", "test", "test"]
    assert [v.label for v in videos.values()] == [1, 0, 1, 1, 0]
    assert videos["Abuse028_x264"].source.name == "Abuse028_x264.mp4" and videos["Abuse028_x264"].source.is_file()
    assert [v.id for v in scored_videos(videos.values())] == [
        "Abuse028_x264",
        "Vandalism017_x264",
        "Normal_Videos_003_x264",
    ]
    assert videos["Abuse001_x264"].annotation is None and videos["Abuse001_x264"].truth(10) is None
    assert not videos["Normal_Videos_003_x264"].truth(10).any()


def test_ucf_crime_annotation_is_one_based_inclusive(tmp_path):
    videos = by_id(load_dataset(ucf_fixture(tmp_path)))
    # "Abuse028_x264.mp4  Abuse  165  240  -1  -1": frames 165..240 counted from 1.
    assert videos["Abuse028_x264"].annotation.spans == ((164, 240),)
    truth = videos["Abuse028_x264"].truth(300)
    assert truth.sum() == 76
    assert not truth[163] and truth[164] and truth[239] and not truth[240]
    # Two events: 270..330 and 780..840.
    assert videos["Vandalism017_x264"].annotation.spans == ((269, 330), (779, 840))
    assert videos["Vandalism017_x264"].truth(900).sum() == 61 + 61
    # An event that ends on the video's last frame (1-based 240 of 240 frames) fits.
    assert videos["Abuse028_x264"].truth(240).sum() == 76
    with pytest.raises(BadDatasetError, match="239 frames"):
        videos["Abuse028_x264"].truth(239)


def test_ucf_crime_list_formats(tmp_path):
    official = tmp_path / "Anomaly_Test.txt"
    official.write_bytes(b"Abuse/Abuse028_x264.mp4\r\n\r\nTesting_Normal_Videos_Anomaly/Normal_Videos_003_x264.mp4")
    csv = tmp_path / "test.csv"
    csv.write_bytes(b"video-id\r\nAbuse028_x264\r\nNormal_Videos_003_x264\r\n\r\n")
    assert read_video_list(official) == read_video_list(csv) == ["Abuse028_x264", "Normal_Videos_003_x264"]


@pytest.mark.parametrize(
    "line, message",
    [
        ("Abuse028_x264.mp4  Abuse  165  240  -1\n", "line 1: expected 6 columns.*found 5"),
        ("Abuse028_x264.mp4  Abuse  240  165  -1  -1\n", "line 1: interval 240..165"),
        ("Abuse028_x264.mp4  Abuse  0  10  -1  -1\n", "line 1: interval 0..10"),
        ("Abuse028_x264.mp4  Abuse  1  x  -1  -1\n", "line 1: frame numbers must be integers"),
        (
            "Abuse028_x264.mp4  Abuse  1  5  -1  -1\nAbuse028_x264.mp4  Abuse  1  5  -1  -1\n",
            "line 2: .*annotated twice",
        ),
    ],
)
def test_ucf_crime_annotation_errors_name_file_and_line(tmp_path, line, message):
    path = tmp_path / "annotations.txt"
    path.write_text(line)
    with pytest.raises(BadDatasetError, match=message) as caught:
        read_temporal_annotations(path)
    assert caught.value.path == path


def test_ucf_crime_missing_video_names_it_and_the_root(tmp_path):
    spec = ucf_fixture(tmp_path)
    next(Path(spec["root"]).rglob("Vandalism017_x264.mp4")).unlink()
    missing = by_id(load_dataset(spec))["Vandalism017_x264"]  # the segment index reports it
    assert missing.problem == f"is listed but no file named Vandalism017_x264.* is found below {spec['root']}"
    assert missing.listed_at.startswith(spec["test_list"] + " line ")


def test_ucf_crime_duplicate_copies(tmp_path):
    spec = ucf_fixture(tmp_path)
    root = Path(spec["root"])
    # The official download keeps some normal videos twice; an identical copy is harmless.
    touch(root / "Normal_Videos_for_Event_Recognition" / "Normal_Videos_003_x264.mp4")
    assert by_id(load_dataset(spec))["Normal_Videos_003_x264"].source.is_file()
    # The list's folder decides between different files ...
    touch(root / "Elsewhere" / "Abuse001_x264.mp4", b"a different, longer file")
    assert by_id(load_dataset(spec))["Abuse001_x264"].source.parent.parent.name == "Anomaly-Videos-Part-1"
    # ... and without such a hint (CSV list) two different files are an error.
    touch(root / "Other" / "Abuse028_x264.mp4", b"another different file")
    assert "is found more than once" in by_id(load_dataset(spec))["Abuse028_x264"].problem


def test_ucf_crime_split_and_annotation_consistency(tmp_path):
    spec = ucf_fixture(tmp_path)
    # Ids listed twice (or in both lists) are reported by the segment index, with these lines.
    Path(spec["train_list"]).write_text("Abuse/Abuse001_x264.mp4\nAbuse/Abuse028_x264.mp4\n")
    listed = [(v.id, v.listed_at) for v in load_dataset(spec) if v.id == "Abuse028_x264"]
    assert listed == [
        ("Abuse028_x264", f"{spec['train_list']} line 2"),
        ("Abuse028_x264", f"{spec['test_list']} line 2"),
    ]
    Path(spec["train_list"]).write_text("Abuse/Abuse001_x264.mp4\n")
    Path(spec["annotations"]).write_text(UCF_ANNOTATIONS.splitlines()[0] + "\n")
    with pytest.raises(BadDatasetError, match="no line for the anomalous test video Vandalism017_x264"):
        load_dataset(spec)
    Path(spec["annotations"]).write_text(UCF_ANNOTATIONS.replace("Vandalism  270", "Normal  270"))
    with pytest.raises(BadDatasetError, match="class 'Normal' of Vandalism017_x264 disagrees"):
        load_dataset(spec)


# ---------------------------------------------------------------- ShanghaiTech


def shanghaitech_fixture(tmp_path: Path) -> dict:
    root = tmp_path / "shanghaitech"
    touch(root / "training" / "videos" / "01_001.avi")
    touch(root / "training" / "videos" / "01_002.avi")
    frame_folder(root / "testing" / "frames" / "01_0014", 6)
    frame_folder(root / "testing" / "frames" / "01_0015", 4)
    masks = tmp_path / "test_frame_mask"
    masks.mkdir()
    np.save(masks / "01_0014.npy", np.array([0, 0, 1, 1, 1, 0], dtype=np.uint8))
    np.save(masks / "01_0015.npy", np.array([0, 0, 0, 0], dtype=np.uint8))
    train = tmp_path / "SH_Train.txt"
    train.write_text("01_0014\n01_001")  # no trailing newline, as published
    test = tmp_path / "SH_Test.txt"
    test.write_text("01_002\n01_0015")
    return {
        "format": "shanghaitech",
        "root": str(root),
        "train_list": str(train),
        "test_list": str(test),
        "frame_masks": str(masks),
    }


def test_shanghaitech_sources_labels_and_masks(tmp_path):
    spec = shanghaitech_fixture(tmp_path)
    videos = by_id(load_dataset(spec))
    assert [(v.id, v.split, v.label) for v in videos.values()] == [
        ("01_0014", "train", 1),
        ("01_001", "train", 0),
        ("01_002", "test", 0),
        ("01_0015", "test", 0),
    ]
    assert videos["01_001"].source == Path(spec["root"]) / "training/videos/01_001.avi"
    assert videos["01_0014"].source == Path(spec["root"]) / "testing/frames/01_0014"
    assert videos["01_0014"].annotation == FrameMask(Path(spec["frame_masks"]) / "01_0014.npy")
    assert videos["01_0014"].truth(6).tolist() == [False, False, True, True, True, False]
    assert videos["01_002"].annotation is None and not videos["01_002"].truth(9).any()
    assert [v.id for v in scored_videos(videos.values())] == ["01_002", "01_0015"]
    assert [v.id for v in training_videos(videos.values())] == ["01_0014", "01_001"]


def test_shanghaitech_mask_length_must_match_the_frames(tmp_path):
    videos = by_id(load_dataset(shanghaitech_fixture(tmp_path)))
    with pytest.raises(BadDatasetError, match="frame mask has 6 entries but the video has 7 frames") as caught:
        videos["01_0014"].truth(7)
    assert caught.value.path.name == "01_0014.npy"


def test_shanghaitech_prefers_the_avi_and_names_both_places_when_missing(tmp_path):
    spec = shanghaitech_fixture(tmp_path)
    root = Path(spec["root"])
    frame_folder(root / "testing" / "frames" / "01_001")
    assert by_id(load_dataset(spec))["01_001"].source.suffix == ".avi"
    Path(spec["test_list"]).write_text("01_002\n01_0015\n07_0099\n")
    problem = by_id(load_dataset(spec))["07_0099"].problem
    assert re.fullmatch(
        "video 07_0099 is neither the file .*training/videos/07_0099.avi nor the folder .*testing/frames/07_0099",
        problem,
    )


def test_shanghaitech_frame_folder_without_mask_and_duplicates(tmp_path):
    spec = shanghaitech_fixture(tmp_path)
    (Path(spec["frame_masks"]) / "01_0015.npy").unlink()
    assert "01_0015.npy does not exist" in by_id(load_dataset(spec))["01_0015"].problem
    spec = shanghaitech_fixture(tmp_path / "again")
    Path(spec["train_list"]).write_text("01_0014\n01_001\n01_0014\n")
    twice = [v.listed_at for v in load_dataset(spec) if v.id == "01_0014"]
    assert twice == [f"{spec['train_list']} line 1", f"{spec['train_list']} line 3"]  # the index reports them
