//! `GET /health`: unauthenticated liveness and mode, for humans, scripts and load balancers.

use crate::dashboard::views::Health;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;

pub async fn health(State(state): State<AppState>) -> Json<Health> {
    Json(crate::dashboard::health(&state))
}
