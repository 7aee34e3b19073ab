//! OpenAI wire shapes and their translation to and from Zhipu's: the chat request, the answer
//! (whole or streamed) and Zhipu's errors. Pure and synchronous; the callers do the I/O.

pub mod response;
pub mod zhipu_error;

pub use response::from_glm;
pub use zhipu_error::map_zhipu_error;
