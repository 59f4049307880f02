# Tables over several runs: paper Table 2 (ablation), Fig 10 (seeds), Fig 5 (NL targets),
# Fig 9 (weak supervision).


rule aggregate_runs:
    input:
        get_aggregate_runs,
    output:
        "results/{dataset}/{table}.tsv",
    log:
        "logs/{dataset}/aggregate_{table}.log",
    wildcard_constraints:
        table="ablation|seeds|nl_targets|supervision",
    conda:
        "../../envs/gclvad.yaml"
    script:
        "../scripts/aggregate_runs.py"
