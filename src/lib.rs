//! glm-gateway: an OpenAI-compatible gateway for Zhipu's GLM models.

pub mod config;
pub mod emulator;
pub mod error;
pub mod keys;
pub mod openai;
pub mod store;
