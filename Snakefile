# gclvad: unsupervised video anomaly detection with Generative Cooperative Learning.
# Stages live in workflow/rules/, one file each (their input functions in workflow/rules/inputs/);
# config/README.md explains every key.


configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/lock.smk"
include: "workflow/rules/decode.smk"
include: "workflow/rules/extract.smk"
include: "workflow/rules/published.smk"
include: "workflow/rules/clean.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/aggregate.smk"
include: "workflow/rules/plots.smk"
include: "workflow/rules/score.smk"


rule all:
    input:
        get_final_output(),
