//! What the dashboard shows, independent of how it is asked for. The HTTP API under `/api`
//! (`routes::dashboard`) and the desktop window's commands (`src-tauri`) both call these
//! functions: one implementation, two transports.

mod live;
pub mod views;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use self::live::{LiveFeed, LiveUpdate};
use self::views::{
    BothLogs, CallPage, Cleared, ConfigView, EventPage, Health, Limits, Logging, Mode, OAuthView,
    Secrets,
};
use crate::config::{CredentialConfig, UpstreamConfig};
use crate::error::ProxyError;
use crate::logs::record::ApiCall;
use crate::logs::{CallQuery, EventQuery, Level, ServerEvent};
use crate::state::AppState;

/// Page size when the client does not say, and the most it may ask for.
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;

/// Liveness and mode, as `/health` reports it.
pub fn health(state: &AppState) -> Health {
    let config = state.config();
    let (mode, target, auth, target_api) = match &config.upstream {
        UpstreamConfig::Placeholder => (Mode::Placeholder, None, None, None),
        UpstreamConfig::Target(target) => (
            Mode::Forwarding,
            target.endpoint.host_str().map(str::to_owned),
            Some(target.credential.kind()),
            Some(target.api.name()),
        ),
    };
    Health {
        status: "healthy",
        // `/health` needs no token: it shows a token failure's kind, not the server's words.
        oauth: state
            .upstream()
            .and_then(|up| up.token_source())
            .map(|source| source.public_status()),
        log_store: state.log().health(),
        mode,
        target,
        auth,
        target_api,
        version: env!("CARGO_PKG_VERSION"),
        uptime_seconds: state.uptime().as_secs(),
    }
}

/// The effective configuration. Secrets appear only as `set` or `not set`.
pub fn config(state: &AppState) -> ConfigView {
    let config = state.config();
    let base_url = state.public_base_url();
    let set = |present: bool| if present { "set" } else { "not set" };
    let (mode, target, auth_kind, oauth) = match &config.upstream {
        UpstreamConfig::Placeholder => (Mode::Placeholder, None, "none", None),
        UpstreamConfig::Target(target) => {
            let oauth = match &target.credential {
                CredentialConfig::OAuth(o) => Some(OAuthView {
                    token_endpoint: o.token_endpoint.as_str().to_owned(),
                    client_id: o.client_id.clone(),
                    scope: o.scope.clone(),
                    audience: o.audience.clone(),
                    refresh_buffer_minutes: o.refresh_buffer.as_secs() / 60,
                    refresh_buffer_ms: o.refresh_buffer.as_millis() as u64,
                    grant_type: "client_credentials",
                    token: state
                        .upstream()
                        .and_then(|u| u.token_source())
                        .map(|s| s.status()),
                }),
                _ => None,
            };
            (
                Mode::Forwarding,
                Some(target.endpoint.as_str().to_owned()),
                target.credential.kind(),
                oauth,
            )
        }
    };
    let (credential, target_api) = match &config.upstream {
        UpstreamConfig::Target(target) => (Some(&target.credential), Some(target.api.name())),
        UpstreamConfig::Placeholder => (None, None),
    };
    let limits = &config.limits;
    let port = state.local_addr().port();
    ConfigView {
        version: env!("CARGO_PKG_VERSION"),
        port,
        host: state.local_addr().ip().to_string(),
        api_base_url: format!("{base_url}/v1"),
        local_base_url: base_url.clone(),
        base_url,
        mode,
        target_endpoint: target.clone().unwrap_or_default(),
        target,
        target_api,
        model_aliases: config.model_aliases.to_setting(),
        auth_kind,
        oauth,
        secrets: Secrets {
            access_token: set(true),
            target_api_key: set(matches!(credential, Some(CredentialConfig::ApiKey(_)))),
            oauth_client_secret: set(matches!(credential, Some(CredentialConfig::OAuth(_)))),
        },
        limits: Limits {
            connect_timeout_seconds: limits.connect_timeout.as_secs(),
            request_timeout_seconds: limits.request_timeout.as_secs(),
            stream_idle_timeout_seconds: limits.stream_idle_timeout.as_secs(),
            max_request_body_mb: limits.max_request_body_bytes / (1024 * 1024),
            shutdown_grace_seconds: limits.shutdown_grace.as_secs(),
        },
        logging: Logging {
            bodies: config.logging.bodies,
            body_max_kb: config.logging.body_max_bytes / 1024,
            max_entries: config.logging.max_entries,
            max_age_days: config.logging.max_age.as_secs() / 86_400,
        },
        data_dir: config.data_dir.display().to_string(),
        log_store: state.log().health(),
        local_port: port,
        use_placeholder_mode: mode == Mode::Placeholder,
    }
}

/// A page of the API call log, as asked for in a query string or a command's arguments.
#[derive(Debug, Default, Deserialize)]
pub struct CallParams {
    pub limit: Option<usize>,
    /// The `nextCursor` of the previous page.
    pub cursor: Option<i64>,
    pub model: Option<String>,
    /// `2xx`, `4xx`, `5xx` (or `2`, `4`, `5`).
    pub status: Option<String>,
    /// Text to find in the path, model, error or bodies.
    pub q: Option<String>,
    /// `summary` lists calls without headers and bodies (what the dashboard's table needs);
    /// whole calls by default, as the original project listed them.
    #[serde(default)]
    pub fields: Fields,
}

/// How much of each call a listing holds.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fields {
    #[default]
    Full,
    Summary,
}

impl CallParams {
    fn query(self) -> Result<(CallQuery, Fields), ProxyError> {
        let status_class = match self.status.as_deref().map(|s| s.trim_end_matches("xx")) {
            None | Some("") => None,
            Some(class) => match class.parse::<u16>() {
                Ok(class @ 1..=5) => Some(class),
                _ => {
                    return Err(ProxyError::InvalidRequest {
                        message: "'status' must be a status class such as 2xx, 4xx or 5xx.".into(),
                        param: Some("status"),
                        code: Some("invalid_value"),
                    });
                }
            },
        };
        let query = CallQuery {
            limit: limit(self.limit),
            before: self.cursor,
            model: self.model.filter(|m| !m.is_empty()),
            status_class,
            text: self.q.filter(|q| !q.is_empty()),
        };
        Ok((query, self.fields))
    }
}

fn limit(asked: Option<usize>) -> usize {
    asked.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT)
}

/// A page of the call log, newest first: whole calls, or their summaries.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Calls {
    Full(CallPage<ApiCall>),
    Summaries(CallPage<Value>),
}

/// Newest first. `nextCursor` continues the listing; it is null on the last page.
pub async fn calls(state: &AppState, params: CallParams) -> Result<Calls, ProxyError> {
    let (query, fields) = params.query()?;
    let limit = query.limit;
    let next_cursor = |len: usize, last: Option<i64>| (len == limit).then_some(last).flatten();
    Ok(match fields {
        Fields::Full => {
            let data = state.log().calls(query).await;
            let next_cursor = next_cursor(data.len(), data.last().map(|c| c.id));
            Calls::Full(CallPage { data, next_cursor })
        }
        Fields::Summary => {
            let data = state.log().call_summaries(query).await;
            let next_cursor = next_cursor(data.len(), data.last().and_then(|c| c["id"].as_i64()));
            Calls::Summaries(CallPage { data, next_cursor })
        }
    })
}

/// One call with its headers and bodies.
pub async fn call(state: &AppState, id: i64) -> Result<ApiCall, ProxyError> {
    state
        .log()
        .call(id)
        .await
        .ok_or_else(|| ProxyError::NotFound {
            message: format!("No API call with id {id}."),
            code: "not_found",
        })
}

#[derive(Debug, Default, Deserialize)]
pub struct EventParams {
    pub limit: Option<usize>,
    /// The lowest level shown: debug, info, warn, error.
    pub level: Option<String>,
}

pub async fn server_events(state: &AppState, params: EventParams) -> EventPage<ServerEvent> {
    let query = EventQuery {
        limit: limit(params.limit),
        min_level: params.level.as_deref().map_or(Level::Debug, Level::parse),
    };
    EventPage {
        data: state.log().events(query).await,
    }
}

/// Both logs in the shape the original project's tools expect: whole calls.
pub async fn logs(state: &AppState) -> BothLogs<ApiCall, ServerEvent> {
    let api_calls = state
        .log()
        .calls(CallQuery {
            limit: DEFAULT_LIMIT,
            ..CallQuery::default()
        })
        .await;
    let server_events = state
        .log()
        .events(EventQuery {
            limit: DEFAULT_LIMIT,
            min_level: Level::Debug,
        })
        .await;
    BothLogs {
        api_calls,
        server_events,
    }
}

/// Empties both logs; `origin` says who asked, for the server event.
pub async fn clear_logs(state: &AppState, origin: &str) -> Cleared {
    state.log().clear().await;
    state
        .log()
        .event(Level::Info, format!("logs cleared from {origin}"));
    Cleared {
        cleared: true,
        success: true,
        message: "All logs cleared",
    }
}

pub fn stats(state: &AppState) -> Value {
    state.log().stats()
}
