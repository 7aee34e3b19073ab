//! `glm-gateway healthcheck`: a probe of a running gateway for container health checks. One
//! line out; exit 0 on a 2xx answer within 2 s, 1 on anything else (never 2, which Docker
//! reserves).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use crate::config::Config;

const TIMEOUT: Duration = Duration::from_secs(2);

/// The URL probed when none is given: the `listen` address (loopback when it is a wildcard)
/// and `/healthz`, or `/readyz` when `ready`.
pub fn default_url(listen: SocketAddr, ready: bool) -> String {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    let path = if ready { "/readyz" } else { "/healthz" };
    format!("http://{}{path}", SocketAddr::new(ip, listen.port()))
}

pub fn run(config_path: Option<&Path>, url: Option<String>, ready: bool) -> ExitCode {
    let url = match url {
        Some(url) => url,
        None => match Config::load(config_path) {
            Ok(config) => default_url(config.listen, ready),
            Err(error) => return unhealthy(format_args!("{error}")),
        },
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => return unhealthy(format_args!("{error}")),
    };
    match runtime.block_on(probe(&url)) {
        Ok(status) if status.is_success() => {
            super::say(format_args!("healthy: {url} answered {status}"));
            ExitCode::SUCCESS
        }
        Ok(status) => unhealthy(format_args!("{url} answered {status}")),
        Err(error) => unhealthy(format_args!("{url}: {error}")),
    }
}

async fn probe(url: &str) -> Result<reqwest::StatusCode, reqwest::Error> {
    let client = reqwest::Client::builder()
        .timeout(TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    Ok(client.get(url).send().await?.status())
}

fn unhealthy(reason: std::fmt::Arguments<'_>) -> ExitCode {
    super::say(format_args!("unhealthy: {reason}"));
    ExitCode::FAILURE
}

#[cfg(test)]
mod tests {
    use super::default_url;

    #[test]
    fn the_default_url_follows_listen_and_uses_loopback_for_a_wildcard() {
        let url = |listen: &str, ready| default_url(listen.parse().unwrap(), ready);
        assert_eq!(url("0.0.0.0:8080", false), "http://127.0.0.1:8080/healthz");
        assert_eq!(url("[::]:9000", true), "http://[::1]:9000/readyz");
        assert_eq!(url("10.1.2.3:8080", true), "http://10.1.2.3:8080/readyz");
    }
}
