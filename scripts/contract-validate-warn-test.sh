#!/usr/bin/env bash
# Proves that scripts/contract-validate.sh fails on a finding the pinned
# AsyncAPI CLI reports as a *warning* (not an error): a tab after the colon of
# info.title, which the YAML parser flags with "Using tabs can lead to
# unpredictable results". If a CLI upgrade stops reporting it as exactly one
# warning, this test fails and a new warning-only edit must be found.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
variant="$tmp/runtime-jobs-asyncapi.yaml"
sed '0,/^  title: /s//  title:\t/' "$root/api/runtime-jobs-asyncapi.yaml" >"$variant"
if ! grep -qP '^  title:\t' "$variant"; then
  echo "contract-validate-warn-test: could not make the tab variant (no '  title: ' line in the contract)" >&2
  exit 1
fi
if "$root/scripts/contract-validate.sh" "$variant" >"$tmp/out" 2>&1; then
  cat "$tmp/out" >&2
  echo "contract-validate-warn-test: contract-validate.sh passed a contract with a warning" >&2
  exit 1
fi
if ! grep -q 'Using tabs can lead to unpredictable results' "$tmp/out" ||
   ! grep -q '(0 errors, 1 warning,' "$tmp/out"; then
  cat "$tmp/out" >&2
  echo "contract-validate-warn-test: expected exactly one warning and no error from the CLI" >&2
  exit 1
fi
echo "contract-validate-warn-test: contract-validate.sh fails on a warning-only contract"
