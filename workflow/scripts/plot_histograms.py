from gclvad.logs import job_log
from gclvad.stages.figures import plot_histograms

with job_log(snakemake.log[0]):
    plot_histograms(
        scores_path=snakemake.input.scores,
        baseline_scores_path=snakemake.input.baseline,
        index_path=snakemake.input.index,
        spec=snakemake.params.spec,
        out_path=snakemake.output[0],
        title=snakemake.params.title,
    )
