# Segments to features: one job per video, then one merged file per dataset and extractor.


rule extract_features:
    input:
        video=get_video_source,
        weights=get_weights_file,
    output:
        f"{FEATURES}/{{video}}.h5",
    log:
        "logs/{dataset}/extract/{extractor}/{video}.log",
    benchmark:
        "benchmarks/rules/{dataset}/extract/{extractor}/{video}.tsv"
    conda:
        "../../envs/gclvad.yaml"
    threads: 2
    resources:
        gpu=extraction_gpus,
    params:
        extractor=get_extractor_params,
        segment_length=config["segment_length"],
        device=config["device"],
    script:
        "../scripts/extract_features.py"


rule merge_features:
    input:
        get_video_features,
    output:
        f"{FEATURES}.h5",
    wildcard_constraints:
        dataset=VIDEO_DATASET,
    log:
        "logs/{dataset}/merge_features/{extractor}.log",
    benchmark:
        "benchmarks/rules/{dataset}/merge_features/{extractor}.tsv"
    conda:
        "../../envs/gclvad.yaml"
    script:
        "../scripts/merge_features.py"
