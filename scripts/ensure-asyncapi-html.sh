#!/usr/bin/env bash
# Installs the pinned official AsyncAPI HTML template
# (tools/asyncapi-html/package-lock.json) into tools/asyncapi-html/node_modules
# when it is missing or older than the lock file. Puppeteer (the template's
# PDF option, unused here) is installed without downloading a browser.
set -euo pipefail
dir="$(cd "$(dirname "$0")/../tools/asyncapi-html" && pwd)"
tpl="$dir/node_modules/@asyncapi/html-template/package.json"
stamp="$dir/node_modules/.package-lock.json"
if [ -f "$tpl" ] && [ -f "$stamp" ] && [ "$stamp" -nt "$dir/package-lock.json" ]; then
  exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
  echo "npm not found: install Node.js 20+ and npm (Debian: 'sudo apt-get install nodejs npm')" >&2
  exit 1
fi
echo "installing the pinned AsyncAPI HTML template into tools/asyncapi-html (npm ci)" >&2
(cd "$dir" && PUPPETEER_SKIP_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error >/dev/null)
