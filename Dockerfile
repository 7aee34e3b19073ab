# Builds glm-gateway and runs it on a slim Debian image.
# Behind a firewall that blocks Docker Hub, scripts/docker-bases.sh makes both base images from
# a Debian mirror first (with EXTRA_CA=ca.pem for a TLS-inspecting proxy).
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
# make: jemalloc, the allocator, is built from C.
RUN apt-get update && apt-get install -y --no-install-recommends make && rm -rf /var/lib/apt/lists/*
# Dependencies first, against a dummy crate, so a change to src/ does not rebuild them.
COPY Cargo.toml Cargo.lock ./
COPY benches benches
RUN mkdir src \
 && echo 'fn main() {}' > src/main.rs \
 && touch src/lib.rs \
 && cargo build --release --locked \
 && rm -rf src
COPY src src
COPY migrations migrations
COPY config config
# COPY keeps the files' own times, which may be older than the dummy build.
RUN touch src/main.rs src/lib.rs \
 && cargo build --release --locked \
 && strip target/release/glm-gateway

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 glm \
 && useradd --system --uid 10001 --gid 10001 --home /var/lib/glm-gateway --create-home glm \
 && chmod 0700 /var/lib/glm-gateway
COPY --from=build /src/target/release/glm-gateway /usr/local/bin/glm-gateway
COPY config/gateway.toml /etc/glm-gateway/gateway.toml
# Numeric, so Kubernetes' runAsNonRoot can check it.
USER 10001:10001
WORKDIR /var/lib/glm-gateway
# The usage journal (and the SQLite default): rows not yet in the database live here, so the
# folder stays writable under --read-only and survives the container.
VOLUME /var/lib/glm-gateway
ENV GLM_GATEWAY_CONFIG=/etc/glm-gateway/gateway.toml \
    GLM_GATEWAY_LISTEN=0.0.0.0:8080 \
    DATABASE_URL=sqlite:///var/lib/glm-gateway/glm-gateway.db
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s \
  CMD ["glm-gateway", "healthcheck"]
ENTRYPOINT ["glm-gateway"]
CMD ["serve"]
