#!/usr/bin/env bash
# Validates the contract with the pinned official AsyncAPI CLI and fails on
# any error or warning (information-level hints are printed, not fatal).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/ensure-asyncapi.sh"
contract="${1:-$root/api/runtime-jobs-asyncapi.yaml}"
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
export ASYNCAPI_METRICS=false SUPPRESS_NO_CONFIG_WARNING=1 NODE_ENV=development
set +e
(cd "$root/tools/asyncapi" && ./node_modules/.bin/asyncapi validate "$contract" --fail-severity=warn) >"$out" 2>&1
rc=$?
set -e
# Drop the CLI's telemetry chatter (no network here) and keep the findings.
grep -v -e 'anonymous' -e 'node-config' -e 'NODE_ENV' -e 'configuration directory' -e 'SUPPRESS_NO_CONFIG' -e 'analytics' -e 'tracking' -e '^To disable' -e '^Once disabled' -e '^$' "$out" >&2 || true
if [ $rc -ne 0 ]; then
  echo "contract-validate: $contract has errors or warnings (see above)" >&2
  exit 1
fi
echo "contract-validate: $(basename "$contract") is valid AsyncAPI with no errors or warnings"
