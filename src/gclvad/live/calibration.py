"""`gclvad calibrate`: the training-score quantiles of a run that did not record them.

It scores the run's recorded training features with its final model and writes
`CALIBRATION_FILE` beside the models file, where gclvad.live.threshold finds it.
"""

from __future__ import annotations

from pathlib import Path

from gclvad.atomic import write_json_atomic
from gclvad.datasets.segment_index import read_segment_index, split_videos
from gclvad.device import resolve_device
from gclvad.errors import GclvadError
from gclvad.features.feature_set import load_feature_set
from gclvad.live.threshold import CALIBRATION_FILE
from gclvad.scoring.quantiles import delivered_score_quantiles
from gclvad.scoring.run import read_run
from gclvad.scoring.scorer import load_scorer
from gclvad.weights import sha256_file


def calibrate_run(
    run: str | Path,
    features_path: str | Path | None = None,
    index_path: str | Path | None = None,
    train_on: tuple[str, ...] = ("train",),
    device: str = "cpu",
) -> Path:
    """Score a run's training features with its final model and write CALIBRATION_FILE beside
    its models file; returns that path.

    features_path, index_path: the dataset's merged feature file and segment index; by
    default where the workflow puts them for a run folder
    results/{dataset}/{extractor}/{variant}/seed{seed}: results/{dataset}/features/{extractor}.h5
    and results/{dataset}/segments.tsv. train_on: the dataset's `train_on` splits.
    """
    record = read_run(run)
    dataset_folder = record.folder.parents[2]
    # the features are named by the config's extractor entry (the run folder's), e.g. i3d_three, not the network
    extractor_entry = record.folder.parents[1].name
    features_path = Path(features_path or dataset_folder / "features" / f"{extractor_entry}.h5")
    index_path = Path(index_path or dataset_folder / "segments.tsv")
    for path, what, flag in (
        (features_path, "merged feature file", "--features"),
        (index_path, "segment index", "--index"),
    ):
        if not path.is_file():
            raise GclvadError(f"{path}: the run's {what} is not there; pass {flag} with its path")
    train_ids, _ = split_videos(read_segment_index(index_path), list(train_on))
    if not train_ids:
        raise GclvadError(f"{index_path}: no usable video of split(s) {', '.join(train_on)}; pass --train-on")
    scorer = load_scorer(record.models_path, record.postprocess, device=str(resolve_device(device)))
    quantiles = delivered_score_quantiles(scorer, load_feature_set(features_path, train_ids, record.crops))
    quantiles.update(models_sha256=sha256_file(record.models_path), features=str(features_path))
    out = record.folder / CALIBRATION_FILE
    write_json_atomic(out, quantiles)
    return out
