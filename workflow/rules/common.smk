# Config validation, the path layout, wildcard constraints and the lookups several stages
# share. A stage's own input functions are in workflow/rules/inputs/<stage>.smk, which its
# rule file includes; the config checks are gclvad.stages.config_checks, extraction planning
# gclvad.stages.extraction_plan. Nothing this process imports loads torch.
from pathlib import Path

import pandas as pd
from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version, validate

from gclvad.datasets.base import VIDEO_ID_PATTERN
from gclvad.errors import GclvadError
from gclvad.stages import config_checks
from gclvad.stages.settings import run_settings, variant_pattern

min_version("9.0")


def refuse(problems):
    """Stop the workflow before any job is planned, printing every problem found."""
    if problems:
        raise WorkflowError("\n".join(problems))


def on_cluster():
    """True when jobs are submitted to a cluster (also inside such a job)."""
    return workflow.non_local_exec or workflow.remote_exec


# Old spellings first: the schema would only say that their key is unexpected.
refuse(config_checks.retired_spelling_problems(config))
validate(config, "../schemas/config.schema.yaml")
refuse(config_checks.config_problems(config))
# A CUDA device this machine lacks stops the run here; a cluster's nodes are not this one.
if not on_cluster():
    refuse(config_checks.cuda_device_problems(config["device"]))


# ---------------------------------------------------------------- the path layout

FEATURES = "results/{dataset}/features/{extractor}"
CLEANING = "results/{dataset}/{extractor}/cleaning/{cleaning}"
RUN = "results/{dataset}/{extractor}/{variant}/seed{seed}"
RUN_LOGS = "logs/{dataset}/{extractor}/{variant}/seed{seed}"
RUN_BENCHMARKS = "benchmarks/rules/{dataset}/{extractor}/{variant}/seed{seed}"

# Variant wildcards may carry overrides: GCL_PT~nl_target=gaussian, GCL_WS~supervision=33.
# The autoencoder variants train in rule `autoencoder`, the GCL ones in pretrain_g,
# pretrain_d and gcl_loop: the constraints below send each run to its rules.
AUTOENCODER_VARIANT = variant_pattern("autoencoder")
GCL_VARIANT = variant_pattern("gcl")

# Datasets of published features (format `features`) have no videos and no extractor: their
# merged feature file links the .npy files (rule link_features) instead of merging extractions.
PUBLISHED = config_checks.published_datasets(config)
PUBLISHED_DATASET = "|".join(PUBLISHED) or "(?!)"  # (?!) matches nothing
# (the lookahead ends at the next character that cannot be in a name: the wildcard is matched
# inside a whole path, where `$` would never follow the name)
VIDEO_DATASET = rf"(?!(?:{PUBLISHED_DATASET})(?![A-Za-z0-9_\-]))[A-Za-z0-9_\-]+"


wildcard_constraints:
    dataset=r"[A-Za-z0-9_\-]+",
    extractor=r"[A-Za-z0-9_\-]+",
    variant=r"[A-Za-z0-9_]+(~[A-Za-z0-9_.]+=[A-Za-z0-9_.\-]+)*",
    seed=r"\d+",
    cleaning=r"[a-z0-9]+-[a-z]+-[0-9.e+\-]+",
    # The readers refuse other ids (gclvad.datasets.base): none reaches outside its folder.
    video=VIDEO_ID_PATTERN,


def filled(pattern, **values):
    """A rule's output `pattern` with its wildcards filled in: one path."""
    (path,) = expand(pattern, **values)
    return path


# ---------------------------------------------------------------- shared lookups

# Keys of a dataset entry that say how the workflow uses it, not what its files hold.
WORKFLOW_KEYS = (
    "extractor",
    "training",
    "train_on",
    "generate",
    "crop_use",
    "variant",
    "frame_step",
)


def dataset_config(name):
    """The dataset's config entry; unknown names stop the workflow naming the known ones."""
    if name not in config["datasets"]:
        known = ", ".join(sorted(config["datasets"]))
        raise WorkflowError(
            f"dataset '{name}' is not in config 'datasets' (known: {known})"
        )
    return config["datasets"][name]


def extractor_config(name):
    if name not in config["extractors"]:
        known = ", ".join(sorted(config["extractors"]))
        raise WorkflowError(
            f"extractor '{name}' is not in config 'extractors' (known: {known})"
        )
    return config["extractors"][name]


def get_extractor_params(wildcards):
    """The extractor entry as extraction reads it: `name` is the network it runs."""
    entry = dict(extractor_config(wildcards.extractor))
    return {"name": entry.pop("network", wildcards.extractor), **entry}


def generated_manifest(name):
    return {
        "manifest": f"results/{name}/videos/videos.csv",
        "annotations": f"results/{name}/videos/annotations.csv",
    }


def get_reader_spec(wildcards):
    """What the dataset reader reads: the entry's file keys (generated files filled in),
    without the keys that only tell the workflow what to do with the dataset."""
    entry = dataset_config(wildcards.dataset)
    spec = {k: v for k, v in entry.items() if k not in WORKFLOW_KEYS}
    if "generate" in entry:
        spec.update(generated_manifest(wildcards.dataset))
    if wildcards.dataset in PUBLISHED:
        # frames per published feature row
        spec["segment_length"] = config["segment_length"]
    return spec


def segment_stride():
    """Frames between window starts: overlapping windows when below segment_length."""
    return config.get("segment_stride") or config["segment_length"]


def get_segment_stride(wildcards):
    """The dataset's window stride (published features: their rows, consecutive)."""
    return (
        config["segment_length"] if wildcards.dataset in PUBLISHED else segment_stride()
    )


def get_frame_step(wildcards):
    """Every k-th frame of the dataset's videos feeds a segment (1: every frame, the paper's)."""
    return dataset_config(wildcards.dataset).get("frame_step", 1)


def get_train_on(wildcards):
    return dataset_config(wildcards.dataset).get("train_on", ["train"])


def get_crops(wildcards):
    """The dataset's `crop_use`: how its segments' crops are used (gclvad.features.feature_set.CROP_USES).
    The rules' params keep the name `crops`, which the stages' functions take."""
    return dataset_config(wildcards.dataset).get("crop_use", "mean")


def segment_index(dataset):
    """The segment index table; waits for the checkpoint that writes it."""
    path = checkpoints.segment_index.get(dataset=dataset).output.index
    return pd.read_csv(path, sep="\t", dtype={"video": str}, keep_default_na=False)


def settings_of(wildcards):
    """The RunSettings of a run (package preset, config preset, cleaning, variant)."""
    preset_name = config_checks.preset_name(dataset_config(wildcards.dataset))
    try:
        return run_settings(
            config["training"]["presets"][preset_name],
            wildcards.variant,
            config["cleaning"],
            config["device"],
        )
    except GclvadError as error:  # a bad variant or preset: name the run it belongs to
        raise WorkflowError(f"run {RUN.format(**wildcards)}: {error}") from None


def get_postprocess_params(wildcards):
    return settings_of(wildcards).postprocess.to_dict()


def default_run(dataset, **fields):
    """Wildcard values of the dataset's default run (its extractor, default variant, seed)."""
    values = {
        "dataset": dataset,
        "extractor": dataset_config(dataset).get("extractor", "published"),
        "variant": dataset_config(dataset).get("variant", config["default_variant"]),
        "seed": config["seed"],
    }
    return values | fields


def get_final_output():
    """Targets of `snakemake` without arguments: every dataset whose inputs are present, with
    the Fig-4 histograms of its default run."""
    targets = []
    for name, entry in config["datasets"].items():
        if (
            "generate" in entry
            or Path(entry.get("root", entry.get("manifest", ""))).exists()
        ):
            targets.append(f"results/{name}/auc.json")
            targets += expand(f"{RUN}/plots/score_histograms.png", **default_run(name))
    return targets
