from gclvad.logs import job_log
from gclvad.stages.results import aggregate_table

with job_log(snakemake.log[0]):
    aggregate_table(auc_paths=snakemake.input, out_path=snakemake.output[0])
