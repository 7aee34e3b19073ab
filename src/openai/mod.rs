//! OpenAI wire shapes and their translation to and from Zhipu's: chat (whole or streamed),
//! embeddings, images, and Zhipu's errors. Pure and synchronous; the callers do the I/O.

pub mod chat;
mod embeddings;
mod images;
mod messages;
mod params;
pub mod response;
pub mod responses;
pub mod stream;
mod tools;
pub mod zhipu_error;

pub use chat::{to_glm, ChatCompletionRequest, ChatMessage, GlmChatRequest, Stop, StreamOptions};
pub use embeddings::{EmbeddingPlan, EmbeddingRequest};
pub use images::{
    image_item, image_url, ImagePlan, ImageRequest, DEFAULT_MODEL as DEFAULT_IMAGE_MODEL,
};
pub use response::from_glm;
pub use stream::ChunkRewriter;
pub use zhipu_error::map_zhipu_error;
