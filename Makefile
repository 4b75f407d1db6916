# engram-ops — see README.md. Every target works on a fresh machine with Go.
SHELL := /bin/bash
GO ?= go
BIN := bin/engram-ops
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
REVISION ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS := -X main.version=$(VERSION) -X main.revision=$(REVISION)
# Packages whose tests run under the race detector (all of them).
PKGS := ./...
# The deployment files' checks, a module of their own (see its doc.go).
DEPLOYTEST := deploy/deploytest

.PHONY: build run test test-go bench lint fuzz docs proto clean

build:
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/engram-ops

## run: serve with embedded defaults (./engram-data, 127.0.0.1:7432)
run:
	@test -x $(BIN) || echo "building $(BIN): the first build compiles every dependency, which takes minutes on a small machine"
	@$(MAKE) --no-print-directory build
	@echo "starting $(BIN) serve: data in ./engram-data, API on http://127.0.0.1:7432 (Ctrl-C stops it)"
	./$(BIN) serve

## test: install and start what the tests need, run every test, stop the services
test:
	scripts/test.sh

## test-go: the Go tests alone (expects services already started by scripts/test.sh)
test-go:
	$(GO) vet $(PKGS)
	$(GO) test -race -timeout 15m $(PKGS)
	cd $(DEPLOYTEST) && $(GO) vet ./... && $(GO) test -race -timeout 10m ./...

## bench: the benchmarks recorded in docs/benchmarks.md
bench: build
	scripts/bench.sh

## lint: gofmt, go vet, go.mod tidy, staticcheck and govulncheck (pinned)
# govulncheck reads a database built from the golang.org/x/vulndb module
# (scripts/vulncheck.sh): the first run builds and caches it (minutes).
STATICCHECK_VERSION := v0.8.2
lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }
	$(GO) vet $(PKGS)
	@$(GO) mod tidy -diff || { echo "go.mod is not tidy: run go mod tidy"; exit 1; }
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) $(PKGS)
	cd $(DEPLOYTEST) && $(GO) vet ./... && { $(GO) mod tidy -diff || { echo "$(DEPLOYTEST)/go.mod is not tidy: run go mod tidy there"; exit 1; }; } \
		&& $(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...
	GO=$(GO) scripts/vulncheck.sh

## fuzz: run each fuzz target for FUZZTIME (default 30s)
FUZZTIME ?= 30s
fuzz:
	scripts/fuzz.sh $(FUZZTIME)

## docs: regenerate docs/cli.md from the command tree, docs/openapi.json and docs/reference/rest-api.md
## from the server's route table, and docs/reference/error-codes.md (tests fail when they are stale)
docs:
	$(GO) test ./cmd/engram-ops -run '^(TestCLIReferenceUpToDate|TestConfigurationRunbookUpToDate)$$' -count=1 -update
	$(GO) generate ./ops/api ./ops/server
	$(GO) test ./ops/server -run '^TestErrorCodeDoc$$' -count=1 -update

## proto: regenerate the gRPC Go code (proto/engram/v1) from its .proto files (needs protoc)
proto:
	GO=$(GO) scripts/protogen.sh

clean:
	rm -rf bin
