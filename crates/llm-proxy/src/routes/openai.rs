//! The `/v1` surface: the operations the proxy understands, and everything else passed through.

use crate::formats::answer::Stamp;
use std::time::Instant;

use axum::extract::{OriginalUri, Path, Request, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use crate::config::TargetApi;
use crate::error::ProxyError;
use crate::formats;
use crate::forward::{self, ClientRequest, Expectation};
use crate::normalize::{Expected, RequestContext};
use crate::notes::{CallNotes, RequestTranslation};
use crate::placeholder;
use crate::request::{Operation, Peeked, peek, read_body};
use crate::state::AppState;

pub async fn chat_completions(state: State<AppState>, request: Request) -> Response {
    operation(state, request, Operation::ChatCompletions).await
}

pub async fn completions(state: State<AppState>, request: Request) -> Response {
    operation(state, request, Operation::Completions).await
}

pub async fn embeddings(state: State<AppState>, request: Request) -> Response {
    operation(state, request, Operation::Embeddings).await
}

pub async fn list_models(
    State(state): State<AppState>,
    request: Request,
) -> Result<Response, ProxyError> {
    let received = Instant::now();
    match state.upstream() {
        None => Ok(placeholder::list_models()),
        Some(up) => {
            let (parts, _) = request.into_parts();
            let mut out = outgoing(&parts, &state, received);
            if !up.api().is_openai() {
                out.path_and_query = formats::models_path(up.api());
            }
            forward::json_exchange(up, out, Bytes::new(), &listing(Expected::Models)).await
        }
    }
}

pub async fn get_model(
    State(state): State<AppState>,
    model: Result<Path<String>, axum::extract::rejection::PathRejection>,
    request: Request,
) -> Result<Response, ProxyError> {
    let received = Instant::now();
    let Path(model) = model?;
    match state.upstream() {
        None => Ok(placeholder::get_model(&model)),
        Some(up) => {
            let (parts, _) = request.into_parts();
            let mut out = outgoing(&parts, &state, received);
            // Ollama lists models only in its own API, but describes one only in OpenAI's.
            let ollama_path;
            if up.api() == TargetApi::Ollama {
                ollama_path = format!("/v1{}", out.path_and_query);
                out.path_and_query = &ollama_path;
            }
            forward::json_exchange(up, out, Bytes::new(), &listing(Expected::Model)).await
        }
    }
}

/// Any `/v1` path without a route of its own.
pub async fn pass_through(
    State(state): State<AppState>,
    request: Request,
) -> Result<Response, ProxyError> {
    let received = Instant::now();
    let Some(up) = state.upstream() else {
        let path = request
            .extensions()
            .get::<OriginalUri>()
            .map_or_else(|| request.uri().path(), |o| o.0.path());
        return Err(ProxyError::NotFound {
            message: format!(
                "{path} is not available in placeholder mode: only models, chat completions, completions, \
                 embeddings, responses and messages are answered without a target."
            ),
            code: "unknown_url",
        });
    };
    let (parts, body) = request.into_parts();
    forward::pass_through(
        up,
        outgoing(&parts, &state, received),
        body,
        state.config().limits.max_request_body_bytes,
    )
    .await
}

/// The three JSON operations: read and check the body, then answer locally or forward. The
/// response carries [`CallNotes`] for the request log, errors included.
async fn operation(State(state): State<AppState>, request: Request, op: Operation) -> Response {
    let received = Instant::now();
    let limits = &state.config().limits;
    let (parts, body) = request.into_parts();
    let body = match read_body(&parts.headers, body, limits.max_request_body_bytes).await {
        Ok(body) => body,
        Err(error) => return error.into_response(),
    };
    let (result, model, stream) = match peek(&body, op) {
        Err(error) => (Err(error), None, false),
        Ok(peeked) => {
            let aliased = aliased(&state, &body, &peeked.model);
            let sent = aliased.as_ref().map_or(&body, |(body, _)| body);
            let answer = answer(&state, &parts, sent, &peeked, op, received, None).await;
            (
                answer,
                Some((peeked.model, aliased.map(|(_, model)| model))),
                peeked.stream,
            )
        }
    };
    let (model, sent_model) = model.unzip();
    let mut response = result.into_response();
    let mut translation = response.extensions_mut().remove::<RequestTranslation>();
    if let Some(sent_model) = sent_model.flatten() {
        translation.get_or_insert_default().sent_model = Some(sent_model);
    }
    response.extensions_mut().insert(CallNotes {
        model,
        stream,
        request_body: body,
        translation,
    });
    response
}

/// One of the JSON operations answered locally or by the target. `client_path` replaces the
/// path the client called when its API is not the operation's (a Messages call answered as a
/// chat completion).
pub(crate) async fn answer(
    state: &AppState,
    parts: &axum::http::request::Parts,
    body: &Bytes,
    peeked: &Peeked<'_>,
    op: Operation,
    received: Instant,
    client_path: Option<&'static str>,
) -> Result<Response, ProxyError> {
    let Some(up) = state.upstream() else {
        return match op {
            Operation::ChatCompletions => Ok(placeholder::chat_completion(peeked)),
            Operation::Completions => Ok(placeholder::completion(peeked)),
            Operation::Embeddings => placeholder::embeddings(peeked, body),
        };
    };
    let expect = Expectation {
        shape: match op {
            Operation::ChatCompletions => Expected::ChatCompletion,
            Operation::Completions => Expected::Completion,
            Operation::Embeddings => Expected::Embeddings {
                base64: peeked.base64,
            },
        },
        context: RequestContext {
            model: peeked.model.clone(),
            include_usage: peeked.include_usage,
            answer_format: match op {
                Operation::ChatCompletions => formats::answer_format(up.api()),
                Operation::Completions | Operation::Embeddings => None,
            },
            stamp: Stamp::now(),
        },
    };
    let translated = match op {
        Operation::ChatCompletions => formats::chat_for_target(up.api(), body)?,
        Operation::Completions | Operation::Embeddings => None,
    };
    let (path, body, translation) = match translated {
        Some(translated) => {
            let translation = RequestTranslation {
                api: Some(up.api().name()),
                dropped: translated.dropped,
                ..RequestTranslation::default()
            };
            let body = Bytes::from(translated.body);
            (Some(translated.path), body, Some(translation))
        }
        None => (None, body.clone(), None),
    };
    let mut out = outgoing(parts, state, received);
    if let Some(path) = client_path {
        out.path_and_query = path;
    }
    let compatible_path;
    if op != Operation::ChatCompletions {
        // Completions and embeddings have no translation: they go to the OpenAI-compatible
        // API the target's server has beside its own, when it has one.
        let prefix = match up.api() {
            TargetApi::OpenAi | TargetApi::Responses => "",
            TargetApi::Ollama => "/v1",
            TargetApi::Gemini => "/openai",
            TargetApi::Anthropic => {
                return Err(ProxyError::NotFound {
                    message: format!(
                        "{} is not available with TARGET_API=anthropic: Anthropic's API has no completions or embeddings.",
                        out.path_and_query
                    ),
                    code: "unknown_url",
                });
            }
        };
        if !prefix.is_empty() {
            compatible_path = format!("{prefix}{}", out.path_and_query);
            out.path_and_query = &compatible_path;
        }
    }
    if let Some(path) = &path {
        out.path_and_query = path;
    }
    let mut response = if peeked.stream && op != Operation::Embeddings {
        let idle = state.config().limits.stream_idle_timeout;
        let cut_off = state.cut_off_token();
        forward::event_stream(up, out, body, idle, cut_off, &expect).await
    } else {
        forward::json_exchange(up, out, body, &expect).await
    }?;
    if let Some(translation) = translation {
        response.extensions_mut().insert(translation);
    }
    Ok(response)
}

/// `body` with its model replaced by its `MODEL_ALIASES` name, and that name; `None` when no
/// alias applies (or nothing is forwarded), so the client's bytes go as they are.
pub(crate) fn aliased(state: &AppState, body: &[u8], model: &str) -> Option<(Bytes, String)> {
    state.upstream()?;
    let sent = state.config().model_aliases.resolve(model)?;
    let mut value = match serde_json::from_slice(body).ok()? {
        serde_json::Value::Object(object) => object,
        _ => return None,
    };
    value.insert("model".into(), serde_json::Value::String(sent.to_owned()));
    Some((
        Bytes::from(serde_json::Value::Object(value).to_string()),
        sent.to_owned(),
    ))
}

/// Expectations for the model endpoints, which have no request body.
fn listing(shape: Expected) -> Expectation {
    Expectation {
        shape,
        context: RequestContext {
            model: String::new(),
            include_usage: false,
            answer_format: None,
            stamp: Stamp::now(),
        },
    }
}

/// The request as it goes out: the part of the URL after `/v1` (nesting strips the prefix
/// from `parts.uri`, so the original URI is used to be sure of it).
pub(crate) fn outgoing<'a>(
    parts: &'a axum::http::request::Parts,
    state: &AppState,
    received: Instant,
) -> ClientRequest<'a> {
    let uri = parts
        .extensions
        .get::<OriginalUri>()
        .map_or(&parts.uri, |o| &o.0);
    let path_and_query = uri.path_and_query().map_or("/", |pq| pq.as_str());
    ClientRequest {
        method: parts.method.clone(),
        path_and_query: path_and_query.strip_prefix("/v1").unwrap_or(path_and_query),
        headers: &parts.headers,
        received: state.config().server_timing.then_some(received),
    }
}
