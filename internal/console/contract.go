package console

import (
	"embed"
	"io/fs"
	"net/http"
	"strings"
)

// The contract page is the official AsyncAPI HTML template's rendering of
// api/runtime-jobs-asyncapi.yaml, made by `make docs` (scripts/docs.sh) and
// committed under contract/, so the binary embeds it and builds without
// npm.

//go:embed contract
var contractFS embed.FS

func contractHandler() http.Handler {
	sub, _ := fs.Sub(contractFS, "contract")
	return http.StripPrefix("/contract/", http.FileServerFS(sub))
}

func isContract(path string) bool { return strings.HasPrefix(path, "/contract/") }
