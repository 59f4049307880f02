from gclvad.logs import job_log
from gclvad.stages.preparation import generate_demo_dataset

with job_log(snakemake.log[0]):
    generate_demo_dataset(manifest=snakemake.output.manifest, generate=snakemake.params.generate)
