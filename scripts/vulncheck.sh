#!/usr/bin/env bash
# Dependency vulnerability check for make lint: govulncheck (pinned) against
# a vulnerability database built from the golang.org/x/vulndb module (pinned),
# which the Go module proxy serves like any module, so no other network
# access is needed. The module's data/osv holds the OSV reports; vulndb's own
# cmd/indexdb writes the index/ layout govulncheck's -db file:// reads. The
# built database is cached per vulndb version under
# ${XDG_CACHE_HOME:-~/.cache}/engram-ops; a warm run only runs govulncheck.
# Exit status: govulncheck's (0 no called vulnerability, 3 some were found).
# To take newer reports, raise VULNDB_VERSION to a newer pseudo-version of
# golang.org/x/vulndb (go list -m -versions does not list pseudo-versions;
# take one from https://proxy.golang.org/golang.org/x/vulndb/@latest).
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
GOVULNCHECK_VERSION=v1.9.0
VULNDB_VERSION=v0.0.0-20261105234957-e22db6528018
cache=${XDG_CACHE_HOME:-$HOME/.cache}/engram-ops/vulndb-$VULNDB_VERSION
if [ ! -f "$cache/index/db.json" ]; then
	echo "vulncheck: building the vulnerability database from golang.org/x/vulndb@$VULNDB_VERSION (once; cached in $cache)" >&2
	src=$($GO mod download -json "golang.org/x/vulndb@$VULNDB_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
	[ -d "$src/data/osv" ] || { echo "vulncheck: golang.org/x/vulndb@$VULNDB_VERSION has no data/osv" >&2; exit 1; }
	mkdir -p "${cache%/*}"
	tmp=$(mktemp -d "$cache.tmp-XXXXXX")
	trap 'rm -rf "$tmp"' EXIT
	$GO run "golang.org/x/vulndb/cmd/indexdb@$VULNDB_VERSION" -vulns "$src/data/osv" -out "$tmp/db"
	rm -rf "$cache"
	mv "$tmp/db" "$cache"
	rm -rf "$tmp" # exec below skips the EXIT trap
	trap - EXIT
fi
exec $GO run "golang.org/x/vuln/cmd/govulncheck@$GOVULNCHECK_VERSION" -db "file://$cache" ./...
