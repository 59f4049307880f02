# Temporal-difference cleaning (paper §3.3): which training segments G trains on. One mask
# per dataset, extractor and cleaning settings ({cleaning}, e.g. l2-absolute-0.7), shared
# by every run with those settings.


include: "inputs/clean.smk"


rule clean_features:
    input:
        features=rules.merge_features.output[0],
        index=rules.segment_index.output.index,
    output:
        mask=f"{CLEANING}/td_mask.npz",
        summary=f"{CLEANING}/td_summary.json",
    log:
        "logs/{dataset}/{extractor}/cleaning/{cleaning}.log",
    benchmark:
        "benchmarks/rules/{dataset}/{extractor}/cleaning/{cleaning}.tsv"
    conda:
        "../../envs/gclvad.yaml"
    params:
        cleaning=get_cleaning_params,
        train_on=get_train_on,
        crops=get_crops,
    script:
        "../scripts/clean_features.py"


rule td_enrichment:
    input:
        features=rules.merge_features.output[0],
        index=rules.segment_index.output.index,
        mask=rules.clean_features.output.mask,
    output:
        f"{CLEANING}/td_enrichment.json",
    log:
        "logs/{dataset}/{extractor}/cleaning/{cleaning}_enrichment.log",
    benchmark:
        "benchmarks/rules/{dataset}/{extractor}/cleaning/{cleaning}_enrichment.tsv"
    conda:
        "../../envs/gclvad.yaml"
    params:
        train_on=get_train_on,
        crops=get_crops,
        spec=get_reader_spec,
    script:
        "../scripts/td_enrichment.py"
