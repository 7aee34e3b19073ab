# Builds glm-gateway and runs it on a slim Debian image.
FROM rust:1-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src src
COPY benches benches
COPY migrations migrations
COPY config config
RUN cargo build --release --locked && strip target/release/glm-gateway

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
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
  CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
ENTRYPOINT ["glm-gateway"]
CMD ["serve"]
