# gclvad: the workflow is workflow/Snakefile (the Snakemake catalog's layout); this file lets
# `snakemake` run from the repository root without --snakefile.


include: "workflow/Snakefile"
