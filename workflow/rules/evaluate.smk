# Frame scores of every scored video of a run, then its frame-level ROC AUC, then the
# dataset's headline result (the default run).


include: "inputs/evaluate.smk"


rule score_run:
    input:
        models=get_run_output("models"),
        features=rules.merge_features.output[0],
        index=rules.segment_index.output.index,
    output:
        scores=f"{RUN}/scores.h5",
        postprocess=f"{RUN}/postprocess.json",
    log:
        f"{RUN_LOGS}/score_run.log",
    benchmark:
        f"{RUN_BENCHMARKS}/score_run.tsv"
    conda:
        "../../envs/gclvad.yaml"
    params:
        train_on=get_train_on,
        crops=get_crops,
        postprocess=get_postprocess_params,
        segment_length=config["segment_length"],
        device=config["device"],
    script:
        "../scripts/score_run.py"


rule evaluate_run:
    input:
        unpack(get_td_enrichment),
        scores=rules.score_run.output.scores,
        postprocess=rules.score_run.output.postprocess,
        index=rules.segment_index.output.index,
        epoch_scores=get_run_output("epoch_scores"),
        models=get_run_output("models"),
    output:
        auc=f"{RUN}/auc.json",
        curve=f"{RUN}/diagnostic_auc_per_epoch.tsv",
    log:
        f"{RUN_LOGS}/evaluate_run.log",
    benchmark:
        f"{RUN_BENCHMARKS}/evaluate_run.tsv"
    conda:
        "../../envs/gclvad.yaml"
    params:
        spec=get_reader_spec,
        segment_length=config["segment_length"],
        segment_stride=get_segment_stride,
        frame_step=get_frame_step,
    script:
        "../scripts/evaluate_run.py"


rule dataset_auc:
    input:
        run=get_default_run_auc,
        plots=get_default_plots,
    output:
        "results/{dataset}/auc.json",
    log:
        "logs/{dataset}/dataset_auc.log",
    benchmark:
        "benchmarks/rules/{dataset}/dataset_auc.tsv"
    conda:
        "../../envs/gclvad.yaml"
    script:
        "../scripts/dataset_auc.py"
