#!/usr/bin/env bash
# Installs what the tests need, starts the real test services on 127.0.0.1,
# runs every test, and stops the services (by PID) whatever the outcome.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$(go env GOPATH)/bin:$PATH"

. scripts/lib.sh

# curl: the readiness checks below, and the README tour test, which runs the
# README's curl lines verbatim.
command -v curl >/dev/null || { apt-get update -qq >/dev/null && apt-get install -y -qq curl >/dev/null; }
# tmux: the status board's end-to-end test (e2e/tui_test.go) drives it.
command -v tmux >/dev/null || { apt-get update -qq >/dev/null && apt-get install -y -qq tmux >/dev/null; }
# protoc: the gRPC code's regeneration test (TestGeneratedCodeUpToDate).
command -v protoc >/dev/null || { apt-get update -qq >/dev/null && apt-get install -y -qq protobuf-compiler >/dev/null; }

# The REST examples' toolchains and libraries (examples/examples_test.go runs
# each example against a live server): Debian's packages, installed when
# missing. TypeScript comes from npm (examples/rest/typescript's lock file).
examples_deps() {
	local pkgs=()
	command -v python3 >/dev/null || pkgs+=(python3)
	command -v node >/dev/null || pkgs+=(nodejs)
	command -v npm >/dev/null || pkgs+=(npm)
	{ command -v java >/dev/null && command -v javac >/dev/null; } || pkgs+=(openjdk-17-jdk-headless)
	[ -f /usr/share/java/jackson-databind.jar ] || pkgs+=(libjackson2-databind-java)
	command -v cargo >/dev/null || pkgs+=(cargo)
	compgen -G '/usr/share/cargo/registry/ureq-2.*' >/dev/null || pkgs+=(librust-ureq-dev)
	compgen -G '/usr/share/cargo/registry/serde_json-1.*' >/dev/null || pkgs+=(librust-serde-json-dev)
	[ -f /usr/lib/python3/dist-packages/grpc/__init__.py ] || pkgs+=(python3-grpcio)
	[ -f /usr/lib/python3/dist-packages/grpc_tools/protoc.py ] || pkgs+=(python3-grpc-tools)
	[ -x /usr/bin/grpc_java_plugin ] || pkgs+=(protobuf-compiler-grpc-java-plugin)
	[ -f /usr/share/java/grpc-netty.jar ] || pkgs+=(libgrpc-java)
	[ -f /usr/share/java/protobuf.jar ] || pkgs+=(libprotobuf-java)
	[ -f /usr/share/java/netty-codec-http2.jar ] || pkgs+=(libnetty-java)
	[ -f /usr/share/java/guava.jar ] || pkgs+=(libguava-java)
	[ -f /usr/share/java/perfmark-api.jar ] || pkgs+=(libperfmark-java)
	[ -f /usr/share/java/geronimo-annotation-1.3-spec.jar ] || pkgs+=(libgeronimo-annotation-1.3-spec-java)
	[ "${#pkgs[@]}" -gt 0 ] || return 0
	echo "installing ${pkgs[*]}"
	apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null ||
		{ apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null; }
}
examples_deps

# systemd-analyze (Debian's systemd package) verifies deploy/systemd's unit;
# podman with runc builds and runs the Dockerfile's image (crun refuses this
# machine's hybrid cgroups). deploy/deploytest skips those checks only when
# the tools are absent.
command -v systemd-analyze >/dev/null || { apt-get update -qq >/dev/null && apt-get install -y -qq systemd >/dev/null; }
{ command -v podman >/dev/null && command -v runc >/dev/null; } || { apt-get update -qq >/dev/null && apt-get install -y -qq podman runc >/dev/null; }

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
	# Archive fencing needs its conditional PUTs (If-None-Match, If-Match),
	# which $version honours: an install of another version is replaced.
	local have=
	if command -v versitygw >/dev/null; then
		have=$(go version -m "$(command -v versitygw)" 2>/dev/null | awk '$1 == "mod" { print $3 }')
	fi
	if [ "$have" != "$version" ]; then
		echo "installing versitygw $version (found: ${have:-none})"
		go install "github.com/versity/versitygw/cmd/versitygw@$version"
	fi
	start_versitygw engram-test
}
s3_server

# PostgreSQL for migrate/postgres: Debian's package, a fresh cluster in
# $STATE on a free loopback port (scripts/lib.sh start_postgres).
start_postgres
# Redis for migrate/redis and the Redis migration tests.
start_redis
# HAProxy for the router tests (ops/placement).
use_haproxy

go test -race -timeout 25m ./...

# Packages with a file built only under the race detector take another path
# under it (core/vector's AVX2 kernels are off, core/embed skips its
# allocation tests): run them once more without it.
norace=$(grep -rl --include='*.go' '^//go:build race$' . | xargs -r -n1 dirname | sort -u)
if [ -n "$norace" ]; then
	echo "without the race detector: $norace"
	go test -count=1 -timeout 10m $norace
fi

# The deployment files' checks: a module of their own (Helm, Kubernetes and
# compose-go stay out of the binary's module graph).
(cd deploy/deploytest && go test -race -timeout 10m ./...)
