from gclvad.logs import job_log
from gclvad.stages.results import evaluate_run

with job_log(snakemake.log[0]):
    evaluate_run(
        scores_path=snakemake.input.scores,
        index_path=snakemake.input.index,
        spec=snakemake.params.spec,
        epoch_scores_path=snakemake.input.epoch_scores,
        models_path=snakemake.input.models,
        postprocess_path=snakemake.input.postprocess,
        segment_length=snakemake.params.segment_length,
        segment_stride=snakemake.params.segment_stride,
        frame_step=snakemake.params.frame_step,
        out_auc=snakemake.output.auc,
        out_curve=snakemake.output.curve,
        enrichment_path=snakemake.input.get("td_enrichment"),
    )
