#!/usr/bin/env bash
# Generates gen/runtimejobs from api/runtime-jobs-asyncapi.yaml with the
# asyncapi-codegen pinned in go.mod (tools.go). With an argument, writes into
# that directory instead (used by check-generated).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:-$root/gen/runtimejobs}"
mkdir -p "$out"
cd "$root"
for part in application user types; do
  go run github.com/lerenn/asyncapi-codegen/cmd/asyncapi-codegen \
    -i api/runtime-jobs-asyncapi.yaml -p runtimejobs -g "$part" -o "$out/$part.gen.go"
done
