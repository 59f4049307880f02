# Input functions and params of the rules of workflow/rules/decode.smk, which includes this file
# (Snakemake's lint keeps functions and rules in separate files).

# Where a dataset's missing files go (README sections), by its format.
DATASET_HELP = {
    "ucf_crime": "README.md, section 'UCF-Crime'",
    "shanghaitech": "README.md, section 'ShanghaiTech'",
    "generic": "README.md, section 'Your own videos'",
    "features": "README.md, section 'Features published by others'",
}


def get_generate_params(wildcards):
    return dataset_config(wildcards.dataset)["generate"]


def get_dataset_files(wildcards):
    """Files the segment index reads; user files that are missing stop the workflow at once."""
    entry = dataset_config(wildcards.dataset)
    if "generate" in entry:
        return generated_manifest(wildcards.dataset)
    keys = ["manifest", "annotations", "train_list", "test_list", "root", "frame_masks"]
    keys += ["feature_dir", "labels"]
    paths = {k: entry[k] for k in keys if k in entry}
    missing = [f"  {k}: {p}" for k, p in paths.items() if not Path(p).exists()]
    if missing:
        raise WorkflowError(
            f"dataset '{wildcards.dataset}' is missing files:\n"
            + "\n".join(missing)
            + f"\nPut them there (see {DATASET_HELP[entry['format']]}) or fix config.yaml."
        )
    return {k: p for k, p in paths.items() if Path(p).is_file()}
