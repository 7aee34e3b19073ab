//! OpenAI wire shapes and their translation to and from Zhipu's: the chat request, the answer
//! (whole or streamed) and Zhipu's errors. Pure and synchronous; the callers do the I/O.

pub mod chat;
pub mod emulate;
mod messages;
mod params;
pub mod response;
pub mod stream;
mod tools;
pub mod zhipu_error;

pub use chat::{to_glm, ChatCompletionRequest, ChatMessage, GlmChatRequest, Stop, StreamOptions};
pub use emulate::Emulation;
pub use response::from_glm;
pub use stream::ChunkRewriter;
pub use zhipu_error::map_zhipu_error;
