#!/usr/bin/env bash
# Runs every test of glm-gateway on a fresh machine: makes sure PostgreSQL answers on
# 127.0.0.1:5432 and Redis on 127.0.0.1:6379 (starting or installing them when they do not;
# Redis for the limit-store tests), makes a Python virtualenv with the official OpenAI SDK and
# installs the pinned OpenAI Node SDKs (tests/node), then runs lints, the Rust tests and the
# OpenAI-SDK tests (Python, then Node).
set -euo pipefail
cd "$(dirname "$0")/.."

PGHOST=127.0.0.1
PGPORT=5432
export TEST_DATABASE_URL="${TEST_DATABASE_URL:-postgres://postgres@$PGHOST:$PGPORT}"

step() { printf '\n== %s\n' "$*"; }
# shellcheck source=scripts/postgres.sh
. scripts/postgres.sh

ensure_redis() {
  if redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then return; fi
  step "starting Redis"
  if ! command -v redis-server >/dev/null 2>&1; then
    if [ "$(id -u)" -ne 0 ]; then
      echo "Redis is not installed and this is not root: install redis-server" >&2
      exit 1
    fi
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
  fi
  mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  for _ in $(seq 1 30); do
    redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && return
    sleep 1
  done
  echo "Redis did not come up on 127.0.0.1:6379" >&2
  exit 1
}

drop_leftover_databases() {
  psql "$TEST_DATABASE_URL/postgres" -Atqc \
    "SELECT datname FROM pg_database WHERE datname LIKE 'glm\_test\_%'" 2>/dev/null |
    while read -r name; do
      psql "$TEST_DATABASE_URL/postgres" -qc "DROP DATABASE IF EXISTS \"$name\"" >/dev/null 2>&1 || true
    done
}

ensure_python() {
  if [ ! -x .venv/bin/python ]; then
    step "making the Python virtualenv (.venv)"
    python3 -m venv .venv
  fi
  .venv/bin/pip install -q --disable-pip-version-check -r tests/python/requirements.txt
}

ensure_node() {
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    if [ "$(id -u)" -ne 0 ]; then
      echo "node and npm are needed for the Node SDK tests (tests/node): install them" >&2
      exit 1
    fi
    step "installing Node.js"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
  fi
  # npm ci (exactly package-lock.json) only when node_modules is missing or the lock changed.
  local want have
  want=$(sha256sum tests/node/package-lock.json | cut -d' ' -f1)
  have=$(cat tests/node/node_modules/.package-lock.sha256 2>/dev/null || true)
  if [ "$want" != "$have" ]; then
    step "npm ci (tests/node)"
    npm ci --prefix tests/node --no-audit --no-fund
    echo "$want" >tests/node/node_modules/.package-lock.sha256
  fi
}

ensure_postgres
ensure_redis
drop_leftover_databases
ensure_python
ensure_node

step "module layers (scripts/check-layers.py)"
python3 scripts/check-layers.py
step "cargo fmt --check"
cargo fmt --all -- --check
step "cargo clippy"
cargo clippy --all-targets --locked -- -D warnings
step "cargo test (unit and integration, Postgres and SQLite)"
cargo test --locked
step "OpenAI Python SDK against the gateway"
GLM_GATEWAY_BIN="$PWD/target/debug/glm-gateway" .venv/bin/python -m pytest tests/python -q
step "OpenAI Node SDK (4.x and current) against the gateway"
GLM_GATEWAY_BIN="$PWD/target/debug/glm-gateway" TEST_DATABASE_URL="$TEST_DATABASE_URL" \
  node --test tests/node/*.test.mjs
drop_leftover_databases
