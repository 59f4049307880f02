# The training stages of a run, one rule each, named as gclvad.gcl.config.Stage names them:
# GCL variants train in pretrain_g -> pretrain_d -> gcl_loop (a variant without
# pre-training runs gcl_loop alone), the autoencoder baselines in autoencoder; a seed
# ensemble (`~ensemble=K`) is not trained: rule ensemble combines its K member runs. Each stage's
# params hold only the settings it reads; it checkpoints every epoch (params.checkpoint)
# and resumes from it after a kill.

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
        "variant": wildcards.variant,
        "seed": int(wildcards.seed),
        "settings": settings_of(wildcards).to_dict(),
    }
    digest = hashlib.sha256(json.dumps(run, sort_keys=True).encode()).hexdigest()
    return run | {"config_sha256": digest}


rule pretrain_g:
    input:
        unpack(get_training_inputs(Stage.PRETRAIN_G)),
    output:
        f"{RUN}/G_pretrained.pt",
    log:
        f"{RUN_LOGS}/pretrain_g.log",
    benchmark:
        f"{RUN_BENCHMARKS}/pretrain_g.tsv"
    wildcard_constraints:
        variant=GCL_VARIANT,
    conda:
        "../../envs/gclvad.yaml"
    threads: 2
    params:
        gcl=get_stage_params(Stage.PRETRAIN_G),
        labels=get_labels_spec(Stage.PRETRAIN_G),
        train_on=get_train_on,
        crops=get_crops,
        device=config["device"],
        checkpoint=f"{RUN}/pretrain_g.ckpt",
    script:
        "../scripts/train_stage.py"


rule pretrain_d:
    input:
        unpack(get_training_inputs(Stage.PRETRAIN_D)),
    output:
        f"{RUN}/D_pretrained.pt",
    log:
        f"{RUN_LOGS}/pretrain_d.log",
    benchmark:
        f"{RUN_BENCHMARKS}/pretrain_d.tsv"
    wildcard_constraints:
        variant=GCL_VARIANT,
    conda:
        "../../envs/gclvad.yaml"
    threads: 2
    params:
        gcl=get_stage_params(Stage.PRETRAIN_D),
        labels=get_labels_spec(Stage.PRETRAIN_D),
        train_on=get_train_on,
        crops=get_crops,
        device=config["device"],
        checkpoint=f"{RUN}/pretrain_d.ckpt",
    script:
        "../scripts/train_stage.py"


rule gcl_loop:
    input:
        unpack(get_training_inputs(Stage.GCL_LOOP)),
    output:
        models=f"{RUN}/models.pt",
        log=f"{RUN}/training_log.tsv",
        epoch_scores=f"{RUN}/epoch_scores.npz",
    log:
        f"{RUN_LOGS}/gcl_loop.log",
    benchmark:
        f"{RUN_BENCHMARKS}/gcl_loop.tsv"
    wildcard_constraints:
        variant=GCL_VARIANT,
    conda:
        "../../envs/gclvad.yaml"
    threads: 2
    params:
        gcl=get_stage_params(Stage.GCL_LOOP),
        labels=get_labels_spec(Stage.GCL_LOOP),
        train_on=get_train_on,
        crops=get_crops,
        device=config["device"],
        run=get_run_metadata,
        checkpoint=f"{RUN}/gcl_loop.ckpt",
    script:
        "../scripts/train_stage.py"


rule autoencoder:
    input:
        unpack(get_training_inputs(Stage.AUTOENCODER)),
    output:
        models=f"{RUN}/models.pt",
        log=f"{RUN}/training_log.tsv",
        epoch_scores=f"{RUN}/epoch_scores.npz",
    log:
        f"{RUN_LOGS}/autoencoder.log",
    benchmark:
        f"{RUN_BENCHMARKS}/autoencoder.tsv"
    wildcard_constraints:
        variant=AUTOENCODER_VARIANT,
    conda:
        "../../envs/gclvad.yaml"
    threads: 2
    params:
        gcl=get_stage_params(Stage.AUTOENCODER),
        labels=get_labels_spec(Stage.AUTOENCODER),
        train_on=get_train_on,
        crops=get_crops,
        device=config["device"],
        run=get_run_metadata,
        checkpoint=f"{RUN}/autoencoder.ckpt",
    script:
        "../scripts/train_stage.py"


rule ensemble:
    input:
        members=get_ensemble_members,
        features=rules.merge_features.output[0],
        index=rules.segment_index.output.index,
    output:
        models=f"{RUN}/models.pt",
        log=f"{RUN}/training_log.tsv",
        epoch_scores=f"{RUN}/epoch_scores.npz",
    log:
        f"{RUN_LOGS}/ensemble.log",
    benchmark:
        f"{RUN_BENCHMARKS}/ensemble.tsv"
    wildcard_constraints:
        variant=ENSEMBLE_PATTERN,
    conda:
        "../../envs/gclvad.yaml"
    params:
        postprocess=get_postprocess_params,
        train_on=get_train_on,
        crops=get_crops,
        run=get_run_metadata,
    script:
        "../scripts/ensemble.py"
