from pathlib import Path

from gclvad.logs import job_log
from gclvad.scoring.footage import score_folder

with job_log(snakemake.log[0]):
    # The run's recorded weights are used (relative to the workflow folder), checked by sha256.
    score_folder(
        snakemake.input.models,
        snakemake.input.videos,
        Path(snakemake.output[0]).parent,
        snakemake.output[0],
        device=snakemake.params.device,
    )
