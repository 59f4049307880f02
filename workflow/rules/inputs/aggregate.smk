# Input functions and params of the rules of workflow/rules/aggregate.smk, which includes this file
# (Snakemake's lint keeps functions and rules in separate files).


def table_runs(table):
    """(variant, seed) of every run a table gathers (paper Table 2, Fig 10, Fig 5, Fig 9)."""
    experiments, seed = config["experiments"], config["seed"]
    if table == "ablation":
        return [(variant, seed) for variant in experiments["ablation"]]
    if table == "seeds":
        return [(v, s) for v in ("GCL_B", "GCL_PT") for s in experiments["seeds"]]
    if table == "nl_targets":
        return [(f"GCL_PT~nl_target={t}", seed) for t in experiments["nl_targets"]]
    return [(f"GCL_WS~supervision={p:g}", seed) for p in experiments["supervision"]]


def get_table_inputs(wildcards):
    """auc.json of every run a table gathers, on the dataset's default extractor."""
    return [
        filled(
            rules.evaluate_run.output.auc,
            **default_run(wildcards.dataset, variant=v, seed=s),
        )
        for v, s in table_runs(wildcards.table)
    ]
