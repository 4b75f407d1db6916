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

# Prometheus + promtool (Debian's prometheus package) for dashboards/: rule
# checks and unit tests, and the end-to-end alert test, which starts its own
# Prometheus on 127.0.0.1 (the scrape target is only known at test time).
# Extracted from the .deb into a cache (no daemon gets installed or started);
# a system-wide install is used when present.
prometheus_tools() {
	if command -v promtool >/dev/null && command -v prometheus >/dev/null; then
		ENGRAM_TEST_PROMTOOL=$(command -v promtool)
		ENGRAM_TEST_PROMETHEUS=$(command -v prometheus)
		return
	fi
	local cache="${XDG_CACHE_HOME:-$HOME/.cache}/engram-ops/prometheus-deb"
	if [ ! -x "$cache/usr/bin/promtool" ] || [ ! -x "$cache/usr/bin/prometheus" ]; then
		local dl="$STATE/prometheus-deb"
		mkdir -p "$dl" "$cache"
		if ! (cd "$dl" && apt-get download prometheus >/dev/null 2>&1); then
			apt-get update -qq >/dev/null
			(cd "$dl" && apt-get download prometheus >/dev/null)
		fi
		dpkg-deb -x "$dl"/prometheus_*.deb "$cache"
	fi
	ENGRAM_TEST_PROMTOOL="$cache/usr/bin/promtool"
	ENGRAM_TEST_PROMETHEUS="$cache/usr/bin/prometheus"
}
prometheus_tools
export ENGRAM_TEST_PROMTOOL ENGRAM_TEST_PROMETHEUS
echo "promtool: $ENGRAM_TEST_PROMTOOL ($("$ENGRAM_TEST_PROMTOOL" --version 2>&1 | head -1))"

# S3 for backup/s3 and backup/target: versitygw (Apache-2.0) with its posix
# backend in $STATE, on a free loopback port, with a random root key per run.
# The posix backend maps a bucket to a top-level directory, so the test
# bucket is a mkdir. Built with go install the first time (about a minute).
s3_server() {
	local version=v1.8.0
	if ! command -v versitygw >/dev/null; then
		echo "installing versitygw $version"
		go install "github.com/versity/versitygw/cmd/versitygw@$version"
	fi
	local port tries=0
	while :; do
		port=$((20000 + RANDOM % 40000))
		# A refused connection means nobody listens there.
		(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || break
		tries=$((tries + 1))
		[ "$tries" -lt 50 ] || { echo "no free port for versitygw" >&2; return 1; }
	done
	ENGRAM_TEST_S3_ENDPOINT="127.0.0.1:$port"
	ENGRAM_TEST_S3_ACCESS_KEY=engram-test
	ENGRAM_TEST_S3_SECRET_KEY=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
	ENGRAM_TEST_S3_BUCKET=engram-test
	mkdir -p "$STATE/s3data/$ENGRAM_TEST_S3_BUCKET" "$STATE/s3v"
	ROOT_ACCESS_KEY_ID="$ENGRAM_TEST_S3_ACCESS_KEY" ROOT_SECRET_ACCESS_KEY="$ENGRAM_TEST_S3_SECRET_KEY" \
		versitygw --port "$ENGRAM_TEST_S3_ENDPOINT" --quiet posix --versioning-dir "$STATE/s3v" "$STATE/s3data" \
		>"$STATE/versitygw.log" 2>&1 &
	local pid=$!
	PIDS+=("$pid")
	# Any HTTP answer (403 without credentials) means it is serving; give up after 10 s.
	local deadline=$((SECONDS + 10))
	until curl -s -o /dev/null --max-time 1 "http://$ENGRAM_TEST_S3_ENDPOINT/"; do
		if ! kill -0 "$pid" 2>/dev/null || [ "$SECONDS" -ge "$deadline" ]; then
			echo "versitygw did not start on $ENGRAM_TEST_S3_ENDPOINT:" >&2
			cat "$STATE/versitygw.log" >&2
			return 1
		fi
		sleep 0.1
	done
	echo "S3: versitygw on $ENGRAM_TEST_S3_ENDPOINT (pid $pid), bucket $ENGRAM_TEST_S3_BUCKET"
}
s3_server
export ENGRAM_TEST_S3_ENDPOINT ENGRAM_TEST_S3_ACCESS_KEY ENGRAM_TEST_S3_SECRET_KEY ENGRAM_TEST_S3_BUCKET

make lint
go test -race -timeout 15m ./...
