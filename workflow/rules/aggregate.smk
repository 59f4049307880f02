# Tables over several runs: paper Table 2 (ablation), Fig 10 (seeds), Fig 5 (NL targets),
# Fig 9 (weak supervision).


include: "inputs/aggregate.smk"


rule aggregate_table:
    input:
        get_table_inputs,
    output:
        "results/{dataset}/{table}.tsv",
    log:
        "logs/{dataset}/aggregate_{table}.log",
    benchmark:
        "benchmarks/rules/{dataset}/aggregate_{table}.tsv"
    wildcard_constraints:
        table="ablation|seeds|nl_targets|supervision",
    conda:
        "../../envs/gclvad.yaml"
    script:
        "../scripts/aggregate_table.py"
