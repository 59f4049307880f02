# Input functions and params of the rules of workflow/rules/published.smk, which includes this file
# (Snakemake's lint keeps functions and rules in separate files).


def get_feature_lists(wildcards):
    """The list files of a features dataset (their sha256 is recorded with the features)."""
    entry = dataset_config(wildcards.dataset)
    return [entry["train_list"], entry["test_list"]]
