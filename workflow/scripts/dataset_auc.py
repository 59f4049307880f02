from gclvad.logs import job_log
from gclvad.pipeline import dataset_summary

with job_log(snakemake.log[0]):
    dataset_summary(snakemake.input.run, snakemake.output[0])
