#!/usr/bin/env bash
# Makes sure the container engine the docker-runtime tests use is installed:
# rootful Podman from Debian's packages (internal/testengine starts it). It
# installs them when missing and we are allowed to (root, apt-get present);
# otherwise says what to install, and fails when the engine is required
# (CI=true or RTMANAGER_REQUIRE_ENGINE=1). The list must match
# internal/testengine.Packages (a test checks).
set -euo pipefail
PACKAGES="podman runc conmon netavark aardvark-dns iptables catatonit"
missing=""
for p in $PACKAGES; do
  if ! dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null | grep -q '^ii'; then
    missing="$missing $p"
  fi
done
if [ -z "$missing" ]; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "container engine packages missing:$missing: installing $PACKAGES" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # shellcheck disable=SC2086
  apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=120 $PACKAGES >/dev/null
  exit 0
fi
echo "container engine packages missing:$missing: install them with 'sudo apt-get install --no-install-recommends $PACKAGES' (Debian/Ubuntu)" >&2
# A developer machine may go without: the engine tests then skip, saying so.
# In CI (CI=true or RTMANAGER_REQUIRE_ENGINE=1) the engine is required.
if [ "${CI:-}" = true ] || [ "${RTMANAGER_REQUIRE_ENGINE:-}" = 1 ]; then
  exit 1
fi
exit 0
