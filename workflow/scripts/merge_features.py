from gclvad.logs import job_log
from gclvad.stages.preparation import merge_features

with job_log(snakemake.log[0]):
    merge_features(parts=snakemake.input, out_path=snakemake.output[0])
