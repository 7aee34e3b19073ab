#!/usr/bin/env bash
# The side-by-side benchmark: the same requests sent to a mock GLM upstream direct, through
# nginx and through the gateway (key auth, limits, the PostgreSQL ledger), in one run; prints
# one table (docs/performance.md explains it). Installs nginx and oha when missing (as root, on
# Debian), builds the gateway in release, starts everything it needs and stops it again.
#
# Pinning (2 cores): the server under test (nginx or the gateway) runs alone on
# BENCH_SERVER_CPU; the load generator and the mock upstream share BENCH_LOAD_CPU.
#
# Environment (defaults): BENCH_PHASE_SECS (10) per measured phase, BENCH_WARM_SECS (2) of
# warm-up before each, BENCH_RATE (1000) for the fixed-rate phases, BENCH_CONNECTIONS (64) for
# the throughput phase, BENCH_HOLD_STREAMS (2000) and BENCH_HOLD_SECS (10) for the open-streams
# phase, BENCH_LOAD_CPU (0), BENCH_SERVER_CPU (1), BENCH_PORT (18480: the mock; nginx and the
# gateway take the next two), BENCH_POSTGRES (postgres://postgres@127.0.0.1:5432),
# BENCH_NGINX_ACCESS_LOG (on), BENCH_OUT (target/bench: logs and results), and any
# GLM_GATEWAY_* setting, passed on to the gateway.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

PHASE_SECS=${BENCH_PHASE_SECS:-10}
WARM_SECS=${BENCH_WARM_SECS:-2}
RATE=${BENCH_RATE:-1000}
CONNECTIONS=${BENCH_CONNECTIONS:-64}
HOLD_STREAMS=${BENCH_HOLD_STREAMS:-2000}
HOLD_SECS=${BENCH_HOLD_SECS:-10}
LOAD_CPU=${BENCH_LOAD_CPU:-0}
SERVER_CPU=${BENCH_SERVER_CPU:-1}
MOCK_PORT=${BENCH_PORT:-18480}
NGINX_PORT=$((MOCK_PORT + 1))
GATEWAY_PORT=$((MOCK_PORT + 2))
PG_SERVER=${BENCH_POSTGRES:-postgres://postgres@127.0.0.1:5432}
ACCESS_LOG=${BENCH_NGINX_ACCESS_LOG:-on}
OUT=${BENCH_OUT:-$ROOT/target/bench}
RESULTS=$OUT/results
OHA_VERSION=1.16.0
UPSTREAM_KEY=bench.bench-secret-0123456789
DATABASE=glm_bench_$$
PIDS=()

step() { printf '== %s\n' "$*" >&2; }
die() {
  printf 'bench: %s\n' "$*" >&2
  exit 1
}

cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  psql "$PG_SERVER/postgres" -qc "DROP DATABASE IF EXISTS $DATABASE" >/dev/null 2>&1 || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- what it needs -------------------------------------------------------------------------
install_tools() {
  if ! command -v nginx >/dev/null; then
    [ "$(id -u)" -eq 0 ] || die "nginx is missing: install nginx-light (or run as root)"
    step "installing nginx"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light >/dev/null ||
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >/dev/null
  fi
  OHA=$(command -v oha || echo "$HOME/.cargo/bin/oha")
  if ! "$OHA" --version 2>/dev/null | grep -q " $OHA_VERSION\$"; then
    step "installing oha $OHA_VERSION (cargo install, a few minutes once)"
    if ! pkg-config --exists openssl 2>/dev/null; then
      [ "$(id -u)" -eq 0 ] || die "oha's build needs OpenSSL's headers: install libssl-dev and pkg-config"
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libssl-dev pkg-config >/dev/null
    fi
    # native-tls: oha does not build without a TLS backend, and OpenSSL's is the quickest.
    cargo install oha --version "$OHA_VERSION" --locked --no-default-features \
      --features native-tls --quiet
    OHA=$HOME/.cargo/bin/oha
  fi
  command -v taskset >/dev/null || die "taskset (util-linux) is missing"
  # shellcheck source=scripts/postgres.sh
  . scripts/postgres.sh
  ensure_postgres
}

build() {
  step "cargo build --release; the load tool"
  cargo build --release --quiet
  GATEWAY=$ROOT/target/release/glm-gateway
  LOADTOOL=$(cargo bench --bench loadtool --no-run --message-format=json 2>/dev/null |
    sed -n 's/.*"executable":"\([^"]*\/loadtool-[^"]*\)".*/\1/p' | tail -n 1)
  [ -x "$LOADTOOL" ] || die "could not build the load tool (cargo bench --bench loadtool --no-run)"
}

# --- the servers ---------------------------------------------------------------------------
wait_port() {
  local port=$1 _
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return
    sleep 0.1
  done
  die "nothing listens on port $port (see $OUT/*.log)"
}

start_mock() {
  taskset -c "$LOAD_CPU" "$LOADTOOL" mock --listen "127.0.0.1:$MOCK_PORT" \
    --hold-secs "$HOLD_SECS" >"$OUT/mock.log" 2>&1 &
  MOCK_PID=$!
  PIDS+=("$MOCK_PID")
  wait_port "$MOCK_PORT"
}

start_nginx() {
  local dir=$OUT/nginx
  mkdir -p "$dir/tmp"
  chmod 1777 "$dir/tmp"
  local log=off
  [ "$ACCESS_LOG" = on ] && log=$dir/access.log
  local proxy="proxy_http_version 1.1; proxy_set_header Connection \"\"; proxy_buffering off;"
  cat >"$dir/nginx.conf" <<EOF
worker_processes 1;
worker_rlimit_nofile $(ulimit -n);
error_log $dir/error.log warn;
pid $dir/nginx.pid;
events { worker_connections 16384; }
http {
  access_log $log;
  client_body_temp_path $dir/tmp/body;
  proxy_temp_path $dir/tmp/proxy;
  fastcgi_temp_path $dir/tmp/fastcgi;
  uwsgi_temp_path $dir/tmp/uwsgi;
  scgi_temp_path $dir/tmp/scgi;
  keepalive_requests 10000000;
  upstream mock {
    server 127.0.0.1:$MOCK_PORT;
    keepalive 512;
    keepalive_requests 10000000;
  }
  server {
    listen 127.0.0.1:$NGINX_PORT backlog=4096;
    location = /v1/chat/completions { proxy_pass http://mock/api/paas/v4/chat/completions; $proxy }
    location = /v1/embeddings { proxy_pass http://mock/api/paas/v4/embeddings; $proxy }
  }
}
EOF
  taskset -c "$SERVER_CPU" nginx -p "$dir" -c "$dir/nginx.conf" -g 'daemon off;' \
    >"$OUT/nginx.log" 2>&1 &
  NGINX_PID=$!
  PIDS+=("$NGINX_PID")
  wait_port "$NGINX_PORT"
}

start_gateway() {
  psql "$PG_SERVER/postgres" -qc "CREATE DATABASE $DATABASE" >/dev/null
  export DATABASE_URL=$PG_SERVER/$DATABASE
  export ZHIPUAI_API_KEY=$UPSTREAM_KEY
  export ZHIPUAI_BASE_URL=http://127.0.0.1:$MOCK_PORT/api/paas/v4
  export GLM_GATEWAY_LISTEN=127.0.0.1:$GATEWAY_PORT
  export GLM_GATEWAY_ADMIN_TOKEN=bench-admin-token
  export GLM_GATEWAY_JOURNAL_DIR=$OUT/journal
  rm -rf "$OUT/journal"
  # From an empty folder: the built-in defaults, as an installed binary has them.
  mkdir -p "$OUT/gateway"
  (cd "$OUT/gateway" && "$GATEWAY" migrate >"$OUT/gateway-migrate.log" 2>&1) ||
    die "glm-gateway migrate failed (see $OUT/gateway-migrate.log)"
  # A key with limits (checked on every request) high enough never to refuse.
  local created
  created=$(cd "$OUT/gateway" && "$GATEWAY" keys create --name bench --team bench \
    --rpm 1000000000 --tpm 1000000000000 --json)
  KEY=$(printf '%s' "$created" | sed -n 's/.*"key": *"\([^"]*\)".*/\1/p')
  [ -n "$KEY" ] || die "could not read the key from: glm-gateway keys create --json"
  (cd "$OUT/gateway" && exec taskset -c "$SERVER_CPU" "$GATEWAY" serve --no-migrate) \
    >"$OUT/gateway.log" 2>&1 &
  GATEWAY_PID=$!
  PIDS+=("$GATEWAY_PID")
  wait_port "$GATEWAY_PORT"
}

# --- measuring -----------------------------------------------------------------------------
# The processes of a target: nginx's master and worker; the gateway; the mock.
pids_of() {
  case $1 in
    mock) echo "$MOCK_PID" ;;
    nginx) echo "$NGINX_PID" "$(pgrep -P "$NGINX_PID" | tr '\n' ' ')" ;;
    gateway) echo "$GATEWAY_PID" ;;
  esac
}

# utime + stime, in clock ticks, of every process of a target.
cpu_ticks() {
  local total=0 pid
  for pid in $(pids_of "$1"); do
    total=$((total + $(sed 's/^.*) //' "/proc/$pid/stat" | awk '{print $12 + $13}')))
  done
  echo "$total"
}

# A /proc/<pid>/status field (kB), summed over a target's processes.
status_kb() {
  local total=0 pid
  for pid in $(pids_of "$1"); do
    total=$((total + $(awk -v f="$2:" '$1 == f {print $2}' "/proc/$pid/status")))
  done
  echo "$total"
}

url_of() {
  case $1:$2 in
    mock:chat) echo "http://127.0.0.1:$MOCK_PORT/api/paas/v4/chat/completions" ;;
    mock:embeddings) echo "http://127.0.0.1:$MOCK_PORT/api/paas/v4/embeddings" ;;
    nginx:chat) echo "http://127.0.0.1:$NGINX_PORT/v1/chat/completions" ;;
    nginx:embeddings) echo "http://127.0.0.1:$NGINX_PORT/v1/embeddings" ;;
    gateway:chat) echo "http://127.0.0.1:$GATEWAY_PORT/v1/chat/completions" ;;
    gateway:embeddings) echo "http://127.0.0.1:$GATEWAY_PORT/v1/embeddings" ;;
  esac
}

write_bodies() {
  local dir=$OUT/bodies
  mkdir -p "$dir"
  printf '%s' '{"model":"glm-4.7","messages":[{"role":"user","content":"Say hello"}],"temperature":0.5}' >"$dir/chat.json"
  printf '%s' '{"model":"glm-4.7","messages":[{"role":"user","content":"Say hello"}],"stream":true}' >"$dir/stream.json"
  printf '%s' '{"model":"glm-4.7","messages":[{"role":"user","content":"Say hello #hold"}],"stream":true}' >"$dir/hold.json"
  printf '%s' '{"model":"embedding-3","input":"The quick brown fox","dimensions":256}' >"$dir/embeddings.json"
}

# oha against a target: oha TARGET ENDPOINT BODY ARGS...; JSON on stdout.
oha_run() {
  local target=$1 endpoint=$2 body=$3
  shift 3
  local auth=()
  [ "$target" = gateway ] && auth=(-H "authorization: Bearer $KEY")
  taskset -c "$LOAD_CPU" "$OHA" --no-tui --output-format json -m POST -T application/json \
    "${auth[@]}" -D "$OUT/bodies/$body.json" "$@" "$(url_of "$target" "$endpoint")"
}

streams_run() {
  local target=$1 seconds=$2
  local key=
  [ "$target" = gateway ] && key=$KEY
  LOADTOOL_KEY=$key taskset -c "$LOAD_CPU" "$LOADTOOL" streams --url "$(url_of "$target" chat)" \
    --body-file "$OUT/bodies/stream.json" --rate "$RATE" --duration-secs "$seconds"
}

# measure TARGET PHASE COMMAND...: runs the command once as warm-up for WARM_SECS (its
# "@SECS@" replaced), then for PHASE_SECS, with the target's CPU time around the second run.
measure() {
  local target=$1 phase=$2
  shift 2
  local warm=() real=() arg
  for arg in "$@"; do
    warm+=("${arg//@SECS@/$WARM_SECS}")
    real+=("${arg//@SECS@/$PHASE_SECS}")
  done
  "${warm[@]}" >/dev/null
  local before started
  before=$(cpu_ticks "$target")
  started=$(date +%s.%N)
  "${real[@]}" >"$RESULTS/$target/$phase.json"
  echo $(($(cpu_ticks "$target") - before)) >"$RESULTS/$target/$phase.ticks"
  awk -v a="$(date +%s.%N)" -v b="$started" 'BEGIN { print a - b }' >"$RESULTS/$target/$phase.wall"
}

phases() {
  local target=$1
  step "$target: plain chat, 1 connection"
  measure "$target" plain_1c oha_run "$target" chat chat -c 1 -z @SECS@s
  step "$target: plain chat, $RATE req/s"
  measure "$target" plain_rate oha_run "$target" chat chat -c 32 -q "$RATE" -z @SECS@s --latency-correction
  step "$target: plain chat, $CONNECTIONS connections"
  measure "$target" plain_max oha_run "$target" chat chat -c "$CONNECTIONS" -z @SECS@s
  step "$target: streams, $RATE/s"
  measure "$target" stream_rate streams_run "$target" @SECS@
  step "$target: embeddings, $RATE req/s"
  measure "$target" embed_rate oha_run "$target" embeddings embeddings -c 32 -q "$RATE" -z @SECS@s --latency-correction
}

# HOLD_STREAMS streams held open through a target; its RSS is read while they all are.
hold() {
  local target=$1 ready=$RESULTS/$1/hold.ready key=
  [ "$target" = gateway ] && key=$KEY
  step "$target: $HOLD_STREAMS open streams"
  rm -f "$ready"
  LOADTOOL_KEY=$key taskset -c "$LOAD_CPU" "$LOADTOOL" hold --url "$(url_of "$target" chat)" \
    --body-file "$OUT/bodies/hold.json" --streams "$HOLD_STREAMS" --rate "$RATE" \
    --ready-file "$ready" >"$RESULTS/$target/hold.json" &
  local holder=$! _
  PIDS+=("$holder")
  for _ in $(seq 1 900); do
    [ -s "$ready" ] && break
    sleep 0.1
  done
  [ -s "$ready" ] || die "$target: the streams did not open"
  status_kb "$target" VmRSS >"$RESULTS/$target/rss_hold_kb"
  sed -n 's/.*"failed":\([0-9]*\).*/\1/p' "$ready" >"$RESULTS/$target/hold_failed"
  wait "$holder"
}

check_answers() {
  local target endpoint body
  for target in mock nginx gateway; do
    for endpoint in chat:chat chat:stream embeddings:embeddings; do
      body=${endpoint#*:}
      endpoint=${endpoint%:*}
      local auth=()
      [ "$target" = gateway ] && auth=(-H "authorization: Bearer $KEY")
      curl -sf "${auth[@]}" -H 'content-type: application/json' \
        --data-binary "@$OUT/bodies/$body.json" "$(url_of "$target" "$endpoint")" \
        >"$OUT/check-$target-$body.out" ||
        die "$target $body: no 200 answer (see $OUT/*.log)"
    done
  done
  grep -q '"chat.completion"' "$OUT/check-gateway-chat.out" || die "gateway: not a chat completion"
  grep -q 'data: \[DONE\]' "$OUT/check-gateway-stream.out" || die "gateway: stream without [DONE]"
}

conditions() {
  cat <<EOF
Run $(date -u '+%Y-%m-%d %H:%M UTC') at $(git rev-parse --short HEAD 2>/dev/null || echo '?'): $(nproc) cores ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)), Linux $(uname -r).
nginx $(nginx -v 2>&1 | sed 's/.*nginx\///'), oha $OHA_VERSION, $(rustc --version | cut -d' ' -f1-2).
Server under test (nginx: 1 worker; the gateway) on CPU $SERVER_CPU; load generator and mock upstream on CPU $LOAD_CPU.
Phases: ${PHASE_SECS} s each after ${WARM_SECS} s of warm-up; fixed rate $RATE/s; $CONNECTIONS connections; $HOLD_STREAMS held streams.
Gateway: release build, PostgreSQL ledger and limit counters (store ${GLM_GATEWAY_LIMITS__STORE:-database}), a key with rpm and tpm. nginx access log: $ACCESS_LOG.
Load average at the start: $LOAD_START.
EOF
}

main() {
  install_tools
  build
  ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
  rm -rf "$RESULTS"
  mkdir -p "$OUT" "$RESULTS"/{mock,nginx,gateway}
  psql "$PG_SERVER/postgres" -Atqc \
    "SELECT datname FROM pg_database WHERE datname LIKE 'glm\_bench\_%'" 2>/dev/null |
    while read -r name; do
      psql "$PG_SERVER/postgres" -qc "DROP DATABASE IF EXISTS \"$name\"" >/dev/null 2>&1 || true
    done
  write_bodies
  step "starting the mock upstream, nginx and the gateway"
  start_mock
  start_nginx
  start_gateway
  check_answers
  sleep 1
  for target in nginx gateway; do
    status_kb "$target" VmRSS >"$RESULTS/$target/rss_idle_kb"
  done
  LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
  getconf CLK_TCK >"$RESULTS/clk_tck"
  for target in mock nginx gateway; do
    phases "$target"
  done
  for target in nginx gateway; do
    status_kb "$target" VmHWM >"$RESULTS/$target/hwm_load_kb"
    hold "$target"
    status_kb "$target" VmHWM >"$RESULTS/$target/hwm_kb"
    status_kb "$target" VmRSS >"$RESULTS/$target/rss_after_kb"
  done
  conditions >"$RESULTS/conditions.md"
  echo "Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)." >>"$RESULTS/conditions.md"
  "$LOADTOOL" report --dir "$RESULTS" | tee "$OUT/table.md"
}

main "$@"
