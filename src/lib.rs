//! glm-gateway: an OpenAI-compatible gateway for Zhipu's GLM models.

pub mod app;
pub mod catalogue;
pub mod cli;
pub mod config;
pub mod domain;
pub mod emulator;
pub mod error;
pub mod json_path;
pub mod keys;
pub mod limits;
pub mod openai;
pub mod relay;
pub mod request_id;
pub mod routes;
pub mod server;
pub mod sse;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod upstream;
pub mod usage;
