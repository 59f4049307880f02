from gclvad.logs import job_log
from gclvad.stages.preparation import extract_video_features

# The guard matters: decoder processes are forked from this process, and a process started
# the other way (spawn) would run this script again.
if __name__ == "__main__":
    with job_log(snakemake.log[0]):
        extract_video_features(
            videos=snakemake.params.videos,
            manifest_path=snakemake.output[0],
            extractor=snakemake.params.extractor,
            segment_length=snakemake.params.segment_length,
            stride=snakemake.params.segment_stride,
            frame_step=snakemake.params.frame_step,
            device=snakemake.params.device,
            decoders=snakemake.params.decoders,
            threads=snakemake.threads,
            on_bad_video=snakemake.params.on_bad_video,
        )
