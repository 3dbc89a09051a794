#!/usr/bin/env bash
# Install the system Chromium and its driver for the browser test of `slimrec serve`'s
# page (tests/serve/test_browser.py), when they are missing. Debian packages, as root,
# quietly; elsewhere it only says why the test will be skipped.
set -euo pipefail
if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "note: chromium/chromium-driver are missing and cannot be installed here" \
        "(needs root and apt-get): the browser test will be skipped" >&2
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1; then
    apt-get update -qq >/dev/null
    apt-get install -y -qq chromium chromium-driver >/dev/null
fi
echo "installed $(chromium --version 2>/dev/null | head -n1)" >&2
