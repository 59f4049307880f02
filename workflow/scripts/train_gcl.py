from gclvad.logs import job_log
from gclvad.pipeline import train_stage, write_training_log

with job_log(snakemake.log[0]):
    train_stage(
        "loop",
        snakemake.params.gcl,
        snakemake.input.features,
        snakemake.input.index,
        snakemake.params.dataset,
        snakemake.params.train_on,
        snakemake.output.models,
        device=snakemake.params.device,
        initial_path=snakemake.input.discriminator,
        checkpoint_path=snakemake.params.checkpoint,
        epoch_scores_path=snakemake.output.epoch_scores,
        metadata=snakemake.params.run,
    )
    write_training_log(snakemake.output.models, snakemake.output.log)
