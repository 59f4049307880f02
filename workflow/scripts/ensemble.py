from gclvad.logs import job_log
from gclvad.stages.results import ensemble_run

with job_log(snakemake.log[0]):
    ensemble_run(
        member_models=snakemake.input.members,
        features_path=snakemake.input.features,
        index_path=snakemake.input.index,
        train_on=snakemake.params.train_on,
        postprocess=snakemake.params.postprocess,
        density_k=snakemake.params.density,
        out_models=snakemake.output.models,
        out_log=snakemake.output.log,
        out_epoch_scores=snakemake.output.epoch_scores,
        crops=snakemake.params.crops,
        metadata=snakemake.params.run,
    )
