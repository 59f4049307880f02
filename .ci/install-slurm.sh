#!/usr/bin/env bash
# Installs the Debian packages that tests/test_slurm.py needs to start its own
# single-node SLURM cluster (slurmctld + slurmd + munge + client commands).
# Idempotent: does nothing when every binary is already on PATH.
# The test configures and starts the daemons itself, inside a temp dir; this
# script only installs them and never starts or enables a service.
set -euo pipefail

PACKAGES=(slurmctld slurmd slurm-client munge)
BINARIES=(slurmctld slurmd sbatch squeue sinfo scontrol munged)

missing=()
for binary in "${BINARIES[@]}"; do
    command -v "$binary" >/dev/null 2>&1 || missing+=("$binary")
done
if [ ${#missing[@]} -eq 0 ]; then
    echo "install-slurm: already installed ($(slurmctld -V))"
    exit 0
fi
echo "install-slurm: missing ${missing[*]}; installing ${PACKAGES[*]}"

bash "$(dirname "$0")/apt-install.sh" "${PACKAGES[@]}"
echo "install-slurm: installed ($(slurmctld -V))"
