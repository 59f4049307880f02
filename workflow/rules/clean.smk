# Temporal-difference cleaning (paper §3.3): which training segments pre-train G.


rule clean_features:
    input:
        features=rules.merge_features.output[0],
        index=rules.segment_index.output.index,
    output:
        mask="results/{dataset}/{extractor}/td_mask.npz",
        summary="results/{dataset}/{extractor}/td_summary.json",
    log:
        "logs/{dataset}/{extractor}/clean_features.log",
    conda:
        "../../envs/gclvad.yaml"
    params:
        cleaning=config["cleaning"],
        train_on=get_train_on,
    script:
        "../scripts/clean_features.py"
