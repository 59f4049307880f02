from gclvad.logs import job_log
from gclvad.stages.results import dataset_summary

with job_log(snakemake.log[0]):
    dataset_summary(run_auc_path=snakemake.input.run, out_path=snakemake.output[0])
