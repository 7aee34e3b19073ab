#!/usr/bin/env bash
# Builds the base images the Dockerfile and docker-compose.yml name from a Debian mirror
# alone, for machines that cannot reach Docker Hub (a firewall, or a network where it is
# blocked): debian:bookworm-slim, rust:1.95-slim-bookworm (the Debian base plus this machine's
# Rust toolchain) and postgres:15-bookworm (Debian's postgresql-15 with the official image's
# POSTGRES_USER / POSTGRES_PASSWORD / POSTGRES_DB conventions). An image that already exists is
# kept, so a second run costs nothing; --force builds them again.
#
# Needs root, debootstrap, docker and rustup's toolchain. Extra CA for a TLS-inspecting proxy:
# EXTRA_CA=/path/to/ca.pem is added to each image's trust store.
# Mirror: DEBIAN_MIRROR (default http://deb.debian.org/debian).
set -euo pipefail
cd "$(dirname "$0")/.."

mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
force=0
[ "${1:-}" = "--force" ] && force=1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

have() { [ "$force" = 0 ] && docker image inspect "$1" >/dev/null 2>&1; }
log() { echo "docker-bases: $*"; }

# Writes the optional extra CA into the build context of an image at $1.
add_ca() {
  mkdir -p "$1/ca"
  if [ -n "${EXTRA_CA:-}" ]; then cp "$EXTRA_CA" "$1/ca/extra.crt"; fi
}

if ! have debian:bookworm-slim; then
  log "debootstrap bookworm (minbase) from $mirror"
  debootstrap --variant=minbase bookworm "$work/root" "$mirror" >"$work/debootstrap.log" 2>&1 ||
    { tail -n 20 "$work/debootstrap.log" >&2; exit 1; }
  # As the official slim image: no docs, no apt lists, no caches.
  rm -rf "$work/root"/var/lib/apt/lists/* "$work/root"/var/cache/apt/*.bin \
    "$work/root"/usr/share/doc/* "$work/root"/usr/share/man/* "$work/root"/usr/share/info/*
  echo "deb $mirror bookworm main" >"$work/root/etc/apt/sources.list"
  tar -C "$work/root" -c . | docker import \
    -c 'CMD ["bash"]' -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    - debian:bookworm-slim >/dev/null
  rm -rf "$work/root"
fi

if ! have rust:1.95-slim-bookworm; then
  log "rust:1.95-slim-bookworm from the local toolchain"
  sysroot=$(rustc +1.95.0 --print sysroot 2>/dev/null || rustc --print sysroot)
  mkdir -p "$work/rust"
  cp -a "$sysroot" "$work/rust/toolchain"
  rm -rf "$work/rust/toolchain/share/doc" "$work/rust/toolchain/lib/rustlib/src"
  add_ca "$work/rust"
  cat >"$work/rust/Dockerfile" <<'DOCKERFILE'
FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY ca/ /usr/local/share/ca-certificates/
RUN update-ca-certificates
COPY toolchain /usr/local/rust
ENV PATH=/usr/local/rust/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    CARGO_HOME=/usr/local/cargo
DOCKERFILE
  docker build -q -t rust:1.95-slim-bookworm "$work/rust" >/dev/null
  rm -rf "$work/rust"
fi

if ! have postgres:15-bookworm; then
  log "postgres:15-bookworm from Debian's postgresql-15"
  mkdir -p "$work/pg"
  cp scripts/docker/postgres-entrypoint.sh "$work/pg/entrypoint.sh"
  cat >"$work/pg/Dockerfile" <<'DOCKERFILE'
FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends postgresql-15 \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /var/lib/postgresql/data /var/run/postgresql \
 && chown -R postgres:postgres /var/lib/postgresql /var/run/postgresql
COPY entrypoint.sh /usr/local/bin/docker-entrypoint.sh
ENV PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PGDATA=/var/lib/postgresql/data
VOLUME /var/lib/postgresql/data
EXPOSE 5432
STOPSIGNAL SIGINT
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["postgres"]
DOCKERFILE
  docker build -q -t postgres:15-bookworm "$work/pg" >/dev/null
fi
log "bases ready: debian:bookworm-slim rust:1.95-slim-bookworm postgres:15-bookworm"
