"""Scoring with a trained run: its networks, or a seed ensemble of runs, give every segment its scores.

A scorer maps the segment rows of a FeatureSet to their scores: "score" (what the run scores
with: D's probability for GCL, G's error for the autoencoders; with several crops per
segment, the crops' scores combined as the run's post-processing says), and "d" and "g"
(the networks' outputs, mean over crops), each (N,).

* `RunScorer`: one run's networks. Crop normalisation compares each crop position's scores
  with that position's scores on the run's own training segments, recorded when it was
  trained (gclvad.scoring.postprocess.REFERENCE_KEY).
* `EnsembleScorer`: K runs of different seeds (the `~ensemble=K` variants). Each member's
  score is normalised against the member's own training-segment scores (postprocess
  `ensemble_normalise`: z, the default, against their mean and std; rank; or none), then
  averaged: members then speak one scale, and a new video's score keeps its meaning (a
  normalisation within the scored set alone would change with every set). Its file
  (`gclvad-gcl-ensemble/1`) holds every member's networks and reference, so the ensemble
  scores new footage on its own.
* An ensemble's second opinion (`~density=k`, gclvad.scoring.density): a segment's distance
  to the training segments of other videos. Its file then holds the bank too, and "score" is
  the mean of two z-scores, each against its own training segments' scores: the members'
  averaged score, and the distance ("density").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from gclvad.features.feature_set import FeatureSet
from gclvad.gcl.models import Models
from gclvad.gcl.store import (
    ENSEMBLE_FORMAT,
    MODELS_FORMAT,
    load_models,
    models_from_stored,
    read_models_file,
    read_models_metadata,
    save_torch_atomic,
    score,
)
from gclvad.scoring.density import DensityScorer, density_scorer
from gclvad.scoring.frames import VideoScores, gaussian_smooth, to_frames
from gclvad.scoring.postprocess import REFERENCE_KEY, PostprocessConfig, combine_crops, normalised, reference_table
from gclvad.scoring.quantiles import QUANTILES_KEY, score_quantiles

ENSEMBLE_LEVELS = 1001  # quantiles of a member's training scores its score is normalised against


@dataclass
class RunScorer:
    models: Models
    postprocess: PostprocessConfig = field(default_factory=PostprocessConfig)
    reference: np.ndarray | None = None  # (levels, crops) training-segment scores per crop position

    @property
    def dim(self) -> int:
        return self.models.dim

    @property
    def score_name(self) -> str:
        """What "score" is: the network that scores (d or g)."""
        return self.models.config.scoring.model

    def segment_scores(self, feature_set: FeatureSet) -> dict[str, np.ndarray]:
        features = feature_set.features
        crops = feature_set.crops
        by_crop = {
            name: values.reshape(len(features), crops)
            for name, values in score(self.models, features.reshape(-1, features.shape[-1])).items()
        }
        out = {name: by_crop[name].mean(axis=1) for name in ("d", "g") if name in by_crop}
        if crops == 1:  # one crop: the network's score as it is (the paper's protocol, bit for bit)
            out["score"] = by_crop["score"][:, 0]
        else:
            post = self.postprocess
            out["score"] = combine_crops(by_crop["score"], self.reference, post.crop_reduce, post.crop_normalise)
        return out


@dataclass
class EnsembleScorer:
    members: list[RunScorer]
    references: list[np.ndarray]  # (levels,) each member's training-segment scores, crops combined
    density: DensityScorer | None = None  # the second opinion, with `fusion_references`
    # (members' averaged score, density): each one's training-segment scores, (levels,)
    fusion_references: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def dim(self) -> int:
        return self.members[0].dim

    @property
    def score_name(self) -> str:
        first = self.members[0]
        name = f"ensemble of {len(self.members)} ({first.score_name}, {first.postprocess.ensemble_normalise})"
        return name if self.density is None else f"{name} with density (k = {self.density.k})"

    def members_scores(self, feature_set: FeatureSet) -> dict[str, np.ndarray]:
        """The members' scores: "score" their mean after normalisation, "d" and "g" their means."""
        scored = [member.segment_scores(feature_set) for member in self.members]
        how = self.members[0].postprocess.ensemble_normalise
        scales = [normalised(s["score"], ref, how) for s, ref in zip(scored, self.references, strict=True)]
        out = {name: np.mean([s[name] for s in scored], axis=0) for name in ("d", "g") if name in scored[0]}
        out["score"] = np.mean(scales, axis=0)
        return out

    def segment_scores(self, feature_set: FeatureSet) -> dict[str, np.ndarray]:
        out = self.members_scores(feature_set)
        if self.density is not None:
            out["density"] = self.density.distances(feature_set)
            out["score"] = self.fused(out["score"], out["density"])
        return out

    def fused(self, members_score: np.ndarray, density: np.ndarray) -> np.ndarray:
        """The delivered score of a second opinion: the mean of the two z-scores."""
        members_reference, density_reference = self.fusion_references
        return (normalised(members_score, members_reference, "z") + normalised(density, density_reference, "z")) / 2


def segment_scores(models, feature_set: FeatureSet) -> dict[str, np.ndarray]:
    """Scores of every segment row of `feature_set` by bare networks (crops: their mean)."""
    return RunScorer(models).segment_scores(feature_set)


def score_feature_set(
    scorer, feature_set: FeatureSet, segment_length: int, smoothing_sigma: float = 0.0
) -> dict[str, VideoScores]:
    """Frame scores of every video of `feature_set`, one forward pass over all its segments.

    scorer: a RunScorer or EnsembleScorer, or bare networks (Models). The
    windows' stride and frame step are the feature set's (`segment_stride`, default
    segment_length; `frame_step`, default 1: a segment spans segment_length * frame_step frames)."""
    if not hasattr(scorer, "segment_scores"):
        scorer = RunScorer(scorer)
    by_segment = scorer.segment_scores(feature_set)
    span, stride = feature_set.window_frames(segment_length)
    out = {}
    for i, video in enumerate(feature_set.videos):
        rows = slice(feature_set.offsets[i], feature_set.offsets[i + 1])
        frames = int(feature_set.frames[i])
        named = {name: to_frames(values[rows], frames, span, stride) for name, values in by_segment.items()}
        named["score_raw"] = named["score"]
        if smoothing_sigma > 0:
            named["score"] = gaussian_smooth(named["score_raw"], smoothing_sigma)
        out[video] = named
    return out


def run_scorer(models_path: str | Path, postprocess: PostprocessConfig | None = None, device: str = "cpu") -> RunScorer:
    """The scorer of one run's models file, with its recorded training-score reference."""
    metadata = read_models_metadata(Path(models_path))
    return RunScorer(
        models=load_models(Path(models_path), device=device),
        postprocess=postprocess or PostprocessConfig(),
        reference=reference_table(metadata.get(REFERENCE_KEY)),
    )


def load_scorer(
    models_path: str | Path, postprocess: PostprocessConfig | None = None, device: str = "cpu"
) -> RunScorer | EnsembleScorer:
    """The scorer of a run's models.pt: a RunScorer, or an EnsembleScorer for an ensemble's file."""
    stored = read_models_file(Path(models_path), (MODELS_FORMAT, ENSEMBLE_FORMAT))
    if stored["format"] == MODELS_FORMAT:
        return run_scorer(models_path, postprocess, device)
    post = postprocess or PostprocessConfig(**stored["postprocess"])
    members = [
        RunScorer(models_from_stored(member, device), post, reference_table(member.get(REFERENCE_KEY)))
        for member in stored["members"]
    ]
    references = [np.asarray(ref, np.float64) for ref in stored["references"]]
    if "density" not in stored:
        return EnsembleScorer(members, references)
    density = {**stored["density"], "bank": stored["density"]["bank"].numpy()}
    fusion = tuple(np.asarray(ref, np.float64) for ref in stored["fusion_references"])
    return EnsembleScorer(members, references, DensityScorer.from_stored(density), fusion)


def write_ensemble(
    member_paths: list[str | Path],
    training: FeatureSet,
    postprocess: PostprocessConfig,
    out_path: str | Path,
    metadata: dict,
    density_k: int = 0,
) -> None:
    """An ensemble's file: every member's networks and references, the combined-score
    reference computed here on the training segments with `postprocess`'s crop combination;
    with `density_k` > 0, the second opinion's bank of the training segments and the fusion's
    references (gclvad.scoring.density)."""
    members, references, scorers = [], [], []
    for path in member_paths:
        stored = read_models_file(Path(path))  # one run's file: an ensemble is not a member
        members.append({key: stored[key] for key in ("config", "dim", "generator", "discriminator")})
        members[-1][REFERENCE_KEY] = stored["metadata"].get(REFERENCE_KEY)
        scorers.append(run_scorer(path, postprocess))
        training_scores = scorers[-1].segment_scores(training)["score"]
        references.append(np.quantile(training_scores, np.linspace(0, 1, ENSEMBLE_LEVELS)))
    ensemble = EnsembleScorer(scorers, references)
    value = {
        "format": ENSEMBLE_FORMAT,
        "members": members,
        "references": [reference.tolist() for reference in references],
        "postprocess": postprocess.to_dict(),
    }
    if density_k > 0:
        # the training segments' distances, computed once (the costly part): the reference, then
        # the delivered scores below
        ensemble.density = density_scorer(training, density_k)
        members_score, distances = ensemble.members_scores(training)["score"], ensemble.density.distances(training)
        levels = np.linspace(0, 1, ENSEMBLE_LEVELS)
        ensemble.fusion_references = (np.quantile(members_score, levels), np.quantile(distances, levels))
        stored_density = ensemble.density.to_stored()
        value["density"] = {**stored_density, "bank": torch.from_numpy(stored_density["bank"])}
        value["fusion_references"] = [reference.tolist() for reference in ensemble.fusion_references]
        delivered = ensemble.fused(members_score, distances)
    else:
        delivered = ensemble.segment_scores(training)["score"]
    # the ensemble's own scores of the training segments: what `gclvad watch` alerts against
    value["metadata"] = {**metadata, QUANTILES_KEY: score_quantiles(delivered, ensemble.score_name)}
    save_torch_atomic(value, Path(out_path))
