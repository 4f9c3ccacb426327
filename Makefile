# rtmanager — run `make help` for the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help
GO ?= go

.PHONY: help
help: ## Show the targets and what they do
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-18s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: tools
tools: ## Install what the tests need when missing (redis-server, Podman for the docker runtime, chromium-headless-shell for the console's browser test, the pinned AsyncAPI CLI and golangci-lint)
	@scripts/ensure-redis.sh
	@scripts/ensure-chromium.sh
	@scripts/ensure-podman.sh
	@scripts/ensure-asyncapi.sh
	@scripts/ensure-golangci-lint.sh

.PHONY: generate
generate: ## Regenerate gen/runtimejobs from api/runtime-jobs-asyncapi.yaml
	@scripts/generate.sh

.PHONY: check-generated
check-generated: ## Fail when gen/ differs from what the contract produces
	@scripts/check-generated.sh

.PHONY: contract-validate
contract-validate: ## Validate the contract with the pinned official AsyncAPI CLI (warnings fail)
	@scripts/contract-validate.sh

# How much contract-fuzz runs each fuzz target (go test -fuzztime): a count
# of inputs, not a duration. Go 1.26's fuzzing coordinator can fail a timed
# run with "context deadline exceeded" as its time runs out, having found
# nothing (go.dev/issue/75804, fixed in Go 1.27); a count sets no deadline.
# 100000 inputs take 10-40 s per target here; all 13 targets under 3 minutes.
FUZZ_TIME ?= 100000x
# Packages whose Fuzz* targets contract-fuzz runs (packages without any are
# skipped): the wire (redisstream), records an operator may edit by hand
# (runtimestore), the console's URL parameters, the engine profile file.
FUZZ_PKGS ?= ./internal/redisstream/... ./internal/runtimestore/... ./internal/console/... ./internal/engines/...
# The conformance tests contract-check runs.
CONTRACT_TEST_PKGS ?= ./internal/contractdiff/... ./internal/contractschema/... ./internal/conformance/... ./cmd/contractgate/...

.PHONY: contract-check
contract-check: contract-validate ## Wire conformance: official validation (warnings fail), breaking-change gate, conformance tests, short fuzzing
	@scripts/contract-validate-warn-test.sh
	$(GO) run ./cmd/contractgate --old api/released/runtime-jobs-asyncapi.yaml --new api/runtime-jobs-asyncapi.yaml
	$(GO) test -race -count=1 $(CONTRACT_TEST_PKGS)
	@$(MAKE) --no-print-directory contract-fuzz

.PHONY: contract-fuzz
contract-fuzz: ## Run each Fuzz* target of FUZZ_PKGS on FUZZ_TIME inputs (100000x); a crash is saved under the package's testdata/fuzz
	@pkgs=$$($(GO) list -e -f '{{if .Dir}}{{.ImportPath}}{{end}}' $(FUZZ_PKGS) 2>/dev/null); \
	  if [ -z "$$pkgs" ]; then echo "contract-fuzz: no package matches $(FUZZ_PKGS)"; exit 0; fi; \
	  for pkg in $$pkgs; do \
	    list=$$($(GO) test -list '^Fuzz' "$$pkg") || { echo "$$list"; exit 1; }; \
	    names=$$(echo "$$list" | grep '^Fuzz' || true); \
	    if [ -z "$$names" ]; then echo "contract-fuzz: $$pkg has no Fuzz target, skipped"; continue; fi; \
	    for name in $$names; do \
	      echo "contract-fuzz: $$pkg $$name, -fuzztime $(FUZZ_TIME)"; \
	      $(GO) test -run='^$$' -fuzz="^$$name$$" -fuzztime=$(FUZZ_TIME) "$$pkg" || exit 1; \
	    done; \
	  done

.PHONY: docs
docs: ## Render the contract page of the console (official AsyncAPI HTML template, pinned) and the console screenshots in docs/img/
	@scripts/docs.sh

.PHONY: build
build: ## Build the binaries into bin/
	$(GO) build -o bin/ ./cmd/...

# Runtime of the demo engines: process (local processes) or docker (containers on a private Podman).
RUNTIME ?= process

.PHONY: run
run: ## Demo: private redis-server, rtmanager, three demo engines started by start jobs and stopped by stop jobs (RUNTIME=process|docker); Ctrl-C ends it
	@scripts/ensure-redis.sh
	@if [ "$(RUNTIME)" = docker ]; then RTMANAGER_REQUIRE_ENGINE=1 scripts/ensure-podman.sh; fi
	@$(GO) build -o bin/ ./cmd/rtmanager ./cmd/rtmanagerctl ./cmd/rtdemo
	@if [ "$(RUNTIME)" = docker ]; then CGO_ENABLED=0 $(GO) build -o bin/ ./internal/testengine/gameengine; fi
	@bin/rtdemo --rtmanager bin/rtmanager --runtime $(RUNTIME) --game-engine "$$( [ "$(RUNTIME)" = docker ] && echo bin/gameengine )"

.PHONY: lint
lint: ## gofmt check, go vet and the pinned golangci-lint (.golangci.yml; built into bin/ on first use)
	@bad=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$bad" ]; then echo "gofmt would change:"; echo "$$bad"; exit 1; fi
	$(GO) vet ./...
	@GO=$(GO) scripts/ensure-golangci-lint.sh
	bin/golangci-lint run ./...

.PHONY: test
test: tools lint check-generated contract-check ## Everything CI runs: tools, lint, drift check, contract-check, go test -race
	$(GO) test -race -count=1 ./...

# Flags passed to cmd/rtbench by make bench (see go run ./cmd/rtbench --help).
BENCH_FLAGS ?=

.PHONY: bench
bench: ## Throughput and latency of rtmanager vs the old design and the Redis ceiling, and on a local Redis Cluster with S = 1 and 16 (cmd/rtbench, ~2 min; last line JSON)
	@scripts/ensure-redis.sh
	$(GO) run ./cmd/rtbench $(BENCH_FLAGS)

.PHONY: bench-console
bench-console: ## Console pages against 100,000 pending jobs and 10,000 dead letters (each under 200 ms), and jobs/s of a drain with 10 busy consoles open vs none (~2 min)
	@scripts/ensure-redis.sh
	$(GO) test -run '^$$' -bench BenchmarkPages -benchtime 20x ./internal/console/
	$(GO) test -run '^$$' -bench BenchmarkDrainWithConsole -benchtime 3x ./internal/console/

# Flags passed to cmd/rtchaos by make test-resilience (see go run ./cmd/rtchaos --help).
RESILIENCE_FLAGS ?=
# Where make test-resilience builds rtmanager, rtmanagerctl and rtchaos.
RESILIENCE_BIN ?= bin/resilience

.PHONY: test-resilience
test-resilience: ## kill -9, Redis restarts, replicas, poison flood, credentials, a Redis Cluster failover: the built binaries vs private redis-servers (cmd/rtchaos, ~2 min)
	@scripts/ensure-redis.sh
	$(GO) build -o $(RESILIENCE_BIN)/ ./cmd/rtmanager ./cmd/rtmanagerctl ./cmd/rtchaos
	$(RESILIENCE_BIN)/rtchaos --bin-dir $(RESILIENCE_BIN) $(RESILIENCE_FLAGS)
