//! Facts of the API formats, below every layer that speaks them: OpenAI's error envelope and
//! token usage.

pub mod openai;
pub mod usage;
