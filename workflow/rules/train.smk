# The training stages of a run, one rule each, named as gclvad.gcl.config.Stage names them:
# GCL variants train in pretrain_g -> pretrain_d -> gcl_loop (a variant without
# pre-training runs gcl_loop alone), the autoencoder baselines in autoencoder; a seed
# ensemble (`~ensemble=K`) is not trained: rule ensemble combines its K member runs. Each stage's
# params hold only the settings it reads; it checkpoints every epoch (params.checkpoint)
# and resumes from it after a kill.


include: "inputs/train.smk"


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
        density=get_density,
        train_on=get_train_on,
        crops=get_crops,
        run=get_run_metadata,
    script:
        "../scripts/ensemble.py"
