#!/usr/bin/env bash
# Reproduces the figures published in docs/benchmarks.md. Sections are
# appended by the features that publish figures; `scripts/bench.sh SECTION`
# runs one section, no argument runs them all. Expects bin/engram-ops
# (`make bench` builds it first).
set -euo pipefail
cd "$(dirname "$0")/.."
# The servers started here are benchmarked over REST: no gRPC listener, so
# that two runs on one machine do not contend for port 50051.
export ENGRAM_GRPC_LISTEN=${ENGRAM_GRPC_LISTEN:-off}
BIN=${BIN:-bin/engram-ops}
SECTION=${1:-}

. scripts/lib.sh

# --- loadtest: the ## Load testing section of docs/benchmarks.md ---------
# Each built-in scenario against a fresh embedded server, writing the
# baseline results the compare gate uses, then the generator's ceiling
# (calibrate, and its HTTP client against the alternatives in
# BenchmarkGeneratorCeiling) in the same session. Exit 3 from a run means its
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
	echo "== load generator ceiling by HTTP client"
	go test -run '^$' -bench GeneratorCeiling -benchtime 6x -v ./cmd/engram-ops
fi

# --- engine: the ## Engine and server section of docs/benchmarks.md -------
# The real binary over loopback: durable remembers from 16 to 64 clients and
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

# --- hnswlib: the index beside its reference --------------------------------
# BenchmarkVersusHNSWLib: this index and Debian's python3-hnswlib on the same
# 100,000 × 768 clustered vectors with the same parameters, in one run: CPU
# per insert (two writers building, one writer into the built index), CPU
# per search at ef 96 and recall@10 (docs/benchmarks.md, "Index beside
# hnswlib"). Installs python3-hnswlib and python3-numpy when missing.
if [ -z "${SECTION:-}" ] || [ "$SECTION" = hnswlib ]; then
	if ! /usr/bin/python3 -c 'import hnswlib, numpy' 2>/dev/null; then
		apt-get install -y -qq --no-install-recommends python3-hnswlib python3-numpy >/dev/null ||
			{ apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends python3-hnswlib python3-numpy >/dev/null; }
	fi
	echo "== index beside hnswlib"
	go test -run '^$' -bench VersusHNSWLib -benchtime 1x -timeout 30m ./core/vector/
fi

# --- mixed: sustained mixed load ----------------------------------------------
# BenchmarkMixedSustained: mixed_balanced from the load tester in its own
# process at increasing rates (ENGRAM_BENCH_MIXED_RATES, default
# 600,800,1000,1500,2000), each on a fresh server, with the highest rate
# that holds p99 < 50 ms with the index backlog bounded, next to the trivial
# handler's ceiling and the sum-of-the-parts bound measured in the same run.
# BenchmarkWriteBurstThenRecall: recall p99 during and after a 10 s burst of
# remembers at the most the server accepts (docs/benchmarks.md, "Sustained
# mixed load").
if [ -z "${SECTION:-}" ] || [ "$SECTION" = mixed ]; then
	echo "== sustained mixed load"
	go test -run '^$' -bench 'MixedSustained|WriteBurstThenRecall' -benchtime 1x -timeout 60m ./e2e/
fi

# --- backup: the ## Backup and restore section of docs/benchmarks.md -------
# Go benchmarks in backup/ (restore + replay of 100,000 memories, incremental
# snapshot after changing 5%, snapshot upload vs plain minio-go) and the RPO
# measurement under 1,000 writes/s in cmd/engram-ops. The S3 figures need an
# S3 server: ENGRAM_TEST_S3_* as scripts/test.sh exports them, or else a
# versitygw started here on a free loopback port (stopped by PID at exit).
if [ -z "${SECTION:-}" ] || [ "$SECTION" = backup ]; then
	if [ -z "${ENGRAM_TEST_S3_ENDPOINT:-}" ] && command -v versitygw >/dev/null; then
		start_versitygw engram-bench
	fi
	[ -n "${ENGRAM_TEST_S3_ENDPOINT:-}" ] || echo "no S3 server (install versitygw or set ENGRAM_TEST_S3_*): the S3 figures are skipped"
	echo "== backup: snapshot upload vs plain minio-go (S3)"
	# 100,000 memories (22 MB of engine files): with fewer, per-object
	# latency rather than throughput decides the ratio.
	ENGRAM_BENCH_UPLOAD_MEMORIES=${ENGRAM_BENCH_UPLOAD_MEMORIES:-100000} \
		go test ./backup/ -run '^$' -bench BenchmarkSnapshotUploadS3 -benchtime=3x -timeout 30m
	echo "== backup: RPO under 1,000 writes/s (file:// and S3)"
	ENGRAM_BENCH_RPO=1 go test ./cmd/engram-ops/ -run TestBackupRPOUnderLoad -v -count=1 -timeout 10m | grep -E 'RPO |WARNING|^(ok|FAIL|---)'
	echo "== backup: incremental snapshot after changing 5%"
	go test ./backup/ -run '^$' -bench BenchmarkIncrementalSnapshot -benchtime=1x -timeout 30m
	echo "== backup: level-2 verify of an unchanged archive, without and with the verify cache"
	go test ./backup/ -run '^$' -bench BenchmarkVerifyCache -benchtime=1x -timeout 30m
	echo "== backup: restore + replay of 100,000 memories (768 dimensions)"
	go test ./backup/ -run '^$' -bench BenchmarkRestoreReplay -benchtime=1x -timeout 60m
fi

# --- migrate: the ## Migration section of docs/benchmarks.md ----------------
# Each source generated, read raw (PostgreSQL: COPY (SELECT *) TO STDOUT;
# Redis: pipelined SCAN + TYPE + GET/HGETALL/...; APOC: line read + JSON
# decode), then migrated into a fresh data directory as `migrate --data-dir`
# does (a bulk load): "load" is records durable per second, "load+index"
# adds the ANN index build the command ends with; each with its ratio to the
# raw read of the same run, the CPU a record and the peak RSS (PostgreSQL
# also reads the source alone: "read"). The APOC export
# always, at 100,000 and 1,000,000 records; PostgreSQL and Redis on the
# servers in ENGRAM_TEST_POSTGRES_DSN / ENGRAM_TEST_REDIS_ADDR, started from
# Debian's packages when unset and installed.
if [ -z "${SECTION:-}" ] || [ "$SECTION" = migrate ]; then
	for nodes in 50000 500000; do
		echo "== migrate: APOC export, $((nodes * 2)) records"
		ENGRAM_BENCH_APOC_NODES=$nodes go test ./migrate/neo4j -run '^$' -bench BenchmarkNeo4jExportMigrate -benchtime 1x -timeout 60m
	done
	if [ -z "${ENGRAM_TEST_POSTGRES_DSN:-}" ] && [ -x /usr/lib/postgresql/15/bin/initdb ]; then
		start_postgres
	fi
	if [ -n "${ENGRAM_TEST_POSTGRES_DSN:-}" ]; then
		echo "== migrate: PostgreSQL, ${ENGRAM_BENCH_PG_ROWS:-100000} rows"
		go test ./migrate/postgres -run '^$' -bench BenchmarkPostgresMigrate -benchtime 1x -timeout 60m
	else
		echo "no PostgreSQL (install postgresql or set ENGRAM_TEST_POSTGRES_DSN): skipped"
	fi
	if [ -z "${ENGRAM_TEST_REDIS_ADDR:-}" ] && command -v redis-server >/dev/null; then
		start_redis
	fi
	if [ -n "${ENGRAM_TEST_REDIS_ADDR:-}" ]; then
		echo "== migrate: Redis, 100,000 keys"
		go test ./migrate/redis -run '^$' -bench BenchmarkRedisMigrate -benchtime 1x -timeout 60m
	else
		echo "no Redis (install redis-server or set ENGRAM_TEST_REDIS_ADDR): skipped"
	fi
fi

# --- cluster: followers, promotion and the router -------------------------
# The real binary, versitygw and Debian's HAProxy (docs/benchmarks.md,
# "Followers, promotion and the router"):
# 1. a primary shipping to S3 every 500 ms and a follower polling it every
#    250 ms; the load tester writes 1,000 remembers/s to the primary while
#    the follower's engram_replica_lag_seconds is sampled every 100 ms, and
#    marker memories written on the primary are timed until a get of each
#    succeeds on the follower;
# 2. promotion: kill -9 of the primary, then stop the follower, promote,
#    serve it with --backup-to, and time to its first accepted write; the
#    old primary restarted on its data directory must refuse writes;
# 3. a fresh shard (a primary and two followers holding the same 10,000
#    memories, index settled) behind the rendered router: recall-only
#    throughput at an offered rate above what two cores serve, with the
#    stale-read header through the router, then direct to the primary
#    alone, with the cores each process used;
# 4. the same recall at a low rate direct and through the router to the
#    primary alone (no stale-read header), alternated.
# ENGRAM_BENCH_CLUSTER_SECONDS (default 30) sets the duration of 1.
if [ -z "${SECTION:-}" ] || [ "$SECTION" = cluster ]; then
	if [ -z "${ENGRAM_TEST_S3_ENDPOINT:-}" ]; then
		command -v versitygw >/dev/null || { echo "cluster: needs versitygw or ENGRAM_TEST_S3_*" >&2; exit 1; }
		start_versitygw engram-bench
	fi
	use_haproxy
	export ENGRAM_S3_ENDPOINT=$ENGRAM_TEST_S3_ENDPOINT ENGRAM_S3_ACCESS_KEY_ID=$ENGRAM_TEST_S3_ACCESS_KEY \
		ENGRAM_S3_SECRET_ACCESS_KEY=$ENGRAM_TEST_S3_SECRET_KEY ENGRAM_S3_INSECURE=1 ENGRAM_S3_PATH_STYLE=1 \
		ENGRAM_S3_REGION=${ENGRAM_S3_REGION:-us-east-1}
	echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
	# start_node NAME ARGS...: serve on a free port with data directory
	# $STATE/NAME; sets port and pid.
	start_node() {
		local name=$1
		shift
		port=$(free_port)
		mkdir -p "$STATE/$name"
		"$BIN" serve --listen "127.0.0.1:$port" --data-dir "$STATE/$name" --no-access-log "$@" >>"$STATE/$name.log" 2>&1 &
		pid=$!
		PIDS+=("$pid")
	}
	now() { date +%s.%N; }
	# pcts FILE: p50, p99 and max of the numbers in FILE, one a line.
	pcts() {
		sort -g "$1" | awk '{v[NR] = $1} END {
			if (NR == 0) { print "no samples"; exit }
			i50 = int(NR * 0.50 + 0.999999); i99 = int(NR * 0.99 + 0.999999)
			printf "%d samples, p50 %.3f s, p99 %.3f s, max %.3f s\n", NR, v[i50], v[i99], v[NR] }'
	}
	remember() { # URL ID: the HTTP status of a remember of ID
		curl -s -o /dev/null -w '%{http_code}' --max-time 2 -H 'Content-Type: application/json' \
			-d "{\"id\":\"$2\",\"content\":\"marker $2\"}" "$1/api/v1/memories/remember" || true
	}
	ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
	HZ=$(getconf CLK_TCK)

	echo "== cluster: follower lag under 1,000 writes/s over S3 (backup.interval 500ms, replica.poll_interval 250ms)"
	TARGET="s3://$ENGRAM_TEST_S3_BUCKET/cluster"
	start_node primary --backup-to "$TARGET" --backup-interval 500ms
	pport=$port ppid=$pid
	wait_http "http://127.0.0.1:$pport/health/ready" 30 "$ppid" "$STATE/primary.log" -f
	# The follower seeds from the primary's first snapshot.
	for _ in $(seq 300); do
		curl -sf "http://127.0.0.1:$pport/api/v1/admin/backup" | grep -q '"last_snapshot' && break
		sleep 0.1
	done
	start_node follower --follow "$TARGET" --primary-url "http://127.0.0.1:$pport" --set replica.poll_interval=250ms
	fport=$port fpid=$pid
	wait_http "http://127.0.0.1:$fport/health/ready" 60 "$fpid" "$STATE/follower.log" -f
	secs=${ENGRAM_BENCH_CLUSTER_SECONDS:-30}
	# One curl paces the scrapes (10/s) over one connection.
	curl -s --rate 10/s "http://127.0.0.1:$fport/metrics?sample=[1-$(((secs + 5) * 10))]" |
		awk '/^engram_replica_lag_seconds/ {print $NF}' >"$STATE/lag" &
	sampler=$!
	(
		sleep 5
		for i in 1 2 3 4 5; do
			t0=$(now)
			[ "$(remember "http://127.0.0.1:$pport" "marker-$i")" = 201 ] || { echo "marker-$i: not written" >&2; continue; }
			ack=$(now)
			until curl -sf -o /dev/null --max-time 1 "http://127.0.0.1:$fport/api/v1/memories/marker-$i"; do
				sleep 0.02
			done
			echo "$(now) $t0 $ack" | awk '{printf "%.3f (%.3f after the ack)\n", $1 - $2, $1 - $3}' >>"$STATE/visible"
			sleep 3
		done
	) &
	markers=$!
	nice "$BIN" loadtest run e2e/testdata/remember_open_loop.toml --rate 1000 --duration "${secs}s" \
		--target "http://127.0.0.1:$pport" --quiet --out "$STATE/w.json" >/dev/null || [ $? -eq 3 ]
	wait "$markers" "$sampler" || true
	echo "writes: $("$BIN" loadtest report "$STATE/w.json" | grep -E '^store +corrected' | awk '{print "achieved "$4"/s, p99 "$9" ms"}')"
	echo "follower lag (engram_replica_lag_seconds every 100 ms): $(pcts "$STATE/lag")"
	echo "marker visible on the follower, seconds from the send: $(paste -sd, "$STATE/visible" 2>/dev/null)"
	echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"

	echo "== cluster: promotion"
	until [ "$(curl -sf "http://127.0.0.1:$fport/metrics" | awk '/^engram_replica_lag_seconds/ {print $NF}')" = 0 ]; do sleep 0.1; done
	t0=$(now)
	kill -9 "$ppid"
	wait "$ppid" 2>/dev/null || true
	kill "$fpid" && wait "$fpid" 2>/dev/null || true
	t1=$(now)
	"$BIN" promote --data-dir "$STATE/follower" --target "$TARGET" --yes >"$STATE/promote.log" 2>&1 ||
		{ cat "$STATE/promote.log" >&2; exit 1; }
	t2=$(now)
	start_node follower --backup-to "$TARGET" --backup-interval 500ms
	nport=$port npid=$pid
	until [ "$(remember "http://127.0.0.1:$nport" after-promotion)" = 201 ]; do
		kill -0 "$npid" || { cat "$STATE/follower.log" >&2; exit 1; }
		sleep 0.02
	done
	t3=$(now)
	echo "$t0 $t1 $t2 $t3" | awk '{printf "kill -9 to first accepted write: %.2f s (stop follower %.2f, promote %.2f, serve + first write %.2f)\n", $4 - $1, $2 - $1, $3 - $2, $4 - $3}'
	grep -v '^$' "$STATE/promote.log" | sed 's/^/  promote: /'
	start_node primary --backup-to "$TARGET" --backup-interval 500ms
	opid=$pid
	wait_http "http://127.0.0.1:$port/health/alive" 30 "$opid" "$STATE/primary.log" -f
	# Writes it acknowledges before it refuses them are lost: nobody
	# ships or applies them.
	t0=$(now) accepted=0
	for _ in $(seq 100); do
		code=$(curl -s -o "$STATE/old.json" -w '%{http_code}' --max-time 2 -H 'Content-Type: application/json' \
			-d "{\"id\":\"after-fence-$accepted\",\"content\":\"x\"}" "http://127.0.0.1:$port/api/v1/memories/remember" || true)
		[ "$code" = 201 ] || break
		accepted=$((accepted + 1))
		sleep 0.1
	done
	echo "old primary restarted with --backup-to: $code $(grep -o '"code":"[A-Z_]*"' "$STATE/old.json" | head -1) after $accepted accepted writes, $(echo "$(now) $t0" | awk '{printf "%.2f", $1 - $2}') s; engram_backup_fenced $(curl -s "http://127.0.0.1:$port/metrics" | awk '/^engram_backup_fenced/ {print $NF}')"
	grep -E '"level":"(ERROR|WARN)"|fenced|serving' "$STATE/primary.log" | tail -n 6 | cut -c1-260 | sed 's/^/  old primary: /'
	kill "$opid" "$npid" && wait "$opid" "$npid" 2>/dev/null || true

	echo "== cluster: read throughput, primary + two followers behind HAProxy vs the primary alone"
	TARGET="s3://$ENGRAM_TEST_S3_BUCKET/router"
	cat >"$STATE/recall.toml" <<-'TOML'
		name = "cluster_recall"
		description = "recall only over 10,000 memories"
		[duration]
		total_seconds = 10
		[warmup]
		seconds = 2
		[arrival]
		pattern = "constant"
		rate = 3000.0
		[operations]
		store_weight = 0.0
		recall_weight = 1.0
		embedding_search_weight = 0.0
		pattern_completion_weight = 0.0
		[data]
		num_nodes = 10000
		embedding_dim = 768
		memory_spaces = 1
		[preload]
		memories = 10000
	TOML
	sed -e 's/^memories = 10000/memories = 0\ndisabled = true/' "$STATE/recall.toml" >"$STATE/recall-only.toml"
	start_node p --backup-to "$TARGET" --backup-interval 500ms
	pport=$port ppid=$pid
	wait_http "http://127.0.0.1:$pport/health/ready" 30 "$ppid" "$STATE/p.log" -f
	nice "$BIN" loadtest run "$STATE/recall.toml" --duration 1s --rate 10 --target "http://127.0.0.1:$pport" --quiet >/dev/null || [ $? -eq 3 ]
	start_node f1 --follow "$TARGET" --primary-url "http://127.0.0.1:$pport"
	f1port=$port f1pid=$pid
	start_node f2 --follow "$TARGET" --primary-url "http://127.0.0.1:$pport"
	f2port=$port f2pid=$pid
	[ "$(remember "http://127.0.0.1:$pport" after-load)" = 201 ] || { echo "cluster: remember on the primary failed" >&2; exit 1; }
	wait_http "http://127.0.0.1:$f1port/health/ready" 120 "$f1pid" "$STATE/f1.log" -f
	wait_http "http://127.0.0.1:$f2port/health/ready" 120 "$f2pid" "$STATE/f2.log" -f
	# Every server holds the last memory written and has indexed them all.
	for p in $pport $f1port $f2port; do
		until curl -sf -o /dev/null "http://127.0.0.1:$p/api/v1/memories/after-load"; do sleep 0.2; done
		until [ "$(curl -sf "http://127.0.0.1:$p/metrics" | awk '/^engram_index_pending_memories\{/ {s += $2} END {print s + 0}')" = 0 ]; do sleep 0.5; done
	done
	rport=$(free_port)
	mkdir -p "$STATE/router"
	cat >"$STATE/placement.toml" <<-TOML
		default_shard = "a"
		[router]
		listen = "127.0.0.1:$rport"
		stats_socket = "$STATE/router/admin.sock"
		map_file = "$STATE/router/spaces.map"
		[[shards]]
		name = "a"
		primary = "http://127.0.0.1:$pport"
		followers = ["http://127.0.0.1:$f1port", "http://127.0.0.1:$f2port"]
	TOML
	"$BIN" placement haproxy --placement "$STATE/placement.toml" --out "$STATE/router" >/dev/null
	"$ENGRAM_TEST_HAPROXY" -db -f "$STATE/router/haproxy.cfg" >"$STATE/haproxy.log" 2>&1 &
	hpid=$!
	PIDS+=("$hpid")
	wait_http "http://127.0.0.1:$rport/health" 10 "$hpid" "$STATE/haproxy.log" -f
	sleep 3 # every server passes its first health checks
	# recall_run NAME URL [FLAGS...]: the recall-only load with the cores
	# each process used over the run.
	recall_run() {
		local name=$1 url=$2 p before=() after=() w0 w1
		shift 2
		for p in $ppid $f1pid $f2pid $hpid; do before+=("$(ticks "$p")"); done
		w0=$(now)
		/usr/bin/time -f '%U %S' -o "$STATE/gen.time" "$BIN" loadtest run "$STATE/recall-only.toml" --target "$url" \
			--quiet --out "$STATE/$name.json" "$@" >/dev/null || [ $? -eq 3 ]
		w1=$(now)
		for p in $ppid $f1pid $f2pid $hpid; do after+=("$(ticks "$p")"); done
		echo "$name: $("$BIN" loadtest report "$STATE/$name.json" | grep -E '^recall +corrected' |
			awk '{print "achieved "$4"/s, p50 "$6" ms, p99 "$9" ms"}'), $("$BIN" loadtest report "$STATE/$name.json" | grep -o '[0-9]* errors')"
		echo "  cores: primary, follower 1, follower 2, haproxy, load generator: $(awk -v w="$w0 $w1" -v hz="$HZ" \
			-v b="${before[*]}" -v a="${after[*]}" -v g="$(cat "$STATE/gen.time" | tail -1)" 'BEGIN {
			split(w, t, " "); split(b, x, " "); split(a, y, " "); split(g, z, " "); d = t[2] - t[1]
			for (i = 1; i <= 4; i++) printf "%.2f, ", (y[i] - x[i]) / hz / d
			printf "%.2f (of %.1f s)\n", (z[1] + z[2]) / d, d }')"
	}
	for round in 1 2; do
		recall_run "router-$round" "http://127.0.0.1:$rport" --read-stale
		recall_run "direct-$round" "http://127.0.0.1:$pport"
	done
	echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"

	echo "== cluster: router added latency, recall at 100/s, direct vs through HAProxy to the primary"
	for round in 1 2; do
		for via in direct router; do
			url="http://127.0.0.1:$pport"
			[ "$via" = router ] && url="http://127.0.0.1:$rport"
			nice "$BIN" loadtest run "$STATE/recall-only.toml" --rate 100 --duration 15s --target "$url" --quiet --out "$STATE/lat.json" >/dev/null || [ $? -eq 3 ]
			echo "round $round $via: $("$BIN" loadtest report "$STATE/lat.json" | grep -E '^recall +corrected' | awk '{print "achieved "$4"/s, p50 "$6" ms, p99 "$9" ms"}')"
		done
	done
	echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
	kill "$hpid" "$ppid" "$f1pid" "$f2pid" && wait "$hpid" "$ppid" "$f1pid" "$f2pid" 2>/dev/null || true
fi

# serve_build BIN: a fresh data directory and BIN serving it on a free
# port; sets port and pid (the caller kills it).
serve_build() {
	port=$(free_port)
	rm -rf "$STATE/data" && mkdir "$STATE/data"
	"$1" serve --listen "127.0.0.1:$port" --data-dir "$STATE/data" --no-access-log >"$STATE/serve.log" 2>&1 &
	pid=$!
	PIDS+=("$pid")
	wait_http "http://127.0.0.1:$port/health/ready" 30 "$pid" "$STATE/serve.log" -f
}

# alternate OLD NEW PAIRS RUN: calls `RUN PAIR WHICH BINARY` for PAIRS
# pairs, the old build then the new one in each. Alternating pairs is how
# docs/benchmarks.md compares builds on a shared machine, whose load moves
# whole minutes.
alternate() {
	local old=$1 new=$2 pairs=$3 run=$4 pair
	for pair in $(seq 1 "$pairs"); do
		"$run" "$pair" old "$old"
		"$run" "$pair" new "$new"
	done
}

# --- ab: two builds side by side on durable remembers ---------------------
# `scripts/bench.sh ab OLD_BINARY NEW_BINARY [RATE] [PAIRS]`: alternates the
# two builds (a fresh server and data directory each run), offering the
# store-only e2e/testdata/remember_open_loop.toml at RATE/s (default 5000)
# with the load tester in its own process, and prints each run's corrected
# p50/p99. Not part of a plain `scripts/bench.sh` run.
ab_remember() {
	serve_build "$3"
	"$BIN" loadtest run e2e/testdata/remember_open_loop.toml --rate "$RATE" --target "http://127.0.0.1:$port" \
		--quiet --out "$STATE/r.json" >/dev/null || [ $? -eq 3 ]
	echo "pair $1 $2 ($3): $("$BIN" loadtest report "$STATE/r.json" | grep -E '^store +corrected' | awk '{print "achieved "$4"/s, p50 "$6" ms, p99 "$9" ms"}')"
	kill "$pid" && wait "$pid" 2>/dev/null || true
}
if [ "$SECTION" = ab ]; then
	RATE=${4:-5000}
	alternate "${2:?usage: scripts/bench.sh ab OLD_BINARY NEW_BINARY [RATE] [PAIRS]}" \
		"${3:?usage: scripts/bench.sh ab OLD_BINARY NEW_BINARY [RATE] [PAIRS]}" "${5:-2}" ab_remember
fi

# --- ab-mixed: two builds side by side on mixed_balanced ------------------
# `scripts/bench.sh ab-mixed OLD_BINARY NEW_BINARY [RATE] [PAIRS]`: alternates
# the two builds (a fresh server and data directory each run) under the
# built-in mixed_balanced scenario at RATE/s (default 1000) for 20 s from the
# load tester in its own process, and prints each operation's achieved rate
# and corrected p50/p99 and the index backlog left. Not part of a plain
# `scripts/bench.sh` run.
ab_mixed() {
	local ops pending
	serve_build "$3"
	"$BIN" loadtest run mixed_balanced --rate "$RATE" --duration 20s --target "http://127.0.0.1:$port" \
		--quiet --out "$STATE/r.json" >/dev/null || [ $? -eq 3 ]
	ops=$("$BIN" loadtest report "$STATE/r.json" | grep -E '^(store|recall|embedding_search) +corrected' |
		awk '{printf "%s %s/s p50 %s p99 %s ms; ", $1, $4, $6, $9}')
	pending=$(curl -sf "http://127.0.0.1:$port/metrics" | awk '/^engram_index_pending_memories\{/ {s += $2} END {print s + 0}')
	echo "pair $1 $2 ($3): ${ops}backlog $pending"
	kill "$pid" && wait "$pid" 2>/dev/null || true
}
if [ "$SECTION" = ab-mixed ]; then
	RATE=${4:-1000}
	alternate "${2:?usage: scripts/bench.sh ab-mixed OLD_BINARY NEW_BINARY [RATE] [PAIRS]}" \
		"${3:?usage: scripts/bench.sh ab-mixed OLD_BINARY NEW_BINARY [RATE] [PAIRS]}" "${5:-2}" ab_mixed
fi

# --- ab-gen: two generator builds side by side on mixed_balanced -----------
# `scripts/bench.sh ab-gen OLD_BINARY NEW_BINARY [RATE] [PAIRS]`: alternates
# the two builds as the load generator (its own process) under the built-in
# mixed_balanced scenario at RATE/s (default 1000) for 20 s, each against a
# fresh server of this build, and prints the generator's CPU per operation
# (its CPU over warm-up and measured phase, scaled to the measured phase,
# over the operations completed). Not part of a plain `scripts/bench.sh` run.
ab_gen() {
	serve_build "$BIN"
	"$3" loadtest run mixed_balanced --rate "$RATE" --duration 20s --target "http://127.0.0.1:$port" \
		--quiet --out "$STATE/r.json" >/dev/null || [ $? -eq 3 ]
	echo "pair $1 $2 ($3): $("$BIN" loadtest report "$STATE/r.json" | awk '
		/^Run / { for (i = 1; i <= NF; i++) { if ($i == "measured") m = $(i + 1) + 0; if ($i == "after") w = $(i + 1) + 0 } }
		/^ +CPU / { u = $5 + 0; s = $7 + 0 }
		/^(store|recall|embedding_search) +corrected/ { n += $3 }
		END { printf "%d operations, generator CPU %.2fs, %.0f µs per operation", n, u + s, 1e6 * (u + s) * m / (m + w) / n }')"
	kill "$pid" && wait "$pid" 2>/dev/null || true
}
if [ "$SECTION" = ab-gen ]; then
	RATE=${4:-1000}
	alternate "${2:?usage: scripts/bench.sh ab-gen OLD_BINARY NEW_BINARY [RATE] [PAIRS]}" \
		"${3:?usage: scripts/bench.sh ab-gen OLD_BINARY NEW_BINARY [RATE] [PAIRS]}" "${5:-3}" ab_gen
fi

# --- ab-recall: two builds side by side on recall over 100k × 768 ---------
# `scripts/bench.sh ab-recall OLD_BINARY NEW_BINARY [PAIRS]`: alternates the
# two builds on the e2e recall benchmark (BenchmarkHTTPRecall100k through
# ENGRAM_E2E_BIN: load, index, 1,000 recalls/s with JSON then base64
# cues, restart) and prints each run's figures and 250 ms timeline. Not
# part of a plain `scripts/bench.sh` run.
ab_recall() {
	echo "== pair $1 $2 ($3)"
	(cd e2e && ENGRAM_E2E_BIN=$3 ENGRAM_BENCH_TIMELINE=1 "$STATE/e2e.test" -test.run '^$' \
		-test.bench HTTPRecall100k -test.benchtime 1x -test.timeout 30m) 2>&1 |
		grep -E 'req/s|recall@10|restart|worst latency' || true
}
if [ "$SECTION" = ab-recall ]; then
	OLD=$(realpath "${2:?usage: scripts/bench.sh ab-recall OLD_BINARY NEW_BINARY [PAIRS]}")
	NEW=$(realpath "${3:?usage: scripts/bench.sh ab-recall OLD_BINARY NEW_BINARY [PAIRS]}")
	go test -c -o "$STATE/e2e.test" ./e2e/
	alternate "$OLD" "$NEW" "${4:-2}" ab_recall
fi

# --- ab-burst: two builds side by side on a write burst with recalls --------
# `scripts/bench.sh ab-burst OLD_BINARY NEW_BINARY [PAIRS]`: alternates the
# two builds on BenchmarkWriteBurstThenRecall (through ENGRAM_E2E_BIN; extra
# server flags from ENGRAM_BENCH_SERVER_ARGS) and prints each run's recall
# p50/p99 during and after the burst, the writes accepted, and the recalls
# the server's handler took over 10 ms. Not part of a plain
# `scripts/bench.sh` run.
ab_burst() {
	echo "pair $1 $2 ($3): $( (cd e2e && ENGRAM_E2E_BIN=$3 "$STATE/e2e.test" -test.run '^$' \
		-test.bench WriteBurstThenRecall -test.benchtime 1x -test.timeout 10m) 2>&1 |
		awk '/^BenchmarkWriteBurstThenRecall/ { for (i = 3; i < NF; i += 2) if ($(i + 1) ~ /^(during|after)-(p50|p99)-ms|burst-writes|server-over-10ms/) printf "%s %s, ", $(i + 1), $i }')"
}
if [ "$SECTION" = ab-burst ]; then
	OLD=$(realpath "${2:?usage: scripts/bench.sh ab-burst OLD_BINARY NEW_BINARY [PAIRS]}")
	NEW=$(realpath "${3:?usage: scripts/bench.sh ab-burst OLD_BINARY NEW_BINARY [PAIRS]}")
	go test -c -o "$STATE/e2e.test" ./e2e/
	alternate "$OLD" "$NEW" "${4:-2}" ab_burst
fi

# --- durability: where remember's tail is ---------------------------------
# `scripts/bench.sh durability [BINARY] [RATE] [PAIRS]`: the same build with
# sync and with relaxed durability, alternated, offering the store-only
# e2e/testdata/remember_open_loop.toml at RATE/s (default 2500) with the load
# tester in its own process; prints each run's corrected p50/p99 next to the
# server's write-ahead-log fsync figures read from /metrics after the run
# (p50/p99/p99.9 interpolated in engram_storage_wal_sync_duration_seconds'
# buckets, as histogram_quantile does, and writes per fsync). Not part of a
# plain `scripts/bench.sh` run.
if [ "$SECTION" = durability ]; then
	SERVER=${2:-$BIN}
	RATE=${3:-2500}
	PAIRS=${4:-2}
	for pair in $(seq 1 "$PAIRS"); do
		for dur in sync relaxed; do
			port=$(free_port)
			rm -rf "$STATE/data" && mkdir "$STATE/data"
			"$SERVER" serve --listen "127.0.0.1:$port" --data-dir "$STATE/data" --no-access-log --set "durability=$dur" >"$STATE/serve.log" 2>&1 &
			pid=$!
			PIDS+=("$pid")
			wait_http "http://127.0.0.1:$port/health/ready" 30 "$pid" "$STATE/serve.log" -f
			"$BIN" loadtest run e2e/testdata/remember_open_loop.toml --rate "$RATE" --target "http://127.0.0.1:$port" \
				--quiet --out "$STATE/r.json" >/dev/null || [ $? -eq 3 ]
			lat=$("$BIN" loadtest report "$STATE/r.json" | grep -E '^store +corrected' | awk '{print "achieved "$4"/s, p50 "$6" ms, p99 "$9" ms"}')
			fsyncs=$(curl -sf "http://127.0.0.1:$port/metrics" | awk '
				/^engram_storage_wal_sync_duration_seconds_bucket/ {
					match($0, /le="[^"]+"/); le = substr($0, RSTART + 4, RLENGTH - 5)
					n++; les[n] = (le == "+Inf") ? -1 : le + 0; cum[n] = $NF + 0 }
				/^engram_storage_wal_sync_duration_seconds_count/ { count = $NF + 0 }
				/^engram_storage_wal_synced_writes_total/ { writes = $NF + 0 }
				function q(p,   r, i, lo, prev) {
					r = p * count; lo = 0; prev = 0
					for (i = 1; i <= n; i++) {
						if (cum[i] >= r) return (les[i] < 0) ? lo : lo + (les[i] - lo) * (r - prev) / ((cum[i] - prev) > 0 ? cum[i] - prev : 1)
						prev = cum[i]; lo = les[i] }
					return lo }
				END { if (count == 0) { print "no fsyncs"; exit }
					printf "%d fsyncs, %.2f writes each, p50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms\n", count, writes / count, q(0.5) * 1000, q(0.99) * 1000, q(0.999) * 1000 }')
			echo "pair $pair $dur: $lat | fsyncs: $fsyncs"
			kill "$pid" && wait "$pid" 2>/dev/null || true
		done
	done
fi
