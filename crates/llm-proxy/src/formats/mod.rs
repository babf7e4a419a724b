//! Facts of the API formats, below every layer that speaks them: OpenAI's error envelope, its
//! event streams, and token usage.

pub mod openai;
pub mod sse;
pub mod usage;
