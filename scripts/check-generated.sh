#!/usr/bin/env bash
# Fails, naming the files, when gen/runtimejobs differs from what the
# contract produces.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$root/scripts/generate.sh" "$tmp"
if ! diff -r -q "$tmp" "$root/gen/runtimejobs" >"$tmp.diff" 2>&1; then
  echo "check-generated: gen/runtimejobs is out of date with api/runtime-jobs-asyncapi.yaml:" >&2
  sed -e "s#$tmp#(generated)#g" -e "s#$root/##g" -e 's/^/  /' "$tmp.diff" >&2
  rm -f "$tmp.diff"
  echo "check-generated: run 'make generate' and commit api/ and gen/ together" >&2
  exit 1
fi
rm -f "$tmp.diff"
echo "check-generated: gen/runtimejobs matches the contract"
