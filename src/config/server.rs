//! The `[server]` section: body limits, connection and request bounds, shutdown and key
//! refresh timing, validated into `ServerConfig`.

use std::time::Duration;

use super::{positive, ConfigError, FileServer, ServerConfig};

pub(super) fn server_config(file: &FileServer) -> Result<ServerConfig, ConfigError> {
    let max_body_bytes = positive(
        "server.max_body_bytes",
        file.max_body_bytes.unwrap_or(16 << 20),
    )?;
    let max_buffered_body_bytes = positive(
        "server.max_buffered_body_bytes",
        file.max_buffered_body_bytes.unwrap_or(256 << 20),
    )?;
    if max_buffered_body_bytes < max_body_bytes || max_buffered_body_bytes > u32::MAX as usize {
        return Err(ConfigError::new(
            "server.max_buffered_body_bytes",
            "must be at least server.max_body_bytes and at most 4 GiB",
        ));
    }
    Ok(ServerConfig {
        max_body_bytes,
        shutdown_grace: Duration::from_secs(file.shutdown_grace_secs.unwrap_or(30)),
        key_refresh: Duration::from_millis(positive(
            "server.key_refresh_ms",
            file.key_refresh_ms.unwrap_or(500),
        )?),
        header_timeout: Duration::from_millis(positive(
            "server.header_timeout_ms",
            file.header_timeout_ms.unwrap_or(10_000),
        )?),
        body_timeout: Duration::from_secs(positive(
            "server.body_timeout_secs",
            file.body_timeout_secs.unwrap_or(60),
        )?),
        idle_timeout: Duration::from_secs(positive(
            "server.idle_timeout_secs",
            file.idle_timeout_secs.unwrap_or(75),
        )?),
        max_connections: positive(
            "server.max_connections",
            file.max_connections.unwrap_or(10_000),
        )?,
        max_in_flight: positive("server.max_in_flight", file.max_in_flight.unwrap_or(512))?,
        max_buffered_body_bytes,
        max_sse_event_bytes: positive(
            "server.max_sse_event_bytes",
            file.max_sse_event_bytes.unwrap_or(4 << 20),
        )?,
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::config::Config;

    fn load(toml: &str) -> Result<Config, crate::config::ConfigError> {
        Config::from_toml(toml, &|_| None)
    }

    #[test]
    fn bounds_have_defaults_and_can_be_set() {
        let server = load("").unwrap().server;
        assert_eq!(server.header_timeout, Duration::from_secs(10));
        assert_eq!(server.body_timeout, Duration::from_secs(60));
        assert_eq!(server.idle_timeout, Duration::from_secs(75));
        assert_eq!(server.max_connections, 10_000);
        assert_eq!(server.max_in_flight, 512);
        assert_eq!(server.max_buffered_body_bytes, 256 << 20);
        assert_eq!(server.max_sse_event_bytes, 4 << 20);
        let config = load(
            "[server]\nheader_timeout_ms = 500\nbody_timeout_secs = 5\nidle_timeout_secs = 6\n\
             max_connections = 7\nmax_in_flight = 8\nmax_buffered_body_bytes = 33554432\n\
             max_sse_event_bytes = 1024\n[zhipu]\nstream_idle_timeout_secs = 9\n",
        )
        .unwrap();
        let server = config.server;
        assert_eq!(server.header_timeout, Duration::from_millis(500));
        assert_eq!((server.max_connections, server.max_in_flight), (7, 8));
        assert_eq!(server.max_sse_event_bytes, 1024);
        assert_eq!(config.zhipu.stream_idle_timeout, Duration::from_secs(9));
    }

    #[test]
    fn bad_bounds_name_the_setting() {
        let error = load("[server]\nmax_in_flight = 0\n").unwrap_err();
        assert_eq!(error.setting, "server.max_in_flight");
        let error = load("[server]\nmax_buffered_body_bytes = 1024\n").unwrap_err();
        assert_eq!(error.setting, "server.max_buffered_body_bytes");
        let error = load("[zhipu]\nstream_idle_timeout_secs = 0\n").unwrap_err();
        assert_eq!(error.setting, "zhipu.stream_idle_timeout_secs");
    }
}
