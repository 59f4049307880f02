from gclvad.logs import job_log
from gclvad.pipeline import extract_video_features

with job_log(snakemake.log[0]):
    extract_video_features(
        snakemake.input.video,
        snakemake.output[0],
        snakemake.params.extractor,
        snakemake.params.segment_length,
        snakemake.params.device,
    )
