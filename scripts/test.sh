#!/usr/bin/env bash
# Installs what the tests need, starts the real test services on 127.0.0.1,
# runs every test, and stops the services (by PID) whatever the outcome.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$(go env GOPATH)/bin:$PATH"

STATE=$(mktemp -d -t engram-test-XXXXXX)
PIDS=()
cleanup() {
	for pid in "${PIDS[@]:-}"; do
		[ -n "$pid" ] && kill "$pid" 2>/dev/null || true
	done
	rm -rf "$STATE"
}
trap cleanup EXIT

# Services are added here as the features that need them land; each exports
# the env var its tests read (tests skip with a clear message when unset).

make lint
go test -race -timeout 15m ./...
