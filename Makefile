# vigil's build. `make help` lists the targets; each is documented by the
# `## ` comment on its line. Every target needs only Go (and bash for the
# scripts); modules are downloaded by the go command as needed.

GO        ?= go
BIN       ?= bin
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -X github.com/vigil-sec/vigil/internal/cli.Version=$(VERSION)
PKGS      ?= ./...
# bench: which benchmarks, how long each, how many runs (for benchstat).
BENCH     ?= .
BENCHTIME ?= 1s
COUNT     ?= 1
# fuzz: how long each fuzz target runs: a duration (10s) or an execution
# count (10000x; CI uses a count, see .ci/run).
FUZZTIME  ?= 10s

.DEFAULT_GOAL := help
.PHONY: help build run deps test bench bench-replay bench-inline fuzz cover clean

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-13s %s\n", $$1, $$2}' $(MAKEFILE_LIST)
	@echo
	@echo "Variables: PKGS=$(PKGS) BENCH=$(BENCH) BENCHTIME=$(BENCHTIME) COUNT=$(COUNT) FUZZTIME=$(FUZZTIME)"

build: ## build the vigil binary into ./bin/vigil
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/vigil ./cmd/vigil

run: build ## the demo: simulated days with attacks, then vigil proxy deciding live traffic
	$(BIN)/vigil demo
	@echo
	$(BIN)/vigil demo --proxy

deps: ## install what the tests and load scripts drive: nginx, Caddy, redis-server, wrk, h2load (Debian packages, if missing)
	scripts/deps.sh

test: deps ## install test dependencies, vet, then run every test with the race detector
	$(GO) vet $(PKGS)
	$(GO) test -race -count=1 $(PKGS)

bench: ## run the Go benchmarks (BENCH=regexp PKGS=./replay COUNT=5 for benchstat)
	$(GO) test -run '^$$' -bench '$(BENCH)' -benchmem -benchtime $(BENCHTIME) -count $(COUNT) $(PKGS)

bench-replay: ## end-to-end load test: `vigil replay` on 1,000,000 generated events
	bench/replay.sh

bench-inline: deps ## load test of `vigil serve`: forward-auth with wrk, gRPC ext_authz with bench/grpcload
	bench/inline.sh

fuzz: ## run every Fuzz target in the repository for FUZZTIME each
	@set -e; for pkg in $$($(GO) list $(PKGS)); do \
		list=$$($(GO) test -list '^Fuzz' $$pkg); \
		for fuzz in $$(echo "$$list" | grep '^Fuzz' || true); do \
			echo "== $$pkg $$fuzz ($(FUZZTIME))"; \
			$(GO) test -run '^$$' -fuzz "^$$fuzz\$$" -fuzztime $(FUZZTIME) $$pkg; \
		done; \
	done

cover: ## run the tests with coverage; writes bin/cover.out and bin/cover.html
	@mkdir -p $(BIN)
	$(GO) test -count=1 -covermode=atomic -coverpkg=./... -coverprofile=$(BIN)/cover.out $(PKGS)
	$(GO) tool cover -html=$(BIN)/cover.out -o $(BIN)/cover.html
	@$(GO) tool cover -func=$(BIN)/cover.out | tail -n 1

clean: ## remove ./bin
	rm -rf $(BIN)
