# Figures of a run, collected by `snakemake --report`.


rule plot_run:
    input:
        scores=rules.score_videos.output[0],
        baseline=get_baseline_scores,
        training_log=rules.train_gcl.output.log,
        curve=rules.evaluate_run.output.curve,
        index=rules.segment_index.output.index,
    output:
        roc=report(
            "results/{dataset}/{extractor}/{variant}/seed{seed}/plots/roc.png",
            caption="../report/roc.rst",
            category="{dataset}",
            subcategory="{variant} seed {seed}",
        ),
        histograms=report(
            "results/{dataset}/{extractor}/{variant}/seed{seed}/plots/score_histograms.png",
            caption="../report/histograms.rst",
            category="{dataset}",
            subcategory="{variant} seed {seed}",
        ),
        videos=report(
            "results/{dataset}/{extractor}/{variant}/seed{seed}/plots/video_scores.png",
            caption="../report/video_scores.rst",
            category="{dataset}",
            subcategory="{variant} seed {seed}",
        ),
        curves=report(
            "results/{dataset}/{extractor}/{variant}/seed{seed}/plots/training_curves.png",
            caption="../report/training_curves.rst",
            category="{dataset}",
            subcategory="{variant} seed {seed}",
        ),
    log:
        "logs/{dataset}/{extractor}/{variant}/seed{seed}/plot_run.log",
    conda:
        "../../envs/gclvad.yaml"
    params:
        dataset=get_dataset_spec,
        title="{dataset} {extractor} {variant} seed {seed}",
    script:
        "../scripts/plot_run.py"
