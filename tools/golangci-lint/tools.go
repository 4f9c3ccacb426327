//go:build tools

// Package tools pins golangci-lint in a module of its own, so its many
// dependencies never enter rtmanager's go.mod (the module proxy here does not
// list versions, so `go run module@version` cannot be used).
package tools

import (
	_ "github.com/golangci/golangci-lint/v2/cmd/golangci-lint"
)
