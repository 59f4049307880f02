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

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
# policy-rc.d exit 101 stops the packages' maintainer scripts from starting
# munge/slurm services on hosts that have an init system; the test starts its own.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
    $SUDO chmod +x "$policy"
    created_policy=1
fi
cleanup() {
    if [ "$created_policy" -eq 1 ]; then
        $SUDO rm -f "$policy"
    fi
}
trap cleanup EXIT

$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}"
echo "install-slurm: installed ($(slurmctld -V))"
