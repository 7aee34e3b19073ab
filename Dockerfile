# Builds glm-gateway and runs it on a slim Debian image.
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
 && useradd --system --home /var/lib/glm-gateway --create-home glm
COPY --from=build /src/target/release/glm-gateway /usr/local/bin/glm-gateway
COPY config/gateway.toml /etc/glm-gateway/gateway.toml
USER glm
WORKDIR /var/lib/glm-gateway
ENV GLM_GATEWAY_CONFIG=/etc/glm-gateway/gateway.toml \
    GLM_GATEWAY_LISTEN=0.0.0.0:8080 \
    DATABASE_URL=sqlite:///var/lib/glm-gateway/glm-gateway.db
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s \
  CMD ["glm-gateway", "healthcheck"]
ENTRYPOINT ["glm-gateway"]
CMD ["serve"]
