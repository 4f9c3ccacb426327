//go:build tools

// Package tools pins the code generator so `make generate` runs the exact
// version recorded in go.mod (the module proxy here does not list versions,
// so `go run module@version` cannot be used).
package tools

import (
	_ "github.com/lerenn/asyncapi-codegen/cmd/asyncapi-codegen"
)
