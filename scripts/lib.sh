# Sourced by scripts/test.sh and scripts/bench.sh. Services they start run
# on 127.0.0.1 and are stopped by PID, and their scratch directory
# removed, when the script exits, whatever the outcome.

STATE=$(mktemp -d -t "engram-$(basename "$0" .sh)-XXXXXX")
PIDS=()
cleanup() {
	for pid in "${PIDS[@]:-}"; do
		[ -n "$pid" ] && kill "$pid" 2>/dev/null || true
	done
	rm -rf "$STATE"
}
trap cleanup EXIT

# free_port prints a loopback port nobody listens on (a connection there is
# refused), or fails after 50 tries. It picks below the kernel's ephemeral
# range (Linux: 32768 and up), where a busy machine's outgoing connections
# can hold a port nobody listens on, so that binding it fails.
free_port() {
	local port tries=0 low=32768
	read -r low _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || true
	[ "$low" -gt 11000 ] 2>/dev/null || low=32768
	while :; do
		port=$((10000 + RANDOM % (low - 10000)))
		(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || break
		tries=$((tries + 1))
		[ "$tries" -lt 50 ] || { echo "no free loopback port" >&2; return 1; }
	done
	echo "$port"
}

# wait_http URL SECONDS PID LOG [CURL_ARGS...]: waits until URL answers
# (CURL_ARGS such as -f decide what counts); fails, printing LOG, when the
# process PID exits or SECONDS pass first.
wait_http() {
	local url=$1 secs=$2 pid=$3 log=$4
	shift 4
	local deadline=$((SECONDS + secs))
	until curl -s -o /dev/null --max-time 1 "$@" "$url"; do
		if ! kill -0 "$pid" 2>/dev/null || [ "$SECONDS" -ge "$deadline" ]; then
			echo "nothing answered at $url within ${secs}s:" >&2
			cat "$log" >&2
			return 1
		fi
		sleep 0.1
	done
}

# start_versitygw BUCKET: an S3 server, versitygw with its posix backend in
# $STATE (a bucket is a directory), on a free loopback port with a random
# root key per run; exports the ENGRAM_TEST_S3_* variables the tests and
# benchmarks read.
start_versitygw() {
	local port
	port=$(free_port)
	export ENGRAM_TEST_S3_ENDPOINT="127.0.0.1:$port" ENGRAM_TEST_S3_ACCESS_KEY="$1" ENGRAM_TEST_S3_BUCKET="$1"
	ENGRAM_TEST_S3_SECRET_KEY=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
	export ENGRAM_TEST_S3_SECRET_KEY
	mkdir -p "$STATE/s3data/$ENGRAM_TEST_S3_BUCKET" "$STATE/s3v"
	ROOT_ACCESS_KEY_ID="$ENGRAM_TEST_S3_ACCESS_KEY" ROOT_SECRET_ACCESS_KEY="$ENGRAM_TEST_S3_SECRET_KEY" \
		versitygw --port "$ENGRAM_TEST_S3_ENDPOINT" --quiet posix --versioning-dir "$STATE/s3v" "$STATE/s3data" \
		>"$STATE/versitygw.log" 2>&1 &
	local pid=$!
	PIDS+=("$pid")
	# Any HTTP answer (403 without credentials) means it is serving.
	wait_http "http://$ENGRAM_TEST_S3_ENDPOINT/" 10 "$pid" "$STATE/versitygw.log"
	echo "S3: versitygw on $ENGRAM_TEST_S3_ENDPOINT (pid $pid), bucket $ENGRAM_TEST_S3_BUCKET"
}

# start_postgres: a PostgreSQL server (Debian's package, installed when
# initdb is missing) with a fresh cluster in $STATE, on a free loopback port
# with trust authentication; initdb and the server run as the unprivileged
# postgres user when the script runs as root. Exports
# ENGRAM_TEST_POSTGRES_DSN. The server's own PID (postmaster.pid) is the one
# stopped at exit.
start_postgres() {
	local bin=/usr/lib/postgresql/15/bin
	if [ ! -x "$bin/initdb" ]; then
		echo "installing postgresql"
		apt-get update -qq >/dev/null && apt-get install -y -qq postgresql >/dev/null
	fi
	local dir="$STATE/pg" port as=()
	port=$(free_port)
	mkdir -p "$dir"
	if [ "$(id -u)" = 0 ]; then
		chmod o+x "$STATE"
		chown postgres: "$dir"
		as=(runuser -u postgres --)
	fi
	"${as[@]}" "$bin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --no-sync >"$dir/initdb.log" 2>&1 ||
		{ cat "$dir/initdb.log" >&2; return 1; }
	"${as[@]}" "$bin/postgres" -D "$dir/data" -p "$port" -k "$dir" -c listen_addresses=127.0.0.1 \
		-c fsync=off -c synchronous_commit=off -c full_page_writes=off >"$dir/postgres.log" 2>&1 &
	local wrapper=$! deadline=$((SECONDS + 30))
	until "$bin/pg_isready" -q -h 127.0.0.1 -p "$port"; do
		if ! kill -0 "$wrapper" 2>/dev/null || [ "$SECONDS" -ge "$deadline" ]; then
			echo "PostgreSQL did not start on 127.0.0.1:$port within 30s:" >&2
			cat "$dir/postgres.log" >&2
			return 1
		fi
		sleep 0.1
	done
	local pid
	read -r pid <"$dir/data/postmaster.pid"
	PIDS+=("$pid")
	export ENGRAM_TEST_POSTGRES_DSN="postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"
	echo "PostgreSQL: $("$bin/postgres" --version) on 127.0.0.1:$port (pid $pid)"
}

# start_redis: Debian's redis-server (installed when missing) on a free
# loopback port, without persistence, daemonized with a pidfile in $STATE;
# stopped by PID at exit. Exports ENGRAM_TEST_REDIS_ADDR.
start_redis() {
	if ! command -v redis-server >/dev/null; then
		apt-get install -y -qq --no-install-recommends redis-server >/dev/null ||
			{ apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends redis-server >/dev/null; }
	fi
	local port pid
	port=$(free_port)
	redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
		--pidfile "$STATE/redis.pid" --logfile "$STATE/redis.log" --dir "$STATE"
	for _ in $(seq 100); do
		[ -s "$STATE/redis.pid" ] && redis-cli -p "$port" ping >/dev/null 2>&1 && break
		sleep 0.1
	done
	pid=$(cat "$STATE/redis.pid" 2>/dev/null) || { echo "redis-server did not start:" >&2; cat "$STATE/redis.log" >&2; return 1; }
	PIDS+=("$pid")
	redis-cli -p "$port" ping >/dev/null || { echo "redis-server on $port does not answer:" >&2; cat "$STATE/redis.log" >&2; return 1; }
	export ENGRAM_TEST_REDIS_ADDR="127.0.0.1:$port"
	echo "Redis: redis-server $(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p') on $ENGRAM_TEST_REDIS_ADDR (pid $pid)"
}

# use_haproxy: Debian's haproxy (installed when missing); the tests start
# their own on loopback. Exports ENGRAM_TEST_HAPROXY.
use_haproxy() {
	if ! command -v haproxy >/dev/null && [ ! -x /usr/sbin/haproxy ]; then
		apt-get install -y -qq --no-install-recommends haproxy >/dev/null ||
			{ apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends haproxy >/dev/null; }
	fi
	ENGRAM_TEST_HAPROXY=$(command -v haproxy || echo /usr/sbin/haproxy)
	export ENGRAM_TEST_HAPROXY
	echo "HAProxy: $("$ENGRAM_TEST_HAPROXY" -v | head -1)"
}
