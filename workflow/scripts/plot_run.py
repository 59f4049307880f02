from gclvad.logs import job_log
from gclvad.stages.figures import plot_run

with job_log(snakemake.log[0]):
    plot_run(
        scores_path=snakemake.input.scores,
        index_path=snakemake.input.index,
        spec=snakemake.params.spec,
        training_log_path=snakemake.input.training_log,
        curve_path=snakemake.input.curve,
        outputs=snakemake.output,
        title=snakemake.params.title,
    )
