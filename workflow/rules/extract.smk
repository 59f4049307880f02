# Videos to features: shard jobs, each extracting many videos in one process with one
# network (per-video feature files, written as each video is done), then one merged file
# per dataset and extractor. Which shards have work left is decided while planning, from
# the feature files themselves (gclvad.stages.extraction_plan).


include: "inputs/extract.smk"


checkpoint extract_shard:
    input:
        videos=get_shard_sources,
        weights=get_weights_file,
    output:
        SHARD_MANIFEST,
    log:
        "logs/{dataset}/extract/{extractor}/shard{shard}.log",
    benchmark:
        "benchmarks/rules/{dataset}/extract/{extractor}/shard{shard}.tsv"
    wildcard_constraints:
        shard=r"\d+",
        dataset=VIDEO_DATASET,
    conda:
        "../../envs/gclvad.yaml"
    threads: extraction_threads
    resources:
        gpu=extraction_gpus,
    params:
        videos=get_shard_videos,
        extractor=get_extractor_params,
        segment_length=config["segment_length"],
        segment_stride=segment_stride(),
        frame_step=get_frame_step,
        device=config["device"],
        decoders=plan.extraction_setting(config, "decoders"),
        on_bad_video=config["on_bad_video"],
    script:
        "../scripts/extract_features.py"


rule merge_features:
    input:
        get_video_features,
    output:
        f"{FEATURES}.h5",
    log:
        "logs/{dataset}/merge_features/{extractor}.log",
    benchmark:
        "benchmarks/rules/{dataset}/merge_features/{extractor}.tsv"
    wildcard_constraints:
        dataset=VIDEO_DATASET,
    conda:
        "../../envs/gclvad.yaml"
    script:
        "../scripts/merge_features.py"
