# Config validation, the path layout, and the small functions that turn config into targets,
# inputs and params. Settings are read through gclvad.stages.settings, which does not import torch.
import hashlib
import json
import shutil
from pathlib import Path

import pandas as pd
from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version, validate

from gclvad.cleaning import CleaningConfig
from gclvad.datasets.base import VIDEO_ID_PATTERN
from gclvad.errors import GclvadError
from gclvad.decode.crops import crop_count
from gclvad.extract.facts import segment_length_problem, unknown_extractor_problem
from gclvad.gcl.config import Stage
from gclvad.stages.settings import (
    ENSEMBLE_PATTERN,
    ensemble_members,
    models_variant,
    run_settings,
    stage_config,
    stage_params,
    variant_pattern,
)
from gclvad.weights import is_marker

min_version("9.0")


validate(config, "../schemas/config.schema.yaml")


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


# ---------------------------------------------------------------- config checks


# Datasets of published features (format `features`) have no videos and no extractor: their
# merged feature file links the .npy files (rule link_features) instead of merging extractions.
PUBLISHED = [
    name for name, entry in config["datasets"].items() if entry["format"] == "features"
]
PUBLISHED_DATASET = "|".join(PUBLISHED) or "(?!)"  # (?!) matches nothing
# (the lookahead ends at the next character that cannot be in a name: the wildcard is matched
# inside a whole path, where `$` would never follow the name)
VIDEO_DATASET = rf"(?!(?:{PUBLISHED_DATASET})(?![A-Za-z0-9_\-]))[A-Za-z0-9_\-]+"


def dataset_extractor(name):
    """The extractor a dataset's runs use by default (a name for published features)."""
    return dataset_config(name).get("extractor", "published")


def check_config_references():
    """Names a dataset gives (its extractor, its training preset) must be config entries:
    checked here, so that every target stops before any job runs, naming the key."""
    for name, entry in config["datasets"].items():
        references = {
            "training": (entry.get("training", "small"), config["training"]["presets"]),
        }
        if name not in PUBLISHED:
            references["extractor"] = (entry["extractor"], config["extractors"])
        for key, (value, known) in references.items():
            if value not in known:
                raise WorkflowError(
                    f"config datasets.{name}.{key}: '{value}' is not defined "
                    f"(known: {', '.join(sorted(known))})"
                )


def network_of(extractor):
    """The network an `extractors:` entry runs: its `network`, or its own name."""
    return config["extractors"][extractor].get("network", extractor)


def check_extractor_names():
    """Every `extractors:` entry must run a network gclvad has (gclvad.extract.facts)."""
    for name in config["extractors"]:
        problem = unknown_extractor_problem(network_of(name))
        if problem:
            key = f"{name}.network" if "network" in config["extractors"][name] else name
            raise WorkflowError(f"config extractors.{key}: {problem}")


def check_segment_length():
    """segment_length must suit the extractor of every dataset (I3D needs 9 frames or more)."""
    for name, entry in config["datasets"].items():
        if name in PUBLISHED:
            continue  # features extracted by others: their rows are what they are
        problem = segment_length_problem(
            network_of(entry["extractor"]), config["segment_length"]
        )
        if problem:
            raise WorkflowError(
                f"config segment_length: {problem} (dataset {name} uses it); "
                "set segment_length to a length it accepts"
            )


def check_cleaning_settings():
    """The `cleaning:` settings every dataset's runs start from (the top-level section, then
    its training preset's), checked even where no run of it is asked for yet."""
    for name, entry in config["datasets"].items():
        preset = config["training"]["presets"][entry.get("training", "small")]
        try:
            CleaningConfig(**{**config["cleaning"], **preset.get("cleaning", {})})
        except GclvadError as error:
            raise WorkflowError(
                f"config cleaning (dataset {name}, training preset {entry.get('training', 'small')}): {error}"
            ) from None


check_config_references()
check_extractor_names()
check_segment_length()
check_cleaning_settings()


DATASET_HELP = {
    "ucf_crime": "README.md, section 'UCF-Crime'",
    "shanghaitech": "README.md, section 'ShanghaiTech'",
    "generic": "README.md, section 'Your own videos'",
    "features": "README.md, section 'Features published by others'",
}
# Keys of a dataset entry that say how the workflow uses it, not what its files hold.
WORKFLOW_KEYS = ("extractor", "training", "train_on", "generate", "crops", "variant")


# ---------------------------------------------------------------- datasets


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


def get_feature_lists(wildcards):
    """The list files of a features dataset (their sha256 is recorded with the features)."""
    entry = dataset_config(wildcards.dataset)
    return [entry["train_list"], entry["test_list"]]


def get_generate_params(wildcards):
    return dataset_config(wildcards.dataset)["generate"]


def segment_stride():
    """Frames between window starts: overlapping windows when below segment_length."""
    return config.get("segment_stride") or config["segment_length"]


def get_segment_stride(wildcards):
    """The dataset's window stride (published features: their rows, consecutive)."""
    return (
        config["segment_length"] if wildcards.dataset in PUBLISHED else segment_stride()
    )


def get_train_on(wildcards):
    return dataset_config(wildcards.dataset).get("train_on", ["train"])


def get_crops(wildcards):
    """How the dataset's segments with several crops are used (gclvad.features.files.CROP_USES)."""
    return dataset_config(wildcards.dataset).get("crops", "mean")


def segment_index(dataset):
    """The segment index table; waits for the checkpoint that writes it."""
    path = checkpoints.segment_index.get(dataset=dataset).output.index
    return pd.read_csv(path, sep="\t", dtype={"video": str}, keep_default_na=False)


# ---------------------------------------------------------------- extraction
# One shard job extracts many videos in one process (gclvad.extract.shards); its output is
# a small manifest, while the per-video feature files it writes are what merge_features reads.
# Which videos still need extracting is decided here from the files themselves
# (gclvad.extract.state), so that only settings that change features re-extract, and
# changing videos_per_job, decoders or batch_size re-runs nothing.
import subprocess
import sys
import time

from gclvad.extract.state import DONE, TODO, Expected, video_state
from gclvad.weights import RANDOM_WEIGHTS

SHARD_MANIFEST = f"{FEATURES}/shards/{{shard}}.json"
# videos_per_job "auto": one job for all videos of a dataset when jobs run on this machine;
# on a cluster one job per this many videos, each with one GPU (at ~1,000 clips/s a shard of
# 100 UCF-Crime videos, ~45,000 clips, is a job of about a minute of GPU time).
CLUSTER_VIDEOS_PER_JOB = 100
SHARDS_STARTED_NS = time.time_ns()


def extraction_setting(key):
    defaults = {"videos_per_job": "auto", "decoders": "auto"}
    return config.get("extraction", {}).get(key, defaults[key])


def on_cluster():
    """True when jobs are submitted to a cluster (also inside such a job)."""
    return workflow.non_local_exec or workflow.remote_exec


def check_extraction_device():
    """`device: cuda` on a machine without a usable CUDA GPU stops the workflow before any job
    runs (with the message the job would give). On a cluster the jobs' nodes are not this one.
    """
    device = config["device"]
    if not device.startswith("cuda") or on_cluster():
        return
    probe = "import sys; from gclvad.device import resolve_device; resolve_device(sys.argv[1])"
    result = subprocess.run(
        [sys.executable, "-c", probe, device], capture_output=True, text=True
    )
    if result.returncode != 0:
        problem = (
            result.stderr.strip().splitlines()[-1] if result.stderr.strip() else ""
        )
        raise WorkflowError(
            f"config device: {device!r} cannot be used on this machine: {problem}"
        )


check_extraction_device()


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


def get_weights_file(wildcards):
    """The weights file as an input, so that new weights re-run extraction."""
    weights = extractor_config(wildcards.extractor)["weights"]
    if is_marker(weights):
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


def extraction_threads(wildcards):
    """All cores of a local run (the shard job is the only extraction job); on a cluster the
    profile's set-threads says how many a shard job gets."""
    try:
        return workflow.cores
    except WorkflowError:  # no --cores: cluster execution
        return 2


def usable_index_rows(dataset):
    table = segment_index(dataset)
    return table[table["status"].isin(["ok", "truncated"])]


def shard_partition(dataset):
    """The dataset's usable videos (index rows, in index order) in shards of videos_per_job."""
    rows = [row for _, row in usable_index_rows(dataset).iterrows()]
    size = extraction_setting("videos_per_job")
    if size == "auto":
        size = CLUSTER_VIDEOS_PER_JOB if on_cluster() else max(1, len(rows))
    return [rows[i : i + size] for i in range(0, len(rows), size)]


def video_feature_file(wildcards, video):
    return filled(f"{FEATURES}/{{video}}.h5", video=video, **wildcards)


def shard_rows(wildcards):
    partition = shard_partition(wildcards.dataset)
    shard = int(wildcards.shard)
    if shard >= len(partition):
        raise WorkflowError(
            f"{filled(SHARD_MANIFEST, **wildcards)}: dataset '{wildcards.dataset}' has "
            f"{len(partition)} shard(s) of extraction.videos_per_job videos, numbered from 0"
        )
    return partition[shard]


def get_shard_videos(wildcards):
    """What the shard job extracts: video id, source, feature file and segment count."""
    return [
        {
            "video": row["video"],
            "source": row["source"],
            "out_path": video_feature_file(wildcards, row["video"]),
            "segments": int(row["segments"]),
        }
        for row in shard_rows(wildcards)
    ]


def get_shard_sources(wildcards):
    return [row["source"] for row in shard_rows(wildcards)]


def expected_feature_file(wildcards, segments):
    """What a current per-video feature file holds (gclvad.extract.state); the shard job
    also checks the weights' sha256 and the preprocessing, which this process cannot."""
    settings = extractor_config(wildcards.extractor)
    weights = settings["weights"]
    attrs = {
        "extractor": network_of(wildcards.extractor),
        "weights_random": weights == RANDOM_WEIGHTS,
        "precision": settings.get("precision", "fp32"),
        "segment_length": config["segment_length"],
        "segment_stride": (
            None if segment_stride() == config["segment_length"] else segment_stride()
        ),
    }
    if weights == RANDOM_WEIGHTS:
        attrs["weights_sha256"] = RANDOM_WEIGHTS
    newer_than = () if is_marker(weights) else (Path(weights),)
    crops = crop_count(settings.get("crops", "centre"))
    return Expected(
        attrs, settings.get("dtype", "float16"), segments, newer_than, crops=crops
    )


def todo_shards(wildcards):
    """Shard numbers with a video that has neither a current feature file nor a bad-video marker."""
    todo = set()
    for shard, rows in enumerate(shard_partition(wildcards.dataset)):
        for row in rows:
            path = video_feature_file(wildcards, row["video"])
            expected = expected_feature_file(wildcards, int(row["segments"]))
            if video_state(path, row["source"], expected).state == TODO:
                todo.add(shard)
                break
    return sorted(todo)


def clear_stale_manifest(wildcards, shard):
    """A manifest says its shard is done. One older than this run whose shard has work left
    (a feature file deleted, settings changed) is stale: removed, so the shard runs again.
    One written during this run is a shard job that left work undone: an error."""
    manifest = Path(filled(SHARD_MANIFEST, shard=shard, **wildcards))
    if not manifest.exists():
        return
    if manifest.stat().st_mtime_ns >= SHARDS_STARTED_NS:
        raise WorkflowError(
            f"shard job {manifest} finished, but some of its videos still have no current "
            f"feature file; see its log, logs/{wildcards.dataset}/extract/{wildcards.extractor}/shard{shard}.log"
        )
    manifest.unlink()


def get_video_features(wildcards):
    """Per-video feature files of every usable video of the dataset, once every shard is done;
    before that, the manifests of the shards with work left, so that their jobs run (in
    parallel) and this is asked again when each has finished (they are checkpoints)."""
    # Checked before waiting for the segment index, so that an unknown extractor or a
    # missing weights file stops the workflow at once instead of after indexing every video.
    get_weights_file(wildcards)
    todo = todo_shards(wildcards)
    if todo:
        for shard in todo:
            clear_stale_manifest(wildcards, shard)
        return [filled(SHARD_MANIFEST, shard=shard, **wildcards) for shard in todo]
    rows = usable_index_rows(wildcards.dataset)
    files = []
    for video, source, segments in zip(rows["video"], rows["source"], rows["segments"]):
        path = video_feature_file(wildcards, video)
        state = video_state(
            path, source, expected_feature_file(wildcards, int(segments))
        )
        if state.state == DONE:
            files.append(path)
    return files


# ---------------------------------------------------------------- runs


def settings_of(wildcards):
    """The RunSettings of a run (package preset, config preset, cleaning, variant)."""
    preset_name = dataset_config(wildcards.dataset).get("training", "small")
    try:
        return run_settings(
            config["training"]["presets"][preset_name],
            wildcards.variant,
            config["cleaning"],
            config["device"],
        )
    except GclvadError as error:  # a bad variant or preset: name the run it belongs to
        raise WorkflowError(f"run {RUN.format(**wildcards)}: {error}") from None


def get_stage_params(stage):
    """A params function giving the settings `stage` reads (and nothing more)."""

    def stage_params_of(wildcards):
        return stage_params(settings_of(wildcards), stage, int(wildcards.seed))

    return stage_params_of


def get_labels_spec(stage):
    """The reader spec for a stage that reads video labels (one-class, weak supervision), else nothing."""

    def labels_spec(wildcards):
        stage_gcl, _ = stage_config(get_stage_params(stage)(wildcards), "cpu")
        return get_reader_spec(wildcards) if stage_gcl.reads_labels else {}

    return labels_spec


def get_cleaning_params(wildcards):
    return CleaningConfig.from_name(wildcards.cleaning).to_dict()


def get_td_enrichment(wildcards):
    """{"td_enrichment": what the run's TD cleaning removed}, or nothing for a run without
    cleaning (an input of evaluate_run: labels report on the cleaning there)."""
    settings = settings_of(wildcards)
    if settings.cleaning is None:
        return {}
    cleaned = {"cleaning": settings.cleaning.name, **wildcards}
    return {"td_enrichment": filled(rules.td_enrichment.output[0], **cleaned)}


def get_training_inputs(stage):
    """Features and index, the TD mask for G's training on cleaned rows, the previous
    stage's networks for D's pre-training and the loop."""

    def training_inputs(wildcards):
        inputs = {
            "features": filled(rules.merge_features.output[0], **wildcards),
            "index": filled(rules.segment_index.output.index, **wildcards),
        }
        settings = settings_of(wildcards)
        if stage in (Stage.PRETRAIN_G, Stage.AUTOENCODER) and settings.cleaning:
            cleaned = {"cleaning": settings.cleaning.name, **wildcards}
            inputs["td_mask"] = filled(rules.clean_features.output.mask, **cleaned)
            inputs["td_summary"] = filled(
                rules.clean_features.output.summary, **cleaned
            )
        before = settings.gcl.stages[: settings.gcl.stages.index(stage)]
        if before:
            previous = {
                Stage.PRETRAIN_G: rules.pretrain_g,
                Stage.PRETRAIN_D: rules.pretrain_d,
            }
            inputs["initial"] = filled(previous[before[-1]].output[0], **wildcards)
        return inputs

    return training_inputs


def get_run_output(name):
    """An input function: output `name` (models, log, epoch_scores) of the rule that trained
    the run's networks (gcl_loop, autoencoder or ensemble, by the variant); post-processing
    overrides score with the networks of the variant without them. An unknown variant or a
    bad override stops here, naming the problem."""

    def run_output(wildcards):
        settings_of(wildcards)
        trained = dict(wildcards) | {"variant": models_variant(wildcards.variant)}
        return filled(getattr(rules.gcl_loop.output, name), **trained)

    return run_output


def get_postprocess_params(wildcards):
    return settings_of(wildcards).postprocess.to_dict()


def get_ensemble_members(wildcards):
    """The models of the runs a seed ensemble combines."""
    members = ensemble_members(wildcards.variant, int(wildcards.seed))
    return [
        filled(
            rules.gcl_loop.output.models,
            **(dict(wildcards) | {"variant": v, "seed": s}),
        )
        for v, s in members
    ]


def get_run_metadata(wildcards):
    """What a run's models file records about where it came from (for reports and scoring):
    only settings the run reads, so that editing others (e.g. `cleaning` for AE_AllData)
    does not re-run it."""
    published = wildcards.dataset in PUBLISHED
    run = {
        "dataset": wildcards.dataset,
        "extractor": (
            {"name": wildcards.extractor}
            if published
            else get_extractor_params(wildcards)
        ),
        "crops": get_crops(wildcards),
        "segment_length": config["segment_length"],
        "segment_stride": segment_stride(),
        "variant": wildcards.variant,
        "seed": int(wildcards.seed),
        "settings": settings_of(wildcards).to_dict(),
    }
    digest = hashlib.sha256(json.dumps(run, sort_keys=True).encode()).hexdigest()
    return run | {"config_sha256": digest}


# ---------------------------------------------------------------- targets


def default_run(dataset, **fields):
    """Wildcard values of the dataset's default run (its extractor, default variant, seed)."""
    values = {
        "dataset": dataset,
        "extractor": dataset_extractor(dataset),
        "variant": dataset_config(dataset).get("variant", config["default_variant"]),
        "seed": config["seed"],
    }
    return values | fields


def get_default_run_auc(wildcards):
    return filled(rules.evaluate_run.output.auc, **default_run(wildcards.dataset))


def get_default_plots(wildcards):
    return expand(list(rules.plot_run.output), **default_run(wildcards.dataset))


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


def get_baseline_scores(wildcards):
    """Scores of the plain autoencoder (AE_AllData) for the histogram figure."""
    return filled(
        rules.score_run.output.scores, **(dict(wildcards) | {"variant": "AE_AllData"})
    )


def run_figure(name, caption):
    """A run's figure, collected by `snakemake --report`."""
    return report(
        f"{RUN}/plots/{name}.png",
        caption=f"../report/{caption}.rst",
        category="{dataset}",
        subcategory="{variant} seed {seed}",
    )


def table_runs(table):
    """(variant, seed) of every run a table gathers (paper Table 2, Fig 10, Fig 5, Fig 9)."""
    experiments, seed = config["experiments"], config["seed"]
    if table == "ablation":
        return [(variant, seed) for variant in experiments["ablation"]]
    if table == "seeds":
        return [(v, s) for v in ("GCL_B", "GCL_PT") for s in experiments["seeds"]]
    if table == "nl_targets":
        return [(f"GCL_PT~nl_target={t}", seed) for t in experiments["nl_targets"]]
    return [(f"GCL_WS~supervision={p:g}", seed) for p in experiments["supervision"]]


def get_table_inputs(wildcards):
    """auc.json of every run a table gathers, on the dataset's default extractor."""
    return [
        filled(
            rules.evaluate_run.output.auc,
            **default_run(wildcards.dataset, variant=v, seed=s),
        )
        for v, s in table_runs(wildcards.table)
    ]
