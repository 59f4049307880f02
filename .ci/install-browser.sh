#!/usr/bin/env bash
# The web pages' tests (tests/test_web.py) drive Debian's chromium through its chromedriver.
# Idempotent: quick when both are installed.
set -euo pipefail
if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
    exit 0
fi
bash "$(dirname "$0")/apt-install.sh" chromium chromium-driver
