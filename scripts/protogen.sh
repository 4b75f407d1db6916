#!/usr/bin/env bash
# protogen.sh [OUT]: generate the Go code of proto/engram/v1/*.proto into
# OUT (default: proto/, next to the .proto files). Needs protoc (Debian's
# protobuf-compiler); the Go plugins run through go run at pinned versions.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-proto}
GO=${GO:-go}
GRPC_GEN_VERSION=v1.6.2
command -v protoc >/dev/null || { echo "protogen.sh: protoc not found: apt-get install protobuf-compiler" >&2; exit 1; }
plugins=$(mktemp -d)
trap 'rm -rf "$plugins"' EXIT
# protoc-gen-go at go.mod's google.golang.org/protobuf version.
printf '#!/bin/sh\nexec %s run google.golang.org/protobuf/cmd/protoc-gen-go "$@"\n' "$GO" >"$plugins/protoc-gen-go"
printf '#!/bin/sh\nexec %s run google.golang.org/grpc/cmd/protoc-gen-go-grpc@%s "$@"\n' "$GO" "$GRPC_GEN_VERSION" >"$plugins/protoc-gen-go-grpc"
chmod +x "$plugins"/*
mkdir -p "$out"
protoc --proto_path=proto \
	--plugin=protoc-gen-go="$plugins/protoc-gen-go" --go_out="$out" --go_opt=paths=source_relative \
	--plugin=protoc-gen-go-grpc="$plugins/protoc-gen-go-grpc" --go-grpc_out="$out" --go-grpc_opt=paths=source_relative,require_unimplemented_servers=false \
	proto/engram/v1/memory.proto proto/engram/v1/service.proto
# The service implements every method itself (ops/grpcserver): the
# generator's "method X not implemented" stubs go.
"$GO" run ./proto/internal/stripstubs "$out/engram/v1/service_grpc.pb.go"
