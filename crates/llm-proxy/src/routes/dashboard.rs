//! The dashboard API under `/api` (JSON, camelCase, authenticated), and `/metrics`.

use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;

use crate::auth::{self, SESSION_COOKIE, SESSION_LIFETIME};
use crate::config::{CredentialConfig, UpstreamConfig};
use crate::error::ProxyError;
use crate::guard::Peer;
use crate::logs::{CallQuery, EventQuery, Level, Live};
use crate::server::AppState;

/// Page size when the client does not say, and the most it may ask for.
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;
/// How often `/api/events` sends a stats snapshot.
const STATS_TICK: Duration = Duration::from_secs(5);

/// The effective configuration. Secrets appear only as `set` or `not set`.
pub async fn config(State(state): State<AppState>) -> Json<Value> {
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
    Json(json!({
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
    }))
}

#[derive(Debug, Deserialize)]
pub struct CallParams {
    limit: Option<usize>,
    /// The `nextCursor` of the previous page.
    cursor: Option<i64>,
    model: Option<String>,
    /// `2xx`, `4xx`, `5xx` (or `2`, `4`, `5`).
    status: Option<String>,
    /// Text to find in the path, model, error or bodies.
    q: Option<String>,
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
pub async fn api_calls(
    State(state): State<AppState>,
    params: Result<Query<CallParams>, QueryRejection>,
) -> Result<Json<Value>, ProxyError> {
    let Query(params) = params?;
    let query = params.query()?;
    let limit = query.limit;
    let calls = state.log().calls(query).await;
    let next_cursor = (calls.len() == limit)
        .then(|| calls.last().map(|c| c.id))
        .flatten();
    let data: Vec<Value> = calls.iter().map(|c| c.summary()).collect();
    Ok(Json(json!({"data": data, "nextCursor": next_cursor})))
}

pub async fn api_call(
    State(state): State<AppState>,
    id: Result<Path<i64>, PathRejection>,
) -> Result<Json<Value>, ProxyError> {
    let Path(id) = id?;
    match state.log().call(id).await {
        Some(call) => Ok(Json(serde_json::to_value(call).unwrap_or_default())),
        None => Err(ProxyError::NotFound {
            message: format!("No API call with id {id}."),
            code: "not_found",
        }),
    }
}

#[derive(Debug, Deserialize)]
pub struct EventParams {
    limit: Option<usize>,
    /// The lowest level shown: debug, info, warn, error.
    level: Option<String>,
}

pub async fn server_events(
    State(state): State<AppState>,
    params: Result<Query<EventParams>, QueryRejection>,
) -> Result<Json<Value>, ProxyError> {
    let Query(params) = params?;
    let query = EventQuery {
        limit: limit(params.limit),
        min_level: params.level.as_deref().map_or(Level::Debug, Level::parse),
    };
    Ok(Json(json!({"data": state.log().events(query).await})))
}

/// Both logs in the shape the original project's tools expect.
pub async fn logs(State(state): State<AppState>) -> Json<Value> {
    let calls = state
        .log()
        .calls(CallQuery {
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
    let calls: Vec<Value> = calls.iter().map(|c| c.summary()).collect();
    Json(json!({"apiCalls": calls, "serverEvents": events}))
}

pub async fn clear_logs(State(state): State<AppState>) -> Json<Value> {
    state.log().clear().await;
    state
        .log()
        .event(Level::Info, "logs cleared from the dashboard API");
    Json(json!({"cleared": true}))
}

pub async fn stats(State(state): State<AppState>) -> Json<Value> {
    Json(state.log().stats())
}

/// New calls, server events and a stats snapshot every few seconds, as server-sent events.
pub async fn events(
    State(state): State<AppState>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let feed = Feed {
        receiver: state.log().subscribe(),
        ticks: tokio::time::interval(STATS_TICK),
        log: state.log().clone(),
        shutdown: state.shutdown_token().clone(),
    };
    let stream = futures_util::stream::unfold(feed, |mut feed| async move {
        let event = feed.next().await?;
        Some((Ok(event), feed))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// One subscriber's view of the live log.
struct Feed {
    receiver: tokio::sync::broadcast::Receiver<Live>,
    ticks: tokio::time::Interval,
    log: crate::logs::LogStore,
    shutdown: tokio_util::sync::CancellationToken,
}

impl Feed {
    /// The next event to send; `None` ends the stream (the server is stopping).
    async fn next(&mut self) -> Option<Event> {
        loop {
            let event = tokio::select! {
                () = self.shutdown.cancelled() => return None,
                _ = self.ticks.tick() => Event::default().event("stats").json_data(self.log.stats()),
                received = self.receiver.recv() => match received {
                    Ok(Live::Call(call)) => Event::default().event("call").json_data(&*call),
                    Ok(Live::Event(event)) => Event::default().event("serverEvent").json_data(&*event),
                    Ok(Live::Cleared) => Ok(Event::default().event("cleared").data("{}")),
                    // A slow reader missed some: tell it to reload rather than show a gap.
                    Err(RecvError::Lagged(missed)) => Ok(Event::default().event("lagged").data(missed.to_string())),
                    Err(RecvError::Closed) => return None,
                },
            };
            if let Ok(event) = event {
                return Some(event);
            }
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct Login {
    token: String,
}

/// Exchanges the access token for a session cookie (HttpOnly, SameSite=Strict). Failed
/// attempts count against the address like any other wrong token.
pub async fn login(
    State(state): State<AppState>,
    Peer(peer): Peer,
    login: Result<Json<Login>, JsonRejection>,
) -> Result<Response, ProxyError> {
    let Json(login) = login?;
    let mut headers = HeaderMap::new();
    let bearer = format!("Bearer {}", login.token);
    headers.insert(
        header::AUTHORIZATION,
        HeaderValue::from_str(&bearer).map_err(|_| ProxyError::InvalidToken)?,
    );
    auth::authorize(&state, &headers, peer)?;
    let session = state.sessions().create();
    let cookie = format!(
        "{SESSION_COOKIE}={session}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}",
        SESSION_LIFETIME.as_secs()
    );
    let mut response = Json(json!({"ok": true})).into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    Ok(response)
}

/// Whether this browser holds a session: lets the page decide to show the login form without
/// provoking a 401. It looks at the cookie only, so it cannot be used to guess tokens.
pub async fn session(State(state): State<AppState>, headers: HeaderMap) -> Json<Value> {
    let authenticated =
        auth::session_cookie(&headers).is_some_and(|s| state.sessions().is_valid(s));
    Json(json!({"authenticated": authenticated}))
}

pub async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(session) = auth::session_cookie(&headers) {
        state.sessions().end(session);
    }
    let mut response = Json(json!({"ok": true})).into_response();
    let expired = format!("{SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0");
    if let Ok(value) = HeaderValue::from_str(&expired) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// Prometheus text format; needs the token unless `METRICS_PUBLIC=true`.
pub async fn metrics(
    State(state): State<AppState>,
    Peer(peer): Peer,
    headers: HeaderMap,
) -> Result<Response, ProxyError> {
    if !state.config().metrics_public {
        let by_session =
            auth::session_cookie(&headers).is_some_and(|s| state.sessions().is_valid(s));
        if !by_session {
            auth::authorize(&state, &headers, peer)?;
        }
    }
    let body = state.log().metrics().encode();
    Ok((
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
        .into_response())
}
