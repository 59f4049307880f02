from gclvad.logs import job_log
from gclvad.stages.results import score_run

with job_log(snakemake.log[0]):
    score_run(
        models_path=snakemake.input.models,
        features_path=snakemake.input.features,
        index_path=snakemake.input.index,
        train_on=snakemake.params.train_on,
        segment_length=snakemake.params.segment_length,
        out_path=snakemake.output.scores,
        postprocess_path=snakemake.output.postprocess,
        postprocess=snakemake.params.postprocess,
        device=snakemake.params.device,
        crops=snakemake.params.crops,
    )
