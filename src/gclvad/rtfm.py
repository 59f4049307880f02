"""Features published by others in the RTFM layout: list files and one .npy array per video.

The field's I3D features of UCF-Crime, ShanghaiTech and XD-Violence (Tian et al., RTFM) come
as one `<video>_i3d.npy` per video, shape (T, crops, d) or (T, d), listed in list files with
the paths their authors had (often Windows paths, CRLF). `import_rtfm` turns them into the
feature store's per-video files.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gclvad.errors import GclvadError
from gclvad.features import reject_non_finite, write_video_features

CROP_REDUCTIONS = ("mean", "first", "center")
TEN_CROPS = 10


def import_rtfm(
    list_file: str | Path,
    feature_dir: str | Path,
    out_dir: str | Path,
    extractor: str,
    crop_reduce: str = "mean",
    suffix: str = "_i3d.npy",
    segment_length: int = 16,
    dtype: str = "float32",
) -> dict[str, Path]:
    """Per-video feature files from features published in the RTFM layout.

    `list_file` names one .npy file a line (paths as their authors had them, often Windows
    paths with CRLF); only the file name is kept and looked up in `feature_dir`. Each array
    is (T, 10, d), ten crops reduced by `crop_reduce` ("mean" over crops; "first" or
    "center": crop index 0), or (T, d). Returns video id (file name minus `suffix`) -> path.
    """
    list_file, feature_dir, out_dir = Path(list_file), Path(feature_dir), Path(out_dir)
    if crop_reduce not in CROP_REDUCTIONS:
        raise GclvadError(f"crop_reduce must be one of {CROP_REDUCTIONS}, got {crop_reduce!r}")
    names = _rtfm_names(list_file, suffix)
    written = {}
    for video_id, name in names.items():
        source = feature_dir / name
        features = _rtfm_features(source, crop_reduce)
        target = out_dir / f"{video_id}.h5"
        attrs = {
            "extractor": extractor,
            "weights_sha256": "imported",
            "weights_random": False,
            "segment_length": int(segment_length),
            "frames": int(features.shape[0] * segment_length),
            "padded_tail": 0,
            "preprocessing": "imported from RTFM layout",
            "crop_reduce": crop_reduce,
            "source": str(source),
        }
        write_video_features(target, features, attrs, dtype=dtype)
        written[video_id] = target
    return written


def _rtfm_names(list_file: Path, suffix: str) -> dict[str, str]:
    """video id -> .npy file name for every line of an RTFM list file."""
    if not list_file.is_file():
        raise GclvadError(f"{list_file}: feature list not found")
    names: dict[str, str] = {}
    with open(list_file, encoding="utf-8-sig") as handle:
        for number, line in enumerate(handle, start=1):
            entry = line.strip()
            if not entry:
                continue
            name = entry.replace("\\", "/").rsplit("/", 1)[-1]
            if not name.endswith(suffix) or name == suffix:
                raise GclvadError(f"{list_file}: line {number}: {name!r} does not end with the suffix {suffix!r}")
            video_id = name[: -len(suffix)]
            if video_id in names:
                raise GclvadError(f"{list_file}: line {number}: video {video_id} is listed twice")
            names[video_id] = name
    if not names:
        raise GclvadError(f"{list_file}: lists no feature files")
    return names


def _rtfm_features(source: Path, crop_reduce: str) -> np.ndarray:
    if not source.is_file():
        raise GclvadError(f"{source}: feature file named in the list not found")
    try:
        array = np.load(source, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise GclvadError(f"{source}: cannot be read as a .npy array ({error})") from error
    if array.dtype.kind not in "biuf":
        raise GclvadError(f"{source}: expected numeric features, found dtype {array.dtype}")
    if array.ndim == 3 and array.shape[1] == TEN_CROPS and array.shape[0] > 0:
        array = array.astype(np.float32)
        features = array.mean(axis=1) if crop_reduce == "mean" else array[:, 0]
    elif array.ndim == 2 and array.shape[0] > 0:
        features = array.astype(np.float32)
    else:
        raise GclvadError(f"{source}: expected features of shape (T, {TEN_CROPS}, d) or (T, d), found {array.shape}")
    reject_non_finite(features, source, "features")
    return features
