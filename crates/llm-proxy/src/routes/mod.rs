//! HTTP routes: thin handlers that extract, call the domain code, and answer.

pub mod anthropic;
pub(crate) mod chat_relay;
pub mod dashboard;
pub mod health;
pub mod openai;
pub mod responses;
