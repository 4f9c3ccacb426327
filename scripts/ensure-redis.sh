#!/usr/bin/env bash
# Makes sure redis-server is on PATH: installs Debian's package when it is
# missing and we are allowed to (root, apt-get present); otherwise says what
# to install and fails.
set -euo pipefail
if command -v redis-server >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "redis-server not found: installing Debian's redis-server package" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends redis-server >/dev/null
  command -v redis-server >/dev/null 2>&1 && exit 0
fi
echo "redis-server not found: install it with 'sudo apt-get install redis-server' (Debian/Ubuntu)" >&2
exit 1
