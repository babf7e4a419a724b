//! `GET /health`: unauthenticated liveness and mode, for humans, scripts and load balancers.

use axum::Json;
use axum::extract::State;
use serde_json::Value;

use crate::state::AppState;

pub async fn health(State(state): State<AppState>) -> Json<Value> {
    Json(crate::dashboard::health(&state))
}
