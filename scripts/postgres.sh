# Sourced by scripts/test.sh and bench/run.sh: `ensure_postgres` makes sure PostgreSQL answers
# on $PGHOST:$PGPORT (default 127.0.0.1:5432), starting it, or installing it as root, when it
# does not.

PGHOST=${PGHOST:-127.0.0.1}
PGPORT=${PGPORT:-5432}

ensure_postgres() {
  if pg_isready -q -h "$PGHOST" -p "$PGPORT" 2>/dev/null; then return; fi
  printf '\n== %s\n' "starting PostgreSQL"
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
    if [ "$(id -u)" -ne 0 ]; then
      echo "PostgreSQL is not installed and this is not root: install it, or set TEST_DATABASE_URL" >&2
      exit 1
    fi
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    version=$(ls /etc/postgresql | sort -V | tail -n 1)
    sed -i 's/^\(local\|host\)\(.*\)\(peer\|scram-sha-256\|md5\)$/\1\2trust/' "/etc/postgresql/$version/main/pg_hba.conf"
  fi
  for version in $(ls /etc/postgresql); do
    pg_ctlcluster --skip-systemctl-redirect "$version" main start 2>/dev/null || true
  done
  for _ in $(seq 1 60); do
    pg_isready -q -h "$PGHOST" -p "$PGPORT" && return
    sleep 1
  done
  echo "PostgreSQL did not come up on $PGHOST:$PGPORT" >&2
  exit 1
}
