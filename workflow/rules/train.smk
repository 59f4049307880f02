# The three training stages of a run: G pre-training, D pre-training, the cooperative loop.
# Each stage's params hold only the settings it depends on, so an edit re-runs what it must.
# A stage checkpoints every epoch (params.checkpoint) and resumes from it after a kill.


rule pretrain_generator:
    input:
        unpack(get_training_inputs),
    output:
        "results/{dataset}/{extractor}/{variant}/seed{seed}/G_pretrained.pt",
    log:
        "logs/{dataset}/{extractor}/{variant}/seed{seed}/pretrain_generator.log",
    benchmark:
        "benchmarks/rules/{dataset}/{extractor}/{variant}/seed{seed}/pretrain_generator.tsv"
    conda:
        "../../envs/gclvad.yaml"
    threads: 2
    params:
        gcl=get_stage_params("pretrain_g"),
        dataset=get_dataset_spec,
        train_on=get_train_on,
        device=config["device"],
        checkpoint="results/{dataset}/{extractor}/{variant}/seed{seed}/pretrain_g.ckpt",
    script:
        "../scripts/pretrain_generator.py"


rule pretrain_discriminator:
    input:
        features=rules.merge_features.output[0],
        index=rules.segment_index.output.index,
        generator=rules.pretrain_generator.output[0],
    output:
        "results/{dataset}/{extractor}/{variant}/seed{seed}/D_pretrained.pt",
    log:
        "logs/{dataset}/{extractor}/{variant}/seed{seed}/pretrain_discriminator.log",
    benchmark:
        "benchmarks/rules/{dataset}/{extractor}/{variant}/seed{seed}/pretrain_discriminator.tsv"
    conda:
        "../../envs/gclvad.yaml"
    threads: 2
    params:
        gcl=get_stage_params("pretrain_d"),
        dataset=get_dataset_spec,
        train_on=get_train_on,
        device=config["device"],
        checkpoint="results/{dataset}/{extractor}/{variant}/seed{seed}/pretrain_d.ckpt",
    script:
        "../scripts/pretrain_discriminator.py"


rule train_gcl:
    input:
        features=rules.merge_features.output[0],
        index=rules.segment_index.output.index,
        discriminator=rules.pretrain_discriminator.output[0],
    output:
        models="results/{dataset}/{extractor}/{variant}/seed{seed}/models.pt",
        log="results/{dataset}/{extractor}/{variant}/seed{seed}/training_log.tsv",
        epoch_scores="results/{dataset}/{extractor}/{variant}/seed{seed}/epoch_scores.npz",
    log:
        "logs/{dataset}/{extractor}/{variant}/seed{seed}/train_gcl.log",
    benchmark:
        "benchmarks/rules/{dataset}/{extractor}/{variant}/seed{seed}/train_gcl.tsv"
    conda:
        "../../envs/gclvad.yaml"
    threads: 2
    params:
        gcl=get_stage_params("loop"),
        dataset=get_dataset_spec,
        train_on=get_train_on,
        device=config["device"],
        run=get_run_metadata,
        checkpoint="results/{dataset}/{extractor}/{variant}/seed{seed}/loop.ckpt",
    script:
        "../scripts/train_gcl.py"
