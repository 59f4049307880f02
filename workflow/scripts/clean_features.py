from gclvad.logs import job_log
from gclvad.stages.training import clean_training_features

with job_log(snakemake.log[0]):
    clean_training_features(
        features_path=snakemake.input.features,
        index_path=snakemake.input.index,
        train_on=snakemake.params.train_on,
        cleaning=snakemake.params.cleaning,
        mask_path=snakemake.output.mask,
        summary_path=snakemake.output.summary,
        crops=snakemake.params.crops,
    )
