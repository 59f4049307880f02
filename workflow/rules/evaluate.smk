# Frame scores of every scored video, then the frame-level ROC AUC of the run.


rule score_videos:
    input:
        models=rules.train_gcl.output.models,
        features=rules.merge_features.output[0],
        index=rules.segment_index.output.index,
    output:
        "results/{dataset}/{extractor}/{variant}/seed{seed}/scores.h5",
    log:
        "logs/{dataset}/{extractor}/{variant}/seed{seed}/score_videos.log",
    conda:
        "../../envs/gclvad.yaml"
    params:
        train_on=get_train_on,
        segment_length=config["segment_length"],
        device=config["device"],
    script:
        "../scripts/score_videos.py"


rule evaluate_run:
    input:
        scores=rules.score_videos.output[0],
        index=rules.segment_index.output.index,
        training_log=rules.train_gcl.output.log,
        epoch_scores=rules.train_gcl.output.epoch_scores,
        models=rules.train_gcl.output.models,
    output:
        auc="results/{dataset}/{extractor}/{variant}/seed{seed}/auc.json",
        curve="results/{dataset}/{extractor}/{variant}/seed{seed}/diagnostic_auc_per_epoch.tsv",
    log:
        "logs/{dataset}/{extractor}/{variant}/seed{seed}/evaluate_run.log",
    conda:
        "../../envs/gclvad.yaml"
    params:
        dataset=get_dataset_spec,
        segment_length=config["segment_length"],
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
    conda:
        "../../envs/gclvad.yaml"
    script:
        "../scripts/dataset_auc.py"
