//! The `/v1` surface: the operations the proxy understands, and everything else passed through.

use axum::extract::{OriginalUri, Path, Request, State};
use axum::response::Response;

use crate::error::ProxyError;
use crate::forward::{self, Outgoing};
use crate::placeholder;
use crate::request::{Operation, peek, read_body};
use crate::server::AppState;

pub async fn chat_completions(
    state: State<AppState>,
    request: Request,
) -> Result<Response, ProxyError> {
    operation(state, request, Operation::ChatCompletions).await
}

pub async fn completions(state: State<AppState>, request: Request) -> Result<Response, ProxyError> {
    operation(state, request, Operation::Completions).await
}

pub async fn embeddings(state: State<AppState>, request: Request) -> Result<Response, ProxyError> {
    operation(state, request, Operation::Embeddings).await
}

pub async fn list_models(
    State(state): State<AppState>,
    request: Request,
) -> Result<Response, ProxyError> {
    match state.upstream() {
        None => Ok(placeholder::list_models()),
        Some(up) => {
            let (parts, _) = request.into_parts();
            let out = outgoing(&parts);
            forward::json_exchange(up, out, bytes::Bytes::new()).await
        }
    }
}

pub async fn get_model(
    State(state): State<AppState>,
    Path(model): Path<String>,
    request: Request,
) -> Result<Response, ProxyError> {
    match state.upstream() {
        None => placeholder::get_model(&model),
        Some(up) => {
            let (parts, _) = request.into_parts();
            forward::json_exchange(up, outgoing(&parts), bytes::Bytes::new()).await
        }
    }
}

/// Any `/v1` path without a route of its own.
pub async fn pass_through(
    State(state): State<AppState>,
    request: Request,
) -> Result<Response, ProxyError> {
    let Some(up) = state.upstream() else {
        return Err(ProxyError::NotFound {
            message: format!(
                "{} is not available in placeholder mode: only models, chat completions, completions and \
                 embeddings are answered without a target.",
                request.uri().path()
            ),
            code: "unknown_url",
        });
    };
    let (parts, body) = request.into_parts();
    forward::pass_through(
        up,
        outgoing(&parts),
        body,
        state.config().limits.max_request_body_bytes,
    )
    .await
}

async fn operation(
    State(state): State<AppState>,
    request: Request,
    op: Operation,
) -> Result<Response, ProxyError> {
    let limits = &state.config().limits;
    let (parts, body) = request.into_parts();
    let body = read_body(&parts.headers, body, limits.max_request_body_bytes).await?;
    let peeked = peek(&body, op)?;
    let Some(up) = state.upstream() else {
        return match op {
            Operation::ChatCompletions => Ok(placeholder::chat_completion(&peeked)),
            Operation::Completions => Ok(placeholder::completion(&peeked)),
            Operation::Embeddings => placeholder::embeddings(&peeked, &body),
        };
    };
    let streaming = peeked.stream && op != Operation::Embeddings;
    let out = outgoing(&parts);
    if streaming {
        forward::event_stream(up, out, body, limits.stream_idle_timeout).await
    } else {
        forward::json_exchange(up, out, body).await
    }
}

/// The request as it goes out: the part of the URL after `/v1` (nesting strips the prefix
/// from `parts.uri`, so the original URI is used to be sure of it).
fn outgoing(parts: &axum::http::request::Parts) -> Outgoing<'_> {
    let uri = parts
        .extensions
        .get::<OriginalUri>()
        .map_or(&parts.uri, |o| &o.0);
    let path_and_query = uri.path_and_query().map_or("/", |pq| pq.as_str());
    Outgoing {
        method: parts.method.clone(),
        path_and_query: path_and_query.strip_prefix("/v1").unwrap_or(path_and_query),
        headers: &parts.headers,
    }
}
