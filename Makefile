# rtmanager — run `make help` for the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help
GO ?= go

.PHONY: help
help: ## Show the targets and what they do
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-18s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: tools
tools: ## Install what the tests need when missing (redis-server, the pinned AsyncAPI CLI)
	@scripts/ensure-redis.sh
	@scripts/ensure-asyncapi.sh

.PHONY: generate
generate: ## Regenerate gen/runtimejobs from api/runtime-jobs-asyncapi.yaml
	@scripts/generate.sh

.PHONY: check-generated
check-generated: ## Fail when gen/ differs from what the contract produces
	@scripts/check-generated.sh

.PHONY: contract-validate
contract-validate: ## Validate the contract with the pinned official AsyncAPI CLI (warnings fail)
	@scripts/contract-validate.sh

.PHONY: build
build: ## Build the binaries into bin/
	$(GO) build -o bin/ ./cmd/...

.PHONY: lint
lint: ## gofmt check and go vet
	@bad=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$bad" ]; then echo "gofmt would change:"; echo "$$bad"; exit 1; fi
	$(GO) vet ./...

.PHONY: test
test: tools lint check-generated contract-validate ## Everything CI runs: tools, lint, drift check, contract validation, go test -race
	$(GO) test -race -count=1 ./...
