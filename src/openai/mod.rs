//! OpenAI wire shapes and their translation to and from Zhipu's.
