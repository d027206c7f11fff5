#!/usr/bin/env bash
# Installs the browser the web tests drive: Debian's Chromium package (never a browser build
# downloaded by Playwright). Idempotent: does nothing when /usr/bin/chromium is there.
# Needs root (or sudo) for apt-get; called by `make browser` and by .ci/run before the tests.
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
    echo "setup-browser: /usr/bin/chromium is installed ($(/usr/bin/chromium --version 2>/dev/null || echo '?'))"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "setup-browser: not root and no sudo: install the 'chromium' package yourself" >&2
        exit 1
    fi
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
echo "setup-browser: installed $(/usr/bin/chromium --version 2>/dev/null || echo chromium)"
