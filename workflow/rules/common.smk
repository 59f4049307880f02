# Config validation and the small functions that turn config into targets, inputs and params.
import hashlib
import json
import shutil
import sys
from pathlib import Path

import pandas as pd
from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version, validate

min_version("9.0")


validate(config, "../schemas/config.schema.yaml")


def check_config_references():
    """Names a dataset gives (its extractor, its training preset) must be config entries:
    checked here, so that every target stops before any job runs, naming the key."""
    for name, entry in config["datasets"].items():
        references = {
            "extractor": (entry["extractor"], config["extractors"]),
            "training": (entry.get("training", "small"), config["training"]["presets"]),
        }
        for key, (value, known) in references.items():
            if value not in known:
                raise WorkflowError(
                    f"config datasets.{name}.{key}: '{value}' is not defined "
                    f"(known: {', '.join(sorted(known))})"
                )


check_config_references()


# Variant wildcards may carry overrides: GCL_PT~nl_target=gaussian, GCL_WS~supervision=33.
wildcard_constraints:
    dataset=r"[A-Za-z0-9_\-]+",
    extractor=r"[A-Za-z0-9_\-]+",
    variant=r"[A-Za-z0-9_]+(~[A-Za-z0-9_]+=[A-Za-z0-9_.\-]+)*",
    seed=r"\d+",


DATASET_HELP = {
    "ucf_crime": "README.md, section 'UCF-Crime'",
    "shanghaitech": "README.md, section 'ShanghaiTech'",
    "generic": "README.md, section 'Your own videos'",
}


def dataset_config(name):
    """The dataset's config entry; unknown names stop the workflow naming the known ones."""
    if name not in config["datasets"]:
        known = ", ".join(sorted(config["datasets"]))
        raise WorkflowError(
            f"dataset '{name}' is not in config 'datasets' (known: {known})"
        )
    return config["datasets"][name]


def generated_manifest(name):
    return {
        "manifest": f"results/{name}/videos/videos.csv",
        "annotations": f"results/{name}/videos/annotations.csv",
    }


def get_dataset_spec(wildcards):
    """What the dataset reader needs: the config entry, with generated files filled in."""
    spec = {
        k: v for k, v in dataset_config(wildcards.dataset).items() if k != "generate"
    }
    if "generate" in dataset_config(wildcards.dataset):
        spec.update(generated_manifest(wildcards.dataset))
    return spec


def get_dataset_files(wildcards):
    """Files the segment index reads; user files that are missing stop the workflow at once."""
    entry = dataset_config(wildcards.dataset)
    if "generate" in entry:
        return generated_manifest(wildcards.dataset)
    keys = ["manifest", "annotations", "train_list", "test_list", "root", "frame_masks"]
    paths = {k: entry[k] for k in keys if k in entry}
    missing = [f"  {k}: {p}" for k, p in paths.items() if not Path(p).exists()]
    if missing:
        raise WorkflowError(
            f"dataset '{wildcards.dataset}' is missing files:\n"
            + "\n".join(missing)
            + f"\nPut them there (see {DATASET_HELP[entry['format']]}) or fix config.yaml."
        )
    return {k: p for k, p in paths.items() if Path(p).is_file()}


def get_generate_params(wildcards):
    return dataset_config(wildcards.dataset)["generate"]


def extractor_config(name):
    if name not in config["extractors"]:
        known = ", ".join(sorted(config["extractors"]))
        raise WorkflowError(
            f"extractor '{name}' is not in config 'extractors' (known: {known})"
        )
    return config["extractors"][name]


def get_extractor_params(wildcards):
    return {"name": wildcards.extractor, **extractor_config(wildcards.extractor)}


def get_weights_file(wildcards):
    """The weights file as an input, so that new weights re-run extraction."""
    weights = extractor_config(wildcards.extractor)["weights"]
    if weights in ("package", "random"):
        return []
    if not Path(weights).is_file():
        raise WorkflowError(
            f"weights for extractor '{wildcards.extractor}' not found at {weights}: "
            "download them as README.md says, or set extractors."
            f"{wildcards.extractor}.weights in config.yaml"
        )
    return [weights]


def extraction_gpus(wildcards):
    """GPUs an extraction job asks for, so that cluster profiles request one."""
    device = config["device"]
    if device.startswith("cuda"):
        return 1
    return int(device == "auto" and shutil.which("nvidia-smi") is not None)


def segment_index(dataset):
    """The segment index table; waits for the checkpoint that writes it."""
    path = checkpoints.segment_index.get(dataset=dataset).output.index
    return pd.read_csv(path, sep="\t", dtype={"video": str}, keep_default_na=False)


def get_video_source(wildcards):
    table = segment_index(wildcards.dataset).set_index("video")
    return table.loc[wildcards.video, "source"]


def get_video_features(wildcards):
    """Per-video feature files of every usable video of the dataset."""
    # Checked before waiting for the segment index, so that an unknown extractor or a
    # missing weights file stops the workflow at once instead of after indexing every video.
    get_weights_file(wildcards)
    table = segment_index(wildcards.dataset)
    usable = table.loc[table["status"].isin(["ok", "truncated"]), "video"]
    return expand(
        "results/{dataset}/features/{extractor}/{video}.h5",
        dataset=wildcards.dataset,
        extractor=wildcards.extractor,
        video=usable,
    )


def default_run(dataset):
    entry = dataset_config(dataset)
    variant, seed = config["default_variant"], config["seed"]
    return f"results/{dataset}/{entry['extractor']}/{variant}/seed{seed}"


def get_final_output():
    """Targets of `snakemake` without arguments: every dataset whose inputs are present."""
    targets = []
    for name, entry in config["datasets"].items():
        if (
            "generate" in entry
            or Path(entry.get("root", entry.get("manifest", ""))).exists()
        ):
            targets.append(f"results/{name}/auc.json")
    return targets


def run_path(wildcards, variant=None, seed=None):
    """The run folder of this dataset and extractor for a variant and seed."""
    return (
        f"results/{wildcards.dataset}/{wildcards.extractor}/"
        f"{variant or wildcards.variant}/seed{wildcards.seed if seed is None else seed}"
    )


def get_train_on(wildcards):
    return dataset_config(wildcards.dataset).get("train_on", ["train"])


def get_training_inputs(wildcards):
    """Features and index of the run's dataset, plus the TD mask when the variant uses it."""
    inputs = {
        "features": f"results/{wildcards.dataset}/features/{wildcards.extractor}.h5",
        "index": f"results/{wildcards.dataset}/segments.tsv",
    }
    if run_config_of(wildcards.variant, wildcards.dataset).pretrain_data == "td":
        cleaned = f"results/{wildcards.dataset}/{wildcards.extractor}"
        inputs["td_mask"] = f"{cleaned}/td_mask.npz"
        inputs["td_summary"] = f"{cleaned}/td_summary.json"
    return inputs


def get_run_metadata(wildcards):
    """What a run's models file records about where it came from (for reports and scoring).

    Only settings the run reads, so that editing others (e.g. `cleaning` for AE_AllData)
    does not re-run it."""
    from gclvad.runs import run_settings

    gcl = run_config_of(wildcards.variant, wildcards.dataset)
    run = {
        "dataset": wildcards.dataset,
        "extractor": get_extractor_params(wildcards),
        "segment_length": config["segment_length"],
        "variant": wildcards.variant,
        "seed": int(wildcards.seed),
        "gcl": run_settings(gcl),
    }
    if gcl.pretrain_data == "td":
        run["cleaning_settings"] = config["cleaning"]
    digest = hashlib.sha256(json.dumps(run, sort_keys=True).encode()).hexdigest()
    return run | {"config_sha256": digest}


def run_config_of(variant, dataset):
    """The GCLConfig of a run (package preset, config preset, cleaning, variant)."""
    from gclvad.runs import run_config

    preset_name = dataset_config(dataset).get("training", "small")
    return run_config(
        config["training"]["presets"][preset_name],
        variant,
        config["cleaning"],
        config["device"],
    )


def get_stage_params(stage):
    """A params function giving the settings `stage` depends on (and nothing more)."""

    def stage_params(wildcards):
        from gclvad.runs import stage_settings

        gcl = run_config_of(wildcards.variant, wildcards.dataset)
        return stage_settings(gcl, int(wildcards.seed), stage)

    return stage_params


def get_default_run_auc(wildcards):
    return f"{default_run(wildcards.dataset)}/auc.json"


def get_default_plots(wildcards):
    run = default_run(wildcards.dataset)
    names = ["roc", "score_histograms", "video_scores", "training_curves"]
    return [f"{run}/plots/{name}.png" for name in names]


def get_baseline_scores(wildcards):
    """Scores of the plain autoencoder (AE_AllData) for the histogram figure."""
    return f"{run_path(wildcards, variant='AE_AllData')}/scores.h5"


def aggregate_runs(table):
    """(variant, seed) of every run a table gathers (paper Table 2, Fig 10, Fig 5, Fig 9)."""
    experiments, seed = config["experiments"], config["seed"]
    if table == "ablation":
        return [(variant, seed) for variant in experiments["ablation"]]
    if table == "seeds":
        return [(v, s) for v in ("GCL_B", "GCL_PT") for s in experiments["seeds"]]
    if table == "nl_targets":
        return [(f"GCL_PT~nl_target={t}", seed) for t in experiments["nl_targets"]]
    return [(f"GCL_WS~supervision={p:g}", seed) for p in experiments["supervision"]]


def get_aggregate_runs(wildcards):
    """auc.json of every run a table gathers, on the dataset's default extractor."""
    extractor = dataset_config(wildcards.dataset)["extractor"]
    runs = aggregate_runs(wildcards.table)
    return [
        f"results/{wildcards.dataset}/{extractor}/{variant}/seed{seed}/auc.json"
        for variant, seed in runs
    ]
