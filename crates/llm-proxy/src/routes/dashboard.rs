//! The dashboard API under `/api` (JSON, camelCase, authenticated), and `/metrics`.

use std::convert::Infallible;

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth;
use crate::dashboard::views::{BothLogs, Cleared, ConfigView, EventPage};
use crate::dashboard::{self, CallParams, Calls, EventParams, LiveFeed};
use crate::error::ProxyError;
use crate::guard::Peer;
use crate::logs::ServerEvent;
use crate::logs::record::ApiCall;
use crate::sessions::{SESSION_COOKIE, SESSION_LIFETIME, session_cookie};
use crate::state::AppState;

/// The effective configuration. Secrets appear only as `set` or `not set`.
pub async fn config(State(state): State<AppState>) -> Json<ConfigView> {
    Json(dashboard::config(&state))
}

/// Newest first. `nextCursor` continues the listing; it is null on the last page.
pub async fn api_calls(
    State(state): State<AppState>,
    params: Result<Query<CallParams>, QueryRejection>,
) -> Result<Json<Calls>, ProxyError> {
    let Query(params) = params?;
    dashboard::calls(&state, params).await.map(Json)
}

pub async fn api_call(
    State(state): State<AppState>,
    id: Result<Path<i64>, PathRejection>,
) -> Result<Json<ApiCall>, ProxyError> {
    let Path(id) = id?;
    dashboard::call(&state, id).await.map(Json)
}

pub async fn server_events(
    State(state): State<AppState>,
    params: Result<Query<EventParams>, QueryRejection>,
) -> Result<Json<EventPage<ServerEvent>>, ProxyError> {
    let Query(params) = params?;
    Ok(Json(dashboard::server_events(&state, params).await))
}

/// Both logs in the shape the original project's tools expect.
pub async fn logs(State(state): State<AppState>) -> Json<BothLogs<ApiCall, ServerEvent>> {
    Json(dashboard::logs(&state).await)
}

pub async fn clear_logs(State(state): State<AppState>) -> Json<Cleared> {
    Json(dashboard::clear_logs(&state, "the dashboard API").await)
}

pub async fn stats(State(state): State<AppState>) -> Json<Value> {
    Json(dashboard::stats(&state))
}

/// New calls, server events and a stats snapshot every few seconds, as server-sent events.
pub async fn events(
    State(state): State<AppState>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let stream = futures_util::stream::unfold(LiveFeed::new(&state), |mut feed| async move {
        let update = feed.next().await?;
        Some((
            Ok(Event::default().event(update.name).data(update.data)),
            feed,
        ))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
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
    auth::authorize_token(&state, &login.token, peer)?;
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
    let authenticated = session_cookie(&headers).is_some_and(|s| state.sessions().is_valid(s));
    Json(json!({"authenticated": authenticated}))
}

pub async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(session) = session_cookie(&headers) {
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
        auth::authorize_dashboard(&state, &headers, peer)?;
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
