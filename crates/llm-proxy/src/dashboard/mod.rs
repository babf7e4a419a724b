//! What the dashboard shows, independent of how it is asked for. The HTTP API under `/api`
//! (`routes::dashboard`) and the desktop window's commands (`src-tauri`) both call these
//! functions: one implementation, two transports.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;

use crate::config::{CredentialConfig, UpstreamConfig};
use crate::error::ProxyError;
use crate::logs::{CallQuery, EventQuery, Level, Live, Log};
use crate::state::AppState;

/// Page size when the client does not say, and the most it may ask for.
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;
/// How often the live feed sends a stats snapshot.
const STATS_TICK: Duration = Duration::from_secs(5);

/// Liveness and mode, as `/health` reports it.
pub fn health(state: &AppState) -> Value {
    let config = state.config();
    let (mode, target, auth) = match &config.upstream {
        UpstreamConfig::Placeholder => ("placeholder", None, None),
        UpstreamConfig::Target(target) => (
            "forwarding",
            target.endpoint.host_str().map(str::to_owned),
            Some(target.credential.kind()),
        ),
    };
    // `/health` needs no token: it shows a token failure's kind, not the server's words.
    let oauth = state
        .upstream()
        .and_then(|up| up.token_source())
        .map(|source| source.public_status());
    json!({
        "status": "healthy",
        "oauth": oauth,
        "logStore": state.log().health(),
        "mode": mode,
        "target": target,
        "auth": auth,
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_seconds": state.uptime().as_secs(),
    })
}

/// The effective configuration. Secrets appear only as `set` or `not set`.
pub fn config(state: &AppState) -> Value {
    let config = state.config();
    let base_url = state.public_base_url();
    let set = |present: bool| if present { "set" } else { "not set" };
    let (mode, target, auth, key, client_secret, oauth) = match &config.upstream {
        UpstreamConfig::Placeholder => ("placeholder", None, "none", false, false, Value::Null),
        UpstreamConfig::Target(target) => {
            let oauth = match &target.credential {
                CredentialConfig::OAuth(o) => json!({
                    "tokenEndpoint": o.token_endpoint.as_str(),
                    "clientId": o.client_id,
                    "scope": o.scope,
                    "audience": o.audience,
                    "refreshBufferMinutes": o.refresh_buffer.as_secs() / 60,
                    "token": state.upstream().and_then(|u| u.token_source()).map(|s| s.status()),
                }),
                _ => Value::Null,
            };
            (
                "forwarding",
                Some(target.endpoint.as_str().to_owned()),
                target.credential.kind(),
                matches!(target.credential, CredentialConfig::ApiKey(_)),
                matches!(target.credential, CredentialConfig::OAuth(_)),
                oauth,
            )
        }
    };
    let limits = &config.limits;
    json!({
        "version": env!("CARGO_PKG_VERSION"),
        "port": state.local_addr().port(),
        "host": state.local_addr().ip().to_string(),
        "baseUrl": base_url,
        "apiBaseUrl": format!("{base_url}/v1"),
        "mode": mode,
        "target": target,
        "authKind": auth,
        "oauth": oauth,
        "secrets": {
            "accessToken": set(true),
            "targetApiKey": set(key),
            "oauthClientSecret": set(client_secret),
        },
        "limits": {
            "connectTimeoutSeconds": limits.connect_timeout.as_secs(),
            "requestTimeoutSeconds": limits.request_timeout.as_secs(),
            "streamIdleTimeoutSeconds": limits.stream_idle_timeout.as_secs(),
            "maxRequestBodyMb": limits.max_request_body_bytes / (1024 * 1024),
            "shutdownGraceSeconds": limits.shutdown_grace.as_secs(),
        },
        "logging": {
            "bodies": config.logging.bodies,
            "bodyMaxKb": config.logging.body_max_bytes / 1024,
            "maxEntries": config.logging.max_entries,
            "maxAgeDays": config.logging.max_age.as_secs() / 86_400,
        },
        "dataDir": config.data_dir.display().to_string(),
        "logStore": state.log().health(),
    })
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
}

impl CallParams {
    fn query(self) -> Result<CallQuery, ProxyError> {
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
        Ok(CallQuery {
            limit: limit(self.limit),
            before: self.cursor,
            model: self.model.filter(|m| !m.is_empty()),
            status_class,
            text: self.q.filter(|q| !q.is_empty()),
        })
    }
}

fn limit(asked: Option<usize>) -> usize {
    asked.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT)
}

/// Newest first. `nextCursor` continues the listing; it is null on the last page.
pub async fn calls(state: &AppState, params: CallParams) -> Result<Value, ProxyError> {
    let query = params.query()?;
    let limit = query.limit;
    let data = state.log().call_summaries(query).await;
    let next_cursor = (data.len() == limit)
        .then(|| data.last().and_then(|c| c["id"].as_i64()))
        .flatten();
    Ok(json!({"data": data, "nextCursor": next_cursor}))
}

/// One call with its headers and bodies.
pub async fn call(state: &AppState, id: i64) -> Result<Value, ProxyError> {
    match state.log().call(id).await {
        Some(call) => Ok(serde_json::to_value(call).unwrap_or_default()),
        None => Err(ProxyError::NotFound {
            message: format!("No API call with id {id}."),
            code: "not_found",
        }),
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct EventParams {
    pub limit: Option<usize>,
    /// The lowest level shown: debug, info, warn, error.
    pub level: Option<String>,
}

pub async fn server_events(state: &AppState, params: EventParams) -> Value {
    let query = EventQuery {
        limit: limit(params.limit),
        min_level: params.level.as_deref().map_or(Level::Debug, Level::parse),
    };
    json!({"data": state.log().events(query).await})
}

/// Both logs in the shape the original project's tools expect.
pub async fn logs(state: &AppState) -> Value {
    let calls = state
        .log()
        .call_summaries(CallQuery {
            limit: DEFAULT_LIMIT,
            ..CallQuery::default()
        })
        .await;
    let events = state
        .log()
        .events(EventQuery {
            limit: DEFAULT_LIMIT,
            min_level: Level::Debug,
        })
        .await;
    json!({"apiCalls": calls, "serverEvents": events})
}

/// Empties both logs; `origin` says who asked, for the server event.
pub async fn clear_logs(state: &AppState, origin: &str) -> Value {
    state.log().clear().await;
    state
        .log()
        .event(Level::Info, format!("logs cleared from {origin}"));
    json!({"cleared": true})
}

pub fn stats(state: &AppState) -> Value {
    state.log().stats()
}

/// One message of the live feed: its name (the SSE event name, the desktop event name) and
/// its data as JSON text.
#[derive(Debug)]
pub struct LiveUpdate {
    pub name: &'static str,
    pub data: String,
}

/// One subscriber's view of the live log: new calls, server events, a stats snapshot every
/// few seconds. Ends when the server stops.
pub struct LiveFeed {
    receiver: tokio::sync::broadcast::Receiver<Live>,
    ticks: tokio::time::Interval,
    log: Log,
    shutdown: tokio_util::sync::CancellationToken,
}

impl LiveFeed {
    pub fn new(state: &AppState) -> Self {
        Self {
            receiver: state.log().subscribe(),
            ticks: tokio::time::interval(STATS_TICK),
            log: state.log().clone(),
            shutdown: state.shutdown_token().clone(),
        }
    }

    /// The next update; `None` when the server is stopping.
    pub async fn next(&mut self) -> Option<LiveUpdate> {
        loop {
            let (name, data) = tokio::select! {
                () = self.shutdown.cancelled() => return None,
                _ = self.ticks.tick() => ("stats", serde_json::to_string(&self.log.stats())),
                received = self.receiver.recv() => match received {
                    Ok(Live::Call(call)) => ("call", serde_json::to_string(&*call)),
                    Ok(Live::Event(event)) => ("serverEvent", serde_json::to_string(&*event)),
                    Ok(Live::Cleared) => ("cleared", Ok("{}".to_owned())),
                    // A slow reader missed some: tell it to reload rather than show a gap.
                    Err(RecvError::Lagged(missed)) => ("lagged", Ok(missed.to_string())),
                    Err(RecvError::Closed) => return None,
                },
            };
            if let Ok(data) = data {
                return Some(LiveUpdate { name, data });
            }
        }
    }
}
