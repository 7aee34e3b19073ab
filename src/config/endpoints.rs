//! The `[embeddings]` and `[images]` sections: how far one request fans out upstream, and where
//! and how much the gateway may download to answer `b64_json`.

use std::time::Duration;

use serde::Deserialize;

use super::{positive, ConfigError};

#[derive(Debug, Clone)]
pub struct EmbeddingsConfig {
    /// Upstream calls in flight for one request whose input is split into batches.
    pub concurrency: usize,
}

#[derive(Debug, Clone)]
pub struct ImagesConfig {
    /// The largest `n` one request may ask for (each image is one upstream call).
    pub max_n: usize,
    /// Upstream calls in flight for one request.
    pub concurrency: usize,
    /// Hosts the gateway downloads images from for `b64_json`, besides the upstream's own:
    /// exact names, or `*.domain` for its subdomains. No other URL is ever fetched.
    pub fetch_hosts: Vec<String>,
    /// A downloaded image larger than this fails the request (502).
    pub max_image_bytes: usize,
    pub fetch_timeout: Duration,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileEmbeddings {
    concurrency: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileImages {
    max_n: Option<usize>,
    concurrency: Option<usize>,
    fetch_hosts: Option<Vec<String>>,
    max_image_bytes: Option<usize>,
    fetch_timeout_secs: Option<u64>,
}

/// Where Zhipu serves generated images from.
const DEFAULT_FETCH_HOSTS: &[&str] = &["*.bigmodel.cn", "*.z.ai"];

pub(super) fn embeddings_config(file: FileEmbeddings) -> Result<EmbeddingsConfig, ConfigError> {
    Ok(EmbeddingsConfig {
        concurrency: positive("embeddings.concurrency", file.concurrency.unwrap_or(4))?,
    })
}

pub(super) fn images_config(file: FileImages) -> Result<ImagesConfig, ConfigError> {
    Ok(ImagesConfig {
        max_n: positive("images.max_n", file.max_n.unwrap_or(10))?,
        concurrency: positive("images.concurrency", file.concurrency.unwrap_or(4))?,
        fetch_hosts: file.fetch_hosts.unwrap_or_else(|| {
            DEFAULT_FETCH_HOSTS
                .iter()
                .map(|h| (*h).to_owned())
                .collect()
        }),
        max_image_bytes: positive(
            "images.max_image_bytes",
            file.max_image_bytes.unwrap_or(20 << 20),
        )?,
        fetch_timeout: Duration::from_secs(positive(
            "images.fetch_timeout_secs",
            file.fetch_timeout_secs.unwrap_or(30),
        )?),
    })
}
