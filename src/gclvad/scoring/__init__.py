"""Scoring with a trained run: segment scores, frame scores, and `gclvad score`.

    quantiles    the distribution of a run's training-segment scores (pure numpy)
    postprocess  beyond the paper: smoothing, crop and ensemble normalisation, references
    frames       segment scores onto frames (every rule), frame-score files
    scorer       a run's networks or a seed ensemble -> every segment's scores
    run          a trained run: its record, its extractor checked, `open_run`
    footage      `gclvad score`: new videos extracted and scored as the run's own

Inference imports `gcl.store` and `gcl.models`, never the trainer. This package file
imports nothing.
"""
