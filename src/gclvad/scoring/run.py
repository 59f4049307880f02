"""A trained run, opened for scoring new footage: its record, its extractor, its scorer.

A run (results/{dataset}/{extractor}/{variant}/seed{seed}/) records in its models.pt which
extractor made its features (name, weights, precision, batch size, stored dtype), the segment
length, and the sha256 of the weights and the preprocessing of those features. Opening it
builds the same extractor and refuses weights whose sha256 differs (features of other
weights would make the scores meaningless), and loads the scorer the run delivers with.
`gclvad score` and `gclvad watch` both open runs with `open_run`.

"random" weights (untrained network, tests only) are a marker, not a file: a run trained on
random features accepts only that marker, and a run trained on a weights file never accepts it.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch

from gclvad.device import resolve_device
from gclvad.errors import GclvadError
from gclvad.extract.networks.registry import build_extractor
from gclvad.extract.networks.speed import resolve_precision
from gclvad.gcl.store import read_models_metadata
from gclvad.scoring.postprocess import PostprocessConfig
from gclvad.scoring.scorer import EnsembleScorer, RunScorer, load_scorer
from gclvad.weights import MARKERS, RANDOM_WEIGHTS, sha256_file

log = logging.getLogger(__name__)

# Largest ||features - run's features|| / ||run's features|| on one clip allowed when scoring in
# another precision than the run's features were extracted in: 3x the typical bf16 vs fp32
# difference, so that the rounding of bf16 passes and anything more (a network that bf16 breaks,
# e.g. by cancellation) is refused. Typical: I3D (package weights) on the 8 clips of a synthetic
# street video, median 1.13e-2, max 1.25e-2; on the seeded noise clip this check uses, 1.50e-2
# (`.venv/bin/python benchmarks/ceiling.py --sections tolerance`, AMD EPYC with avx512_bf16,
# torch 2.14.1, 2026-12-02).
PRECISION_TOLERANCE = 0.034
PRECISION_CHECK_SEED = 0

MODELS_FILE = "models.pt"
# Written by the workflow's score_run beside scores.h5: how the run's scores are
# post-processed, how its crops are used, and which models file scores (a variant that only
# post-processes differently scores with its training variant's networks).
POSTPROCESS_FILE = "postprocess.json"


@dataclass(frozen=True)
class RunRecord:
    """How a run's features were made, as its models file records it."""

    models_path: Path
    extractor: dict  # name, weights, precision, batch_size, dtype
    segment_length: int
    weights_sha256: str
    preprocessing: str | None
    postprocess: PostprocessConfig = field(default_factory=PostprocessConfig)
    crops: str = "mean"  # how the run used features with several crops per segment
    segment_stride: int = 0  # frames between window starts (the segment length: consecutive)
    scoring: dict = field(default_factory=dict)  # the workflow's postprocess.json of the run, if any
    frame_step: int = 1  # every frame_step-th frame fed the run's segments

    def __post_init__(self) -> None:
        if not self.segment_stride:
            object.__setattr__(self, "segment_stride", self.segment_length)

    @property
    def span(self) -> int:
        """Frames of a video one segment spans."""
        return self.segment_length * self.frame_step

    @property
    def folder(self) -> Path:
        return self.models_path.parent


# ---------------------------------------------------------------- the run


def read_run(run: str | Path) -> RunRecord:
    """The record of a run folder (or of its models.pt given directly)."""
    run = Path(run)
    folder = run.parent if run.is_file() else run
    scoring = json.loads((folder / POSTPROCESS_FILE).read_text()) if (folder / POSTPROCESS_FILE).is_file() else {}
    models_path = run if run.is_file() else folder / scoring.get("models", MODELS_FILE)
    if not models_path.is_file():
        raise GclvadError(
            f"{run}: not a trained run (expected {models_path}, written by the workflow's rule gcl_loop, "
            "autoencoder or ensemble)"
        )
    metadata = read_models_metadata(models_path)
    if metadata.get("weights_sha256") == "published":
        raise GclvadError(
            f"{models_path}: the run was trained on published features ({metadata.get('feature_source', '?')}); "
            "scoring new videos extracts their features, which needs a run trained on features gclvad "
            "extracted itself (a dataset of videos)"
        )
    missing = [key for key in ("extractor", "segment_length", "weights_sha256") if key not in metadata]
    if missing:
        raise GclvadError(
            f"{models_path}: records no {', '.join(missing)} (models saved outside the workflow); "
            "only runs trained by the workflow can score new videos"
        )
    crop_use = scoring.get("crops", metadata.get("crops", "mean"))  # runs recorded before `centre` wrote `center`
    return RunRecord(
        models_path=models_path,
        extractor=dict(metadata["extractor"]),
        segment_length=int(metadata["segment_length"]),
        weights_sha256=metadata["weights_sha256"],
        preprocessing=metadata.get("preprocessing"),
        postprocess=PostprocessConfig(**scoring.get("postprocess", {})),
        crops=crop_use if crop_use != "center" else "centre",
        segment_stride=int(metadata.get("segment_stride") or metadata["segment_length"]),
        scoring=scoring,
        frame_step=int(metadata.get("frame_step", 1)),
    )


# ---------------------------------------------------------------- the extractor and its weights


def weights_argument(weights: str | Path | None, record: RunRecord) -> str | Path:
    """What build_extractor takes: the "random" or "package" marker, or an existing file.

    `weights` (None: the run's recorded weights) is read relative to the current folder.
    """
    given = weights is not None
    text = str(weights if given else record.extractor.get("weights", ""))
    if text in MARKERS:
        return text
    path = Path(text).absolute()
    if not text or not path.is_file():
        if given:
            raise GclvadError(f"weights file {path} does not exist")
        raise GclvadError(
            f"{record.models_path}: the run was trained with extractor weights {text!r}, which are not at "
            f"{path} (relative paths are read from the current folder); pass --weights "
            "(weights= in Python) with the path of that file"
        )
    return path


def check_frame_step(frame_step: int | None, record: RunRecord) -> None:
    """Refuse another frame step than the run's: its networks learnt segments spanning
    frame_step times segment_length frames, and other spans score other motion."""
    if frame_step is not None and int(frame_step) != record.frame_step:
        raise GclvadError(
            f"{record.models_path}: the run was trained with frame_step {record.frame_step}, not {frame_step}; "
            "segments of another frame step show other motion than the networks learnt, so leave "
            "--frame-step out to use the run's"
        )


def check_weights_digest(digest: str, weights: str | Path, record: RunRecord) -> None:
    """Refuse weights other than those the run's features were extracted with."""
    if digest != record.weights_sha256:
        raise GclvadError(
            f"weights {weights} have sha256 {digest}, but run {record.folder} was trained on features of weights "
            f"with sha256 {record.weights_sha256} ({record.extractor.get('weights')}); features of other weights "
            "would make its scores meaningless: pass the weights the run was trained with"
        )


def build_run_extractor(record: RunRecord, weights: str | Path | None, device: str, precision: str | None = None):
    """The run's extractor, with its weights checked by sha256 (before loading, where a file),
    in the precision its features were extracted in, or in `precision` where its features differ
    from those by at most PRECISION_TOLERANCE (`check_precision_change`)."""
    argument = weights_argument(weights, record)
    if isinstance(argument, Path):
        check_weights_digest(sha256_file(argument), argument, record)
    elif argument == RANDOM_WEIGHTS:
        check_weights_digest(RANDOM_WEIGHTS, argument, record)
        log.warning(
            "run %s was trained on features of an untrained (random) network; its scores of new videos "
            "match its own only where the random network is rebuilt identically (tests only)",
            record.folder,
        )
    recorded = record.extractor.get("precision", "fp32")  # resolved, unless recorded before "auto" existed

    def build(in_precision: str):
        return build_extractor(
            record.extractor["name"], argument, device=device, precision=in_precision,
            crops=record.extractor.get("crops", "centre"),
        )  # fmt: skip

    extractor = build(recorded)
    if precision is not None and resolve_precision(precision, extractor.device) != extractor.precision:
        asked = build(precision)
        check_precision_change(extractor, asked, record)
        extractor = asked
    # "package" is hashed by the builder; for the others this confirms what was checked above.
    check_weights_digest(extractor.weights_sha256, argument, record)
    described = extractor.preprocessing.describe()
    if record.preprocessing is not None and described != record.preprocessing:
        raise GclvadError(
            f"run {record.folder} was trained on frames prepared as {record.preprocessing!r}, but extractor "
            f"{extractor.name!r} now prepares them as {described!r}; its scores would not be comparable"
        )
    return extractor


def precision_difference(reference, other, seed: int = PRECISION_CHECK_SEED) -> float:
    """||other's features - reference's|| / ||reference's|| of one clip (seeded noise of the
    reference's input shape): how far scoring in `other`'s precision moves the run's features."""
    crop = reference.preprocessing.crop
    height, width = (crop, crop) if isinstance(crop, int) else crop
    generator = torch.Generator().manual_seed(seed)
    clip = torch.randn(1, 3, reference.required_frames or 16, height, width, generator=generator)
    expected = reference.extract(clip)
    return float(torch.linalg.vector_norm(other.extract(clip) - expected) / torch.linalg.vector_norm(expected))


def check_precision_change(reference, other, record: RunRecord, tolerance: float | None = None) -> None:
    """Refuse `other` (another precision) when its features of a clip differ from those of
    `reference` (the run's precision) by more than `tolerance` (default PRECISION_TOLERANCE)."""
    tolerance = PRECISION_TOLERANCE if tolerance is None else tolerance
    difference = precision_difference(reference, other)
    if difference > tolerance:
        raise GclvadError(
            f"run {record.folder} was trained on {reference.precision} features of {reference.name!r}; in "
            f"{other.precision} they differ by {difference:.2e} (relative, on one clip), more than the "
            f"{tolerance:.2e} allowed: score in {reference.precision}"
        )
    log.info(
        "scoring run %s in %s, its features in %s: features differ by %.2e on one clip (allowed %.2e)",
        record.folder, other.precision, reference.precision, difference, tolerance,
    )  # fmt: skip


def check_given_extractor(extractor, record: RunRecord) -> None:
    """An extractor built by the caller must be the one the run's features came from."""
    check_weights_digest(extractor.weights_sha256, f"of extractor {extractor.name!r}", record)
    described = extractor.preprocessing.describe()
    if record.preprocessing is not None and described != record.preprocessing:
        raise GclvadError(
            f"extractor {extractor.name!r} prepares frames as {described!r}, the run's as {record.preprocessing!r}"
        )


@dataclass(frozen=True)
class TrainedRun:
    """A run opened for scoring: its record, its extractor (weights checked), its scorer."""

    record: RunRecord
    extractor: object  # a gclvad.extract.networks.base.Extractor
    scorer: RunScorer | EnsembleScorer
    device: str


def open_run(
    run: str | Path | RunRecord,
    weights: str | Path | None = None,
    device: str = "auto",
    extractor=None,
    precision: str | None = None,
    frame_step: int | None = None,
) -> TrainedRun:
    """The run folder (or its models.pt, or its record) `run`, ready to score: the extractor its
    features came from (built with `weights`, default the recorded ones, in `precision`, default
    the recorded one; or the given `extractor`, checked against the run) and its scorer, both on
    `device`. `frame_step`, when given, must be the run's."""
    record = run if isinstance(run, RunRecord) else read_run(run)
    check_frame_step(frame_step, record)
    resolved = str(resolve_device(device))
    if extractor is None:
        extractor = build_run_extractor(record, weights, resolved, precision)
    else:
        check_given_extractor(extractor, record)
    scorer = load_scorer(record.models_path, record.postprocess, device=resolved)
    if scorer.dim != extractor.dim:
        raise GclvadError(
            f"{record.models_path}: the networks take {scorer.dim}-d features but extractor "
            f"{extractor.name!r} gives {extractor.dim}-d ones"
        )
    return TrainedRun(record, extractor, scorer, resolved)
