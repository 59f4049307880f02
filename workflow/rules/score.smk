# New footage scored by a trained run: every video (or frame folder) in
# resources/score/{folder}/ -> per-frame CSV and plot per video, and a TSV listing them.
# Ask for it by target, e.g.
#   snakemake results/demo/i3d/GCL_PT/seed0/scored/street/scores.tsv


rule score_folder:
    input:
        models=get_run_output("models"),
        postprocess=rules.score_run.output.postprocess,
        videos="resources/score/{folder}",
    output:
        f"{RUN}/scored/{{folder}}/scores.tsv",
    log:
        f"{RUN_LOGS}/score_folder/{{folder}}.log",
    benchmark:
        f"{RUN_BENCHMARKS}/score_folder/{{folder}}.tsv"
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
