#!/usr/bin/env bash
# Installs Debian's Mosquitto MQTT broker for tests/test_sinks.py, which starts its own
# broker (own config file, a free 127.0.0.1 port) and stops it by its process id.
# Idempotent: does nothing when the mosquitto binary is already there. Never starts or
# enables the packaged service.
set -euo pipefail

find_broker() {
    command -v mosquitto 2>/dev/null || { [ -x /usr/sbin/mosquitto ] && echo /usr/sbin/mosquitto; }
}
if broker=$(find_broker); then
    echo "install-mosquitto: already installed ($broker)"
    exit 0
fi
echo "install-mosquitto: installing mosquitto"

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
# policy-rc.d exit 101 keeps the package's maintainer scripts from starting the system
# broker on port 1883 on hosts with an init system; the test starts its own.
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

# another apt run (a second CI step, an engineer) may hold the lock for a while: wait for it
$SUDO apt-get -o DPkg::Lock::Timeout=300 update -qq
$SUDO apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends mosquitto
echo "install-mosquitto: installed ($(find_broker))"
