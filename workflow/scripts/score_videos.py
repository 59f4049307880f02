from gclvad.logs import job_log
from gclvad.pipeline import score_run

with job_log(snakemake.log[0]):
    score_run(
        snakemake.input.models,
        snakemake.input.features,
        snakemake.input.index,
        snakemake.params.train_on,
        snakemake.params.segment_length,
        snakemake.output[0],
        device=snakemake.params.device,
    )
