from gclvad.logs import job_log
from gclvad.pipeline import clean_training_features

with job_log(snakemake.log[0]):
    clean_training_features(
        snakemake.input.features,
        snakemake.input.index,
        snakemake.params.train_on,
        snakemake.params.cleaning,
        snakemake.output.mask,
        snakemake.output.summary,
    )
