//! Local LLM Proxy: an OpenAI-compatible proxy on localhost that forwards to a company's own
//! LLM endpoint.
//!
//! This crate is the core, with no GUI dependency: the headless binary (`src/main.rs`) and the
//! desktop shell (`src-tauri/`) are thin layers over it.
//!
//! How a request flows:
//! - [`server`] accepts connections and routes them; [`auth`] checks the access token on `/v1`.
//! - [`routes`] holds thin handlers. [`request`] reads a body within its limit and peeks at the
//!   few fields routing needs, without re-serializing anything.
//! - With no target, [`placeholder`] answers locally. Otherwise [`forward`] sends the request
//!   through the [`upstream`] client (one pooled connection to the target, with its credential)
//!   and relays the answer: whole JSON, server-sent events, or a raw pass-through. With OAuth,
//!   [`upstream::oauth`] keeps a token fresh in the background, reading time from [`clock`].
//! - Every failure is a [`error::ProxyError`], answered in OpenAI's error envelope.
//!
//! Configuration is [`config::Config`], plain data; [`cli::Args`] builds one from flags,
//! environment variables and `.env`, with the names of the original Node project.

pub mod auth;
pub mod auth_limiter;
pub mod check;
pub mod cli;
pub mod clock;
pub mod config;
pub mod connection;
pub mod credential_headers;
pub mod dashboard;
pub mod error;
pub mod error_chain;
pub mod formats;
pub mod forward;
pub mod guard;
pub mod ids;
pub mod logs;
pub mod metrics;
pub mod model_aliases;
pub mod normalize;
pub mod notes;
pub mod placeholder;
pub mod request;
pub mod routes;
pub mod runtime;
pub mod server;
pub mod sessions;
pub mod state;
pub mod stats;
pub mod timed_body;
pub mod ui;
pub mod upstream;

pub use config::Config;
pub use server::{ServerHandle, StartError, router, serve, serve_with_clock, start};
