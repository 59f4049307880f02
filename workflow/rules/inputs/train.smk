# Input functions and params of the rules of workflow/rules/train.smk, which includes this file
# (Snakemake's lint keeps functions and rules in separate files).

import hashlib
import json

from gclvad.gcl.config import Stage
from gclvad.stages.settings import (
    ENSEMBLE_PATTERN,
    ensemble_members,
    models_variant,
    stage_config,
    stage_params,
)


def get_stage_params(stage):
    """A params function giving the settings `stage` reads (and nothing more)."""

    def stage_params_of(wildcards):
        return stage_params(settings_of(wildcards), stage, int(wildcards.seed))

    return stage_params_of


def get_labels_spec(stage):
    """The reader spec for a stage that reads video labels (one-class, weak supervision), else nothing."""

    def labels_spec(wildcards):
        stage_gcl, _ = stage_config(get_stage_params(stage)(wildcards), "cpu")
        return get_reader_spec(wildcards) if stage_gcl.reads_labels else {}

    return labels_spec


def get_training_inputs(stage):
    """Features and index, the TD mask for G's training on cleaned rows, the previous
    stage's networks for D's pre-training and the loop."""

    def training_inputs(wildcards):
        inputs = {
            "features": filled(rules.merge_features.output[0], **wildcards),
            "index": filled(rules.segment_index.output.index, **wildcards),
        }
        settings = settings_of(wildcards)
        if stage in (Stage.PRETRAIN_G, Stage.AUTOENCODER) and settings.cleaning:
            cleaned = {"cleaning": settings.cleaning.name, **wildcards}
            inputs["td_mask"] = filled(rules.clean_features.output.mask, **cleaned)
            inputs["td_summary"] = filled(
                rules.clean_features.output.summary, **cleaned
            )
        before = settings.gcl.stages[: settings.gcl.stages.index(stage)]
        if before:
            previous = {
                Stage.PRETRAIN_G: rules.pretrain_g,
                Stage.PRETRAIN_D: rules.pretrain_d,
            }
            inputs["initial"] = filled(previous[before[-1]].output[0], **wildcards)
        return inputs

    return training_inputs


def get_run_output(name):
    """An input function: output `name` (models, log, epoch_scores) of the rule that trained
    the run's networks (gcl_loop, autoencoder or ensemble, by the variant); post-processing
    overrides score with the networks of the variant without them. An unknown variant or a
    bad override stops here, naming the problem."""

    def run_output(wildcards):
        settings_of(wildcards)
        trained = dict(wildcards) | {"variant": models_variant(wildcards.variant)}
        return filled(getattr(rules.gcl_loop.output, name), **trained)

    return run_output


def get_ensemble_members(wildcards):
    """The models of the runs a seed ensemble combines."""
    members = ensemble_members(wildcards.variant, int(wildcards.seed))
    return [
        filled(
            rules.gcl_loop.output.models,
            **(dict(wildcards) | {"variant": v, "seed": s}),
        )
        for v, s in members
    ]


def get_density(wildcards):
    """The k of a seed ensemble's nearest-neighbour second opinion (0: none)."""
    return settings_of(wildcards).density


def get_run_metadata(wildcards):
    """What a run's models file records about where it came from (for reports and scoring):
    only settings the run reads, so that editing others (e.g. `cleaning` for AE_AllData)
    does not re-run it. `crops` records the dataset's crop_use (the key scoring reads).
    """
    published = wildcards.dataset in PUBLISHED
    run = {
        "dataset": wildcards.dataset,
        "extractor": (
            {"name": wildcards.extractor}
            if published
            else get_extractor_params(wildcards)
        ),
        "crops": get_crops(wildcards),
        "segment_length": config["segment_length"],
        "segment_stride": segment_stride(),
        # recorded only for sampled frames: runs of every frame keep their config_sha256
        **({"frame_step": step} if (step := get_frame_step(wildcards)) != 1 else {}),
        "variant": wildcards.variant,
        "seed": int(wildcards.seed),
        "settings": settings_of(wildcards).to_dict(),
    }
    digest = hashlib.sha256(json.dumps(run, sort_keys=True).encode()).hexdigest()
    return run | {"config_sha256": digest}
