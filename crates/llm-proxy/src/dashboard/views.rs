//! The shapes the dashboard API answers with: camelCase throughout, and the original
//! project's names kept beside ours where it had them.

use serde::Serialize;

pub use crate::logs::record::ApiCall;
pub use crate::logs::{ServerEvent, StoreHealth};
pub use crate::upstream::oauth::TokenStatus;

/// Whether the proxy forwards to a target or answers locally.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Placeholder,
    Forwarding,
}

/// `GET /health`: liveness and mode, for anyone (no token needed, so no details of failures).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Health {
    pub status: &'static str,
    pub oauth: Option<TokenStatus>,
    pub log_store: StoreHealth,
    pub mode: Mode,
    /// The target's host.
    pub target: Option<String>,
    /// How the proxy authenticates to the target.
    pub auth: Option<&'static str>,
    /// The API the target speaks (`TARGET_API`).
    pub target_api: Option<&'static str>,
    pub version: &'static str,
    pub uptime_seconds: u64,
}

/// `GET /api/config`: the effective configuration. Secrets appear only as `set`/`not set`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigView {
    pub version: &'static str,
    pub port: u16,
    pub host: String,
    pub base_url: String,
    pub api_base_url: String,
    pub mode: Mode,
    /// The target endpoint, in forwarding mode.
    pub target: Option<String>,
    /// The API the target speaks (`TARGET_API`), in forwarding mode.
    pub target_api: Option<&'static str>,
    /// `MODEL_ALIASES` as written (`pattern=model,...`), empty for none.
    pub model_aliases: String,
    pub auth_kind: &'static str,
    pub oauth: Option<OAuthView>,
    pub secrets: Secrets,
    pub limits: Limits,
    pub logging: Logging,
    pub data_dir: String,
    pub log_store: StoreHealth,
    /// The original project's names: the port, the base URL tools use, `TARGET_ENDPOINT`
    /// (empty in placeholder mode) and `USE_PLACEHOLDER_MODE`.
    pub local_port: u16,
    pub local_base_url: String,
    pub target_endpoint: String,
    pub use_placeholder_mode: bool,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OAuthView {
    pub token_endpoint: String,
    pub client_id: String,
    pub scope: Option<String>,
    pub audience: Option<String>,
    pub refresh_buffer_minutes: u64,
    /// The original's name and unit for the same setting.
    pub refresh_buffer_ms: u64,
    pub grant_type: &'static str,
    /// The current token's health (never its value).
    pub token: Option<TokenStatus>,
}

/// Whether each secret is configured: `set` or `not set`, never its value.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Secrets {
    pub access_token: &'static str,
    pub target_api_key: &'static str,
    pub oauth_client_secret: &'static str,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Limits {
    pub connect_timeout_seconds: u64,
    pub request_timeout_seconds: u64,
    pub stream_idle_timeout_seconds: u64,
    pub max_request_body_mb: usize,
    pub shutdown_grace_seconds: u64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Logging {
    pub bodies: bool,
    pub body_max_kb: usize,
    pub max_entries: usize,
    pub max_age_days: u64,
}

/// A page of the call log; `next_cursor` continues it and is null on the last page.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CallPage<T> {
    pub data: Vec<T>,
    pub next_cursor: Option<i64>,
}

/// A page of server events, newest first.
#[derive(Debug, Serialize)]
pub struct EventPage<T> {
    pub data: Vec<T>,
}

/// `GET /api/logs`: both logs, as the original project served them.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BothLogs<C, E> {
    pub api_calls: Vec<C>,
    pub server_events: Vec<E>,
}

/// `DELETE /api/logs`: ours (`cleared`) and the original's (`success`, `message`).
#[derive(Debug, Serialize)]
pub struct Cleared {
    pub cleared: bool,
    pub success: bool,
    pub message: &'static str,
}
