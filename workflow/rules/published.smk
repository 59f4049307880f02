# Datasets of published features (format `features`): no videos, no extraction. The merged
# feature file links every usable video's .npy file(s), read in place, with where they came
# from; cleaning, training, scoring and evaluation then run as for extracted features.


include: "inputs/published.smk"


rule link_features:
    input:
        index=rules.segment_index.output.index,
        lists=get_feature_lists,
    output:
        f"{FEATURES}.h5",
    log:
        "logs/{dataset}/link_features/{extractor}.log",
    benchmark:
        "benchmarks/rules/{dataset}/link_features/{extractor}.tsv"
    wildcard_constraints:
        dataset=PUBLISHED_DATASET,
    conda:
        "../../envs/gclvad.yaml"
    params:
        spec=get_reader_spec,
    script:
        "../scripts/link_features.py"
