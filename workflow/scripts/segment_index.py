from gclvad.logs import job_log
from gclvad.pipeline import index_dataset

with job_log(snakemake.log[0]):
    index_dataset(
        snakemake.params.dataset,
        snakemake.params.segment_length,
        snakemake.params.on_bad_video,
        snakemake.output.index,
    )
