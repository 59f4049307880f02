from gclvad.logs import job_log
from gclvad.stages.preparation import link_published_features

with job_log(snakemake.log[0]):
    link_published_features(
        spec=snakemake.params.spec,
        index_path=snakemake.input.index,
        extractor=snakemake.wildcards.extractor,
        out_path=snakemake.output[0],
    )
