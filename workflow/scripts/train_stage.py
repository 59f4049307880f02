# Every training rule: its name is the stage it runs (gclvad.gcl.config.Stage).
from gclvad.logs import job_log
from gclvad.stages.training import train_stage

with job_log(snakemake.log[0]):
    train_stage(
        stage=snakemake.rule,
        params=snakemake.params.gcl,
        features_path=snakemake.input.features,
        index_path=snakemake.input.index,
        train_on=snakemake.params.train_on,
        out_path=snakemake.output[0],
        device=snakemake.params.device,
        labels_spec=snakemake.params.labels or None,
        initial_path=snakemake.input.get("initial"),
        td_mask_path=snakemake.input.get("td_mask"),
        td_summary_path=snakemake.input.get("td_summary"),
        checkpoint_path=snakemake.params.checkpoint,
        epoch_scores_path=snakemake.output.get("epoch_scores"),
        log_path=snakemake.output.get("log"),
        metadata=snakemake.params.get("run"),
        crops=snakemake.params.crops,
    )
