from gclvad.logs import job_log
from gclvad.pipeline import evaluate_run

with job_log(snakemake.log[0]):
    evaluate_run(
        snakemake.input.scores,
        snakemake.input.index,
        snakemake.params.dataset,
        snakemake.input.training_log,
        snakemake.input.epoch_scores,
        snakemake.input.models,
        snakemake.params.segment_length,
        snakemake.output.auc,
        snakemake.output.curve,
    )
