# Input functions and params of the rules of workflow/rules/extract.smk, which includes this file
# (Snakemake's lint keeps functions and rules in separate files).

import shutil
import sys
import time

from gclvad.stages import extraction_plan as plan
from gclvad.weights import is_marker

SHARD_MANIFEST = f"{FEATURES}/shards/{{shard}}.json"
# A manifest written after this is a shard job of this run (gclvad.stages.extraction_plan).
SHARDS_STARTED_NS = time.time_ns()
# (dataset, extractor) pairs whose extraction plan has been printed: once each.
ANNOUNCED = set()


def extraction_threads(wildcards):
    """All cores of a local run (the shard job is the only extraction job); on a cluster the
    profile's set-threads says how many a shard job gets."""
    try:
        return workflow.cores
    except WorkflowError:  # no --cores: cluster execution
        return 2


def extraction_gpus(wildcards):
    """GPUs an extraction (or scoring) job asks for, so that cluster profiles request one."""
    return plan.extraction_gpus(
        config["device"], shutil.which("nvidia-smi") is not None
    )


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


def shard_partition(wildcards):
    """The dataset's usable videos (index rows, in index order) in shards of videos_per_job."""
    rows = plan.usable_rows(segment_index(wildcards.dataset).to_dict("records"))
    size = plan.extraction_setting(config, "videos_per_job")
    return plan.shard_partition(rows, size, on_cluster())


def video_feature_file(wildcards):
    """A function: a video's per-video feature file for this dataset and extractor."""
    return lambda video: filled(f"{FEATURES}/{{video}}.h5", video=video, **wildcards)


def expected_feature_file(wildcards):
    """A function: what a current feature file of a video of `segments` segments holds."""
    entry = extractor_config(wildcards.extractor)
    network = config_checks.network_of(config, wildcards.extractor)
    length = config["segment_length"]
    step = get_frame_step(wildcards)
    return lambda segments: plan.expected_feature_file(
        entry, network, length, segment_stride(), segments, step
    )


def shard_rows(wildcards):
    manifest = filled(SHARD_MANIFEST, **wildcards)
    partition = shard_partition(wildcards)
    try:
        return plan.shard_rows(
            partition, int(wildcards.shard), manifest, wildcards.dataset
        )
    except GclvadError as error:
        raise WorkflowError(str(error)) from None


def get_shard_videos(wildcards):
    """What the shard job extracts: video id, source, feature file and segment count."""
    return plan.shard_videos(shard_rows(wildcards), video_feature_file(wildcards))


def get_shard_sources(wildcards):
    return [row["source"] for row in shard_rows(wildcards)]


def announce_once(key, message):
    """Print `message` once per `key` (get_video_features is asked again after each job)."""
    if key not in ANNOUNCED:
        ANNOUNCED.add(key)
        print(f"gclvad: {message}", file=sys.stderr)


def announce_unplanned(wildcards):
    """Before the segment index exists the shards are unknown: say when they will be."""
    index = filled(rules.segment_index.output.index, dataset=wildcards.dataset)
    if not Path(index).exists():
        name = f"{wildcards.dataset}/{wildcards.extractor}"
        message = f"extraction of {name}: shards planned once {index} is written"
        announce_once(("unplanned", name), message)


def announce_plan(wildcards, partition, states):
    """Print the extraction plan: `snakemake -n` cannot list the shard jobs of a checkpoint
    that has not run, and extraction is a run's longest step."""
    name = f"{wildcards.dataset}/{wildcards.extractor}"
    announce_once(("planned", name), plan.plan_summary(name, partition, states))


def clear_stale_manifest(wildcards, shard):
    manifest = Path(filled(SHARD_MANIFEST, shard=shard, **wildcards))
    log = f"logs/{wildcards.dataset}/extract/{wildcards.extractor}/shard{shard}.log"
    try:
        plan.clear_stale_manifest(manifest, SHARDS_STARTED_NS, log)
    except GclvadError as error:
        raise WorkflowError(str(error)) from None


def get_video_features(wildcards):
    """Per-video feature files of every usable video of the dataset, once every shard is done;
    before that, the manifests of the shards with work left, so that their jobs run (in
    parallel) and this is asked again when each has finished (they are checkpoints)."""
    # Checked before waiting for the segment index, so that an unknown extractor or a
    # missing weights file stops the workflow at once instead of after indexing every video.
    get_weights_file(wildcards)
    announce_unplanned(wildcards)
    partition = shard_partition(wildcards)
    feature_file = video_feature_file(wildcards)
    states = plan.video_states(
        partition, feature_file, expected_feature_file(wildcards)
    )
    announce_plan(wildcards, partition, states)
    todo = plan.todo_shards(states)
    if todo:
        for shard in todo:
            clear_stale_manifest(wildcards, shard)
        return [filled(SHARD_MANIFEST, shard=shard, **wildcards) for shard in todo]
    return plan.done_feature_files(partition, states, feature_file)
