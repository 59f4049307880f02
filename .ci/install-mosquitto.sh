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

bash "$(dirname "$0")/apt-install.sh" mosquitto
echo "install-mosquitto: installed ($(find_broker))"
