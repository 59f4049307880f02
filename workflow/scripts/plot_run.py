from gclvad.logs import job_log
from gclvad.pipeline import plot_run

with job_log(snakemake.log[0]):
    plot_run(
        snakemake.input.scores,
        snakemake.input.baseline,
        snakemake.input.index,
        snakemake.params.dataset,
        snakemake.input.training_log,
        snakemake.input.curve,
        snakemake.output,
        title=snakemake.params.title,
    )
