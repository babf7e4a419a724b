//! HTTP routes: thin handlers that extract, call the domain code, and answer.

pub mod anthropic;
pub mod dashboard;
pub mod health;
pub mod openai;
