#!/usr/bin/env bash
# Makes sure a headless Chromium for the console's browser test is on PATH:
# installs Debian's chromium-headless-shell when it is missing and we are
# allowed to (root, apt-get present); otherwise says what to install and fails.
set -euo pipefail
if command -v chromium-headless-shell >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "chromium-headless-shell not found: installing Debian's chromium-headless-shell package" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends chromium-headless-shell >/dev/null
  command -v chromium-headless-shell >/dev/null 2>&1 && exit 0
fi
echo "chromium-headless-shell not found: install it with 'sudo apt-get install chromium-headless-shell' (Debian)" >&2
exit 1
