#!/usr/bin/env bash
# Reproduces the figures published in docs/benchmarks.md. Sections are
# appended by the features that publish figures; `scripts/bench.sh SECTION`
# runs one section, no argument runs them all. Expects bin/engram-ops
# (`make bench` builds it first).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-bin/engram-ops}
SECTION=${1:-}

# --- loadtest: the ## Load testing section of docs/benchmarks.md ---------
# Each built-in scenario against a fresh embedded server, writing the
# baseline results the compare gate uses, then the generator's ceiling
# (calibrate) in the same session. Exit 3 from a run means its
# [validation] limits were not met on this machine; the result is still
# written and published.
if [ -z "${SECTION:-}" ] || [ "$SECTION" = loadtest ]; then
	mkdir -p loadtest/baselines
	for s in write_heavy read_heavy mixed_balanced burst_traffic embeddings_search multi_tenant consolidation; do
		echo "== loadtest $s"
		"$BIN" loadtest run "$s" --quiet --out "loadtest/baselines/$s.json" || [ $? -eq 3 ]
	done
	echo "== loadtest calibrate"
	"$BIN" loadtest calibrate --rounds 3 --phase 3s
fi

# --- engine: the ## Engine and server section of docs/benchmarks.md -------
# The real binary over loopback: durable remembers from 64 clients and
# recall over 100,000 memories of dimension 768 at a fixed 1,000/s, each
# next to the rate of the trivial /health/alive handler measured in the
# same run; ANN recall@10 against an exact scan; restart time. Then the
# in-process engine and index micro-benchmarks.
if [ -z "${SECTION:-}" ] || [ "$SECTION" = engine ]; then
	echo "== engine over HTTP"
	go test -run '^$' -bench 'HTTPRemember|HTTPRecall100k' -benchtime 1x -timeout 60m ./e2e/
	echo "== engine in-process"
	go test -run '^$' -bench . -benchtime 3s ./core/ ./core/embed/
	go test -run '^$' -bench 'Dot|Search' -benchtime 1x -timeout 30m ./core/vector/
fi
