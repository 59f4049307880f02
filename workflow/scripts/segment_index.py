from gclvad.logs import job_log
from gclvad.stages.preparation import index_dataset

with job_log(snakemake.log[0]):
    index_dataset(
        spec=snakemake.params.spec,
        segment_length=snakemake.params.segment_length,
        segment_stride=snakemake.params.segment_stride,
        frame_step=snakemake.params.frame_step,
        on_bad_video=snakemake.params.on_bad_video,
        out_path=snakemake.output.index,
    )
