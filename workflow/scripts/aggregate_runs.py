from gclvad.logs import job_log
from gclvad.pipeline import aggregate_runs

with job_log(snakemake.log[0]):
    aggregate_runs(snakemake.input, snakemake.output[0])
