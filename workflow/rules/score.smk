# New footage scored by a trained run: every video (or frame folder) in
# resources/score/{folder}/ -> per-frame CSV and plot per video, and a TSV listing them.
# Ask for it by target, e.g.
#   snakemake results/demo/i3d/GCL_PT/seed0/scored/street/scores.tsv


rule score_folder:
    input:
        models=rules.train_gcl.output.models,
        videos="resources/score/{folder}",
    output:
        "results/{dataset}/{extractor}/{variant}/seed{seed}/scored/{folder}/scores.tsv",
    log:
        "logs/{dataset}/{extractor}/{variant}/seed{seed}/score_folder/{folder}.log",
    wildcard_constraints:
        folder=r"[A-Za-z0-9_\-]+",
    conda:
        "../../envs/gclvad.yaml"
    threads: 2
    resources:
        gpu=extraction_gpus,
    params:
        device=config["device"],
    script:
        "../scripts/score_folder.py"
