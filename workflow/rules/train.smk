# The three training stages of a run: G pre-training, D pre-training, the cooperative loop.
# Each stage's params hold only the settings it depends on, so an edit re-runs what it must.


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
        train_on=get_train_on,
        device=config["device"],
    script:
        "../scripts/pretrain_generator.py"


rule pretrain_discriminator:
    input:
        unpack(get_training_inputs),
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
        train_on=get_train_on,
        device=config["device"],
    script:
        "../scripts/pretrain_discriminator.py"


rule train_gcl:
    input:
        unpack(get_training_inputs),
        generator=rules.pretrain_generator.output[0],
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
        train_on=get_train_on,
        device=config["device"],
        checkpoint="results/{dataset}/{extractor}/{variant}/seed{seed}/loop_checkpoint.pt",
    script:
        "../scripts/train_gcl.py"
