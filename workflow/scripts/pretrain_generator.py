from gclvad.logs import job_log
from gclvad.pipeline import train_stage

with job_log(snakemake.log[0]):
    train_stage(
        "pretrain_g",
        snakemake.params.gcl,
        snakemake.input.features,
        snakemake.input.index,
        snakemake.params.dataset,
        snakemake.params.train_on,
        snakemake.output[0],
        device=snakemake.params.device,
        td_mask_path=snakemake.input.get("td_mask"),
        td_summary_path=snakemake.input.get("td_summary"),
        checkpoint_path=snakemake.params.checkpoint,
    )
