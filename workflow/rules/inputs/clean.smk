# Input functions and params of the rules of workflow/rules/clean.smk, which includes this file
# (Snakemake's lint keeps functions and rules in separate files).

from gclvad.cleaning import CleaningConfig


def get_cleaning_params(wildcards):
    return CleaningConfig.from_name(wildcards.cleaning).to_dict()
