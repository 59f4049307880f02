# Figures of a run, collected by `snakemake --report`. The Fig-4 histograms compare the run
# with the AE_AllData baseline, so they are their own target (built by `all` and the
# report), and the dataset's auc.json does not wait for the baseline to train.


include: "inputs/plots.smk"


rule plot_run:
    input:
        scores=rules.score_run.output.scores,
        training_log=get_run_output("log"),
        curve=rules.evaluate_run.output.curve,
        index=rules.segment_index.output.index,
    output:
        roc=run_figure("roc", "roc"),
        videos=run_figure("video_scores", "video_scores"),
        curves=run_figure("training_curves", "training_curves"),
    log:
        f"{RUN_LOGS}/plot_run.log",
    benchmark:
        f"{RUN_BENCHMARKS}/plot_run.tsv"
    conda:
        "../../envs/gclvad.yaml"
    params:
        spec=get_reader_spec,
        title="{dataset} {extractor} {variant} seed {seed}",
    script:
        "../scripts/plot_run.py"


rule plot_histograms:
    input:
        scores=rules.score_run.output.scores,
        baseline=get_baseline_scores,
        index=rules.segment_index.output.index,
    output:
        run_figure("score_histograms", "histograms"),
    log:
        f"{RUN_LOGS}/plot_histograms.log",
    benchmark:
        f"{RUN_BENCHMARKS}/plot_histograms.tsv"
    conda:
        "../../envs/gclvad.yaml"
    params:
        spec=get_reader_spec,
        title="{dataset} {extractor} {variant} seed {seed}",
    script:
        "../scripts/plot_histograms.py"
