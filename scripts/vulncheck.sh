#!/usr/bin/env bash
# Dependency vulnerability check for make lint: govulncheck (pinned) against
# a vulnerability database built from the golang.org/x/vulndb module (pinned),
# which the Go module proxy serves like any module, so no other network
# access is needed. The module's data/osv holds the OSV reports; vulndb's own
# cmd/indexdb writes the index/ layout govulncheck's -db file:// reads. The
# built database is cached per vulndb version under
# ${XDG_CACHE_HOME:-~/.cache}/engram-ops; a warm run only runs govulncheck.
# Exit status: 0 when every vulnerability the code calls is listed in
# scripts/vulncheck-accepted.txt (an id and the reason it is accepted), 3
# when one is not (printed with its fixed version), 1 when the check could
# not run. An accepted id the scan no longer finds is reported, so the list
# shrinks when the fix lands.
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
out=$(mktemp)
trap 'rm -f "$out"' EXIT
rc=0
$GO run "golang.org/x/vuln/cmd/govulncheck@$GOVULNCHECK_VERSION" -db "file://$cache" -format json ./... >"$out" || rc=$?
[ "$rc" -eq 0 ] || { echo "vulncheck: govulncheck failed (exit $rc)" >&2; exit 1; }
python3 - "$out" scripts/vulncheck-accepted.txt <<'PY'
import json, sys
stream, accepted_path = sys.argv[1], sys.argv[2]
accepted = {}
for line in open(accepted_path):
    line = line.split("#", 1)[0].strip()
    if line:
        vid, _, why = line.partition(" ")
        accepted[vid] = why.strip()
text, dec, i, osv, called = open(stream).read(), json.JSONDecoder(), 0, {}, {}
while i < len(text):
    while i < len(text) and text[i].isspace():
        i += 1
    if i >= len(text):
        break
    msg, i = dec.raw_decode(text, i)
    if "osv" in msg:
        osv[msg["osv"]["id"]] = msg["osv"].get("summary", "")
    f = msg.get("finding")
    if f and f.get("trace") and f["trace"][0].get("function"):  # called, not only imported
        called.setdefault(f["osv"], (f["trace"][0].get("module", "?"), f.get("fixed_version", "none")))
bad = sorted(v for v in called if v not in accepted)
for v in sorted(called):
    mod, fixed = called[v]
    state = "ACCEPTED (%s)" % accepted[v] if v in accepted else "FAIL"
    print("vulncheck: %s %s in %s, fixed in %s: %s" % (state, v, mod, fixed, osv.get(v, "")))
for v in sorted(set(accepted) - set(called)):
    print("vulncheck: %s is accepted in %s but no longer found: remove it" % (v, accepted_path))
print("vulncheck: %d called vulnerabilities, %d accepted, %d not" % (len(called), len(called) - len(bad), len(bad)))
sys.exit(3 if bad else 0)
PY
