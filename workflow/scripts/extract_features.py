from gclvad.logs import job_log
from gclvad.pipeline import extract_video_features

with job_log(snakemake.log[0]):
    extract_video_features(
        source=snakemake.input.video,
        out_path=snakemake.output[0],
        extractor=snakemake.params.extractor,
        segment_length=snakemake.params.segment_length,
        device=snakemake.params.device,
    )
