#!/usr/bin/env bash
# Installs the pinned AsyncAPI CLI (tools/asyncapi/package-lock.json) into
# tools/asyncapi/node_modules when it is missing or older than the lock file.
set -euo pipefail
dir="$(cd "$(dirname "$0")/../tools/asyncapi" && pwd)"
bin="$dir/node_modules/.bin/asyncapi"
stamp="$dir/node_modules/.package-lock.json"
if [ -x "$bin" ] && [ -f "$stamp" ] && [ "$stamp" -nt "$dir/package-lock.json" ]; then
  exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
  echo "npm not found: install Node.js 20+ and npm (Debian: 'sudo apt-get install nodejs npm')" >&2
  exit 1
fi
echo "installing the pinned AsyncAPI CLI into tools/asyncapi (npm ci)" >&2
(cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
