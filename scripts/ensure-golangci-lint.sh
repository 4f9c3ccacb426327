#!/usr/bin/env bash
# Builds the pinned golangci-lint (tools/golangci-lint/go.mod) into bin/ when it
# is missing or older than the pin. Needs only Go: the source comes from the
# module proxy, and the separate module keeps its dependencies out of go.mod.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dir="$root/tools/golangci-lint"
bin="$root/bin/golangci-lint"
if [ -x "$bin" ] && [ "$bin" -nt "$dir/go.mod" ] && [ "$bin" -nt "$dir/go.sum" ]; then
  exit 0
fi
echo "building the pinned golangci-lint into bin/ (first time takes a few minutes)" >&2
mkdir -p "$root/bin"
(cd "$dir" && ${GO:-go} build -o "$bin" github.com/golangci/golangci-lint/v2/cmd/golangci-lint)
