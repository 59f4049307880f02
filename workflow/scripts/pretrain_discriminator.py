from gclvad.logs import job_log
from gclvad.pipeline import train_stage

with job_log(snakemake.log[0]):
    train_stage(
        "pretrain_d",
        snakemake.params.gcl,
        snakemake.input.features,
        snakemake.input.index,
        snakemake.params.dataset,
        snakemake.params.train_on,
        snakemake.output[0],
        device=snakemake.params.device,
        initial_path=snakemake.input.generator,
        checkpoint_path=snakemake.params.checkpoint,
    )
