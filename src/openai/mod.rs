//! OpenAI wire shapes and their translation to and from Zhipu's: chat (whole or streamed),
//! embeddings and images. Pure and synchronous; the callers do the I/O.

pub mod body;
pub mod chat;
mod embeddings;
pub mod emulate;
mod images;
mod messages;
mod params;
pub mod request;
pub mod response;
pub mod responses;
pub mod stream;
mod tools;

pub use chat::{to_glm, GlmChatRequest};
pub use embeddings::{EmbeddingPlan, EmbeddingRequest};
pub use emulate::Emulation;
pub use images::{
    image_item, image_url, ImagePlan, ImageRequest, DEFAULT_MODEL as DEFAULT_IMAGE_MODEL,
};
pub use request::{ChatCompletionRequest, ChatMessage, Stop, StreamOptions};
pub use response::from_glm;
pub use stream::ChunkRewriter;
