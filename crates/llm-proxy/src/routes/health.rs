//! `GET /health`: unauthenticated liveness and mode, for humans, scripts and load balancers.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use crate::config::UpstreamConfig;
use crate::server::AppState;

pub async fn health(State(state): State<AppState>) -> Json<Value> {
    let config = state.config();
    let (mode, target, auth) = match &config.upstream {
        UpstreamConfig::Placeholder => ("placeholder", None, None),
        UpstreamConfig::Target(target) => (
            "forwarding",
            target.endpoint.host_str().map(str::to_owned),
            Some(target.credential.kind()),
        ),
    };
    let oauth = state
        .upstream()
        .and_then(|up| up.token_source())
        .map(|source| source.status());
    Json(json!({
        "status": "healthy",
        "oauth": oauth,
        "logStore": state.log().health(),
        "mode": mode,
        "target": target,
        "auth": auth,
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_seconds": state.uptime().as_secs(),
    }))
}
