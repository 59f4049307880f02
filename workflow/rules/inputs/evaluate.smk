# Input functions and params of the rules of workflow/rules/evaluate.smk, which includes this file
# (Snakemake's lint keeps functions and rules in separate files).


def get_td_enrichment(wildcards):
    """{"td_enrichment": what the run's TD cleaning removed}, or nothing for a run without
    cleaning (an input of evaluate_run: labels report on the cleaning there)."""
    settings = settings_of(wildcards)
    if settings.cleaning is None:
        return {}
    cleaned = {"cleaning": settings.cleaning.name, **wildcards}
    return {"td_enrichment": filled(rules.td_enrichment.output[0], **cleaned)}


def get_default_run_auc(wildcards):
    return filled(rules.evaluate_run.output.auc, **default_run(wildcards.dataset))


def get_default_plots(wildcards):
    return expand(list(rules.plot_run.output), **default_run(wildcards.dataset))
