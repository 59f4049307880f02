# Input functions and params of the rules of workflow/rules/plots.smk, which includes this file
# (Snakemake's lint keeps functions and rules in separate files).


def get_baseline_scores(wildcards):
    """Scores of the plain autoencoder (AE_AllData) for the histogram figure."""
    return filled(
        rules.score_run.output.scores, **(dict(wildcards) | {"variant": "AE_AllData"})
    )


def run_figure(name, caption):
    """A run's figure, collected by `snakemake --report`."""
    return report(
        f"{RUN}/plots/{name}.png",
        caption=f"../report/{caption}.rst",
        category="{dataset}",
        subcategory="{variant} seed {seed}",
    )
