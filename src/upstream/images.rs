//! Downloads a generated image for `b64_json` answers: only from the upstream's own host or
//! the configured image hosts (never a URL from anywhere else), within a size cap and a timeout.

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;

use super::transport_error;
use crate::config::ImagesConfig;
use crate::error::{ApiError, ApiResult, ErrorCode};

pub struct ImageFetcher {
    http: reqwest::Client,
    /// Exact host names, or `.domain` suffixes for `*.domain` entries, on any port.
    hosts: Vec<String>,
    /// The upstream's own `host:port`.
    upstream: Option<String>,
    max_bytes: usize,
    timeout: std::time::Duration,
}

impl ImageFetcher {
    pub fn new(http: reqwest::Client, upstream_base: &str, config: &ImagesConfig) -> Self {
        let hosts = config
            .fetch_hosts
            .iter()
            .map(|h| h.trim_start_matches('*').to_ascii_lowercase())
            .collect();
        Self {
            http,
            hosts,
            upstream: url::Url::parse(upstream_base)
                .ok()
                .as_ref()
                .and_then(origin),
            max_bytes: config.max_image_bytes,
            timeout: config.fetch_timeout,
        }
    }

    /// Whether the gateway may download from `url`.
    pub fn allows(&self, url: &str) -> bool {
        let Ok(url) = url::Url::parse(url) else {
            return false;
        };
        let Some(host) = url.host_str().map(str::to_ascii_lowercase) else {
            return false;
        };
        let listed = self
            .hosts
            .iter()
            .any(|allowed| match allowed.strip_prefix('.') {
                Some(domain) => host.ends_with(allowed.as_str()) || host == domain,
                None => host == *allowed,
            });
        matches!(url.scheme(), "http" | "https")
            && url.username().is_empty()
            && (listed || origin(&url) == self.upstream)
    }

    pub async fn fetch(&self, url: &str) -> ApiResult<Bytes> {
        if !self.allows(url) {
            tracing::warn!(url, "refusing to download an image from an unlisted host");
            return Err(ApiError::new(
                ErrorCode::UpstreamImageHost,
                "The upstream's image URL is not on an allowed image host (images.fetch_hosts).",
            ));
        }
        let _timer = crate::telemetry::clock::UpstreamTimer::start();
        let deadline = tokio::time::Instant::now() + self.timeout;
        let timed_out =
            || ApiError::upstream_timeout("The upstream's image did not download in time.");
        let response = tokio::time::timeout_at(deadline, self.http.get(url).send())
            .await
            .map_err(|_| timed_out())?
            .map_err(|e| transport_error(&e))?;
        if !response.status().is_success() {
            return Err(ApiError::new(
                ErrorCode::UpstreamImageUnavailable,
                format!("The upstream's image answered {}.", response.status()),
            ));
        }
        let too_large = || {
            ApiError::new(
                ErrorCode::UpstreamImageTooLarge,
                "The upstream's image is larger than images.max_image_bytes.",
            )
        };
        if response
            .content_length()
            .is_some_and(|length| length > self.max_bytes as u64)
        {
            return Err(too_large());
        }
        let mut body = BytesMut::new();
        let mut stream = response.bytes_stream();
        loop {
            match tokio::time::timeout_at(deadline, stream.next()).await {
                Err(_) => return Err(timed_out()),
                Ok(None) => return Ok(body.freeze()),
                Ok(Some(Err(error))) => return Err(transport_error(&error)),
                Ok(Some(Ok(_))) if body.len() > self.max_bytes => return Err(too_large()),
                Ok(Some(Ok(chunk))) if body.len() + chunk.len() > self.max_bytes => {
                    return Err(too_large())
                }
                Ok(Some(Ok(chunk))) => body.extend_from_slice(&chunk),
            }
        }
    }
}

/// `host:port` of a URL, lowercase.
fn origin(url: &url::Url) -> Option<String> {
    let host = url.host_str()?.to_ascii_lowercase();
    Some(format!("{host}:{}", url.port_or_known_default()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fetcher(hosts: &[&str]) -> ImageFetcher {
        let mut config = crate::config::Config::from_toml("", &|_| None)
            .unwrap()
            .images;
        config.fetch_hosts = hosts.iter().map(|h| (*h).to_owned()).collect();
        ImageFetcher::new(
            reqwest::Client::new(),
            "http://127.0.0.1:9/api/paas/v4",
            &config,
        )
    }

    #[test]
    fn only_the_upstream_and_listed_hosts_are_fetched_from() {
        let f = fetcher(&["*.bigmodel.cn", "cdn.example.com"]);
        for ok in [
            "https://aigc-files.bigmodel.cn/x.png",
            "https://bigmodel.cn/x.png",
            "http://127.0.0.1:9/files/images/a.png",
            "https://cdn.example.com/a.png",
        ] {
            assert!(f.allows(ok), "{ok}");
        }
        for bad in [
            "https://evil.com/x.png",
            "https://bigmodel.cn.evil.com/x.png",
            "https://evilbigmodel.cn/x.png",
            "file:///etc/passwd",
            "http://127.0.0.1:10/x.png",
            "http://user@cdn.example.com/a.png",
            "not a url",
        ] {
            assert!(!f.allows(bad), "{bad}");
        }
    }
}
