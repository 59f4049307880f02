from gclvad.logs import job_log
from gclvad.stages.training import cleaning_enrichment

with job_log(snakemake.log[0]):
    cleaning_enrichment(
        features_path=snakemake.input.features,
        index_path=snakemake.input.index,
        train_on=snakemake.params.train_on,
        crops=snakemake.params.crops,
        spec=snakemake.params.spec,
        mask_path=snakemake.input.mask,
        out_path=snakemake.output[0],
    )
