#!/usr/bin/env bash
# make docs: renders the contract with the official AsyncAPI HTML template
# (pinned CLI and template, no network at run time) into
# internal/console/contract/, which the console embeds, and takes the
# screenshots of docs/img/ with the console's browser test.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/ensure-asyncapi.sh"
"$root/scripts/ensure-asyncapi-html.sh"
"$root/scripts/ensure-redis.sh"
"$root/scripts/ensure-chromium.sh"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
# The CLI's usage analytics: off, through a config file of our own (the
# user's ~/.asyncapi-analytics is neither read nor written).
echo '{"analyticsEnabled":"false","infoMessageShown":"true","userID":"rtmanager-docs"}' >"$tmp/analytics.json"
export ASYNCAPI_METRICS_CONFIG_PATH="$tmp/analytics.json" ASYNCAPI_METRICS=false SUPPRESS_NO_CONFIG_WARNING=1
out="$tmp/contract"
(cd "$root/tools/asyncapi" && ./node_modules/.bin/asyncapi generate fromTemplate \
  "$root/api/runtime-jobs-asyncapi.yaml" "$root/tools/asyncapi-html/node_modules/@asyncapi/html-template" \
  -o "$out" --force-write -p singleFile=true) >"$tmp/log" 2>&1 || { cat "$tmp/log" >&2; exit 1; }
test -s "$out/index.html" || { cat "$tmp/log" >&2; echo "docs: the template wrote no index.html" >&2; exit 1; }
dest="$root/internal/console/contract"
rm -rf "$dest"
mkdir -p "$dest"
cp "$out/index.html" "$dest/index.html"
echo "docs: rendered the contract into internal/console/contract/index.html"

mkdir -p "$root/docs/img"
(cd "$root" && RTMANAGER_SCREENSHOTS="$root/docs/img" go test -count=1 -run '^TestBrowser' ./internal/console/)
echo "docs: screenshots in docs/img/"
