"""The workflow's stages: what each Snakemake rule calls, and the settings they read.

    settings      a run's settings: presets, variants, each stage's params (torch-free)
    data          what stages read of a dataset's index and features
    preparation   generate, index, extract, merge and link features
    training      TD cleaning and the training stages
    results       scores of a run, its ensemble, its evaluation, the dataset's tables
    figures       the run's figures
    epoch_scores  per-epoch scores of the scored videos (a diagnostic)
    config_checks    the config checks beyond the schema (torch-free)
    extraction_plan  shards and which have work left, decided while planning (torch-free)

This package file imports nothing: the workflow's planning process imports `settings` and
must stay torch-free.
"""
