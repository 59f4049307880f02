#!/usr/bin/env bash
# Installs Debian packages for the tests that start real services of their own (a SLURM
# cluster, an MQTT broker, a browser): apt-get install PACKAGE..., without letting the
# packages' maintainer scripts start or enable a system service (policy-rc.d exit 101 on
# hosts with an init system; each test starts its own, on a free 127.0.0.1 port), waiting
# for another apt run (a second CI step, an engineer) that holds the lock.
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
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

$SUDO apt-get -o DPkg::Lock::Timeout=300 update -qq
$SUDO apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "$@"
