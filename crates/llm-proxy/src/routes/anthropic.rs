//! `/v1/messages`: Anthropic's Messages API for its clients (Claude Code, the Anthropic SDKs).
//! A target that speaks it gets the request byte for byte; any other gets it as a chat
//! completion, whose answer or stream is written back as Messages. Errors on these routes take
//! Anthropic's envelope.

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{OriginalUri, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http_body_util::BodyExt;
use serde_json::{Value, json};

use crate::config::TargetApi;
use crate::error::ProxyError;
use crate::formats::answer::Stamp;
use crate::formats::anthropic::client::{self, ChatForm};
use crate::formats::anthropic::events::MessagesStream;
use crate::formats::{sse, tokens};
use crate::forward;
use crate::notes::{CallNotes, RequestTranslation};
use crate::request::{Operation, peek, read_body};
use crate::routes::chat_relay;
use crate::routes::openai::{aliased, answer, outgoing};
use crate::state::AppState;

/// The largest error body rewritten into Anthropic's envelope (errors are small JSON).
const ERROR_BODY_LIMIT: usize = 64 * 1024;

/// `POST /v1/messages`.
pub async fn messages(State(state): State<AppState>, request: Request) -> Response {
    let received = Instant::now();
    let limit = state.config().limits.max_request_body_bytes;
    let (parts, body) = request.into_parts();
    if let Some(up) = state.upstream()
        && up.api() == TargetApi::Anthropic
    {
        // The target speaks Messages itself: nothing to translate, the bytes pass (with the
        // model renamed, when an alias applies).
        let out = outgoing(&parts, &state, received);
        if state.config().model_aliases.is_empty() {
            return forward::pass_through(up, out, body, limit)
                .await
                .into_response();
        }
        let body = match read_body(&parts.headers, body, limit).await {
            Ok(body) => body,
            Err(error) => return error.into_response(),
        };
        let model = serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|v| v["model"].as_str().map(str::to_owned))
            .unwrap_or_default();
        let body = aliased(&state, &body, &model).map_or(body, |(body, _)| body);
        return forward::pass_through(up, out, Body::from(body), limit)
            .await
            .into_response();
    }
    let body = match read_body(&parts.headers, body, limit).await {
        Ok(body) => body,
        Err(error) => return error.into_response(),
    };
    let api = state.upstream().map_or(TargetApi::OpenAi, |up| up.api());
    let mut form = match client::chat_request(&body, api) {
        Ok(form) => form,
        Err(error) => return ProxyError::from(error).into_response(),
    };
    let asked = form.body["model"].as_str().unwrap_or_default().to_owned();
    let sent_model = state
        .upstream()
        .and_then(|_| state.config().model_aliases.resolve(&asked))
        .map(str::to_owned);
    if let Some(sent) = &sent_model {
        form.body["model"] = Value::String(sent.clone());
    }
    let chat = Bytes::from(form.body.to_string());
    let (result, model, stream) = match peek(&chat, Operation::ChatCompletions) {
        Err(error) => (Err(error), None, false),
        Ok(peeked) => {
            let op = Operation::ChatCompletions;
            let result = answer(
                &state,
                &parts,
                &chat,
                &peeked,
                op,
                received,
                Some("/chat/completions"),
            )
            .await;
            (result, Some(asked), peeked.stream)
        }
    };
    let mut response = match result {
        Ok(response) if response.status().is_success() => {
            let ping = state.config().limits.messages_ping_interval;
            as_messages(response, stream, &form, ping).await
        }
        other => other.into_response(),
    };
    let mut dropped = form.dropped;
    let answer_notes = response
        .extensions_mut()
        .remove::<AnswerNotes>()
        .map(|notes| notes.0)
        .unwrap_or_default();
    let translation = response.extensions_mut().remove::<RequestTranslation>();
    if let Some(translation) = &translation {
        dropped.extend(translation.dropped.iter().cloned());
    }
    response.extensions_mut().insert(CallNotes {
        model,
        stream,
        request_body: body,
        translation: Some(RequestTranslation {
            api: Some(translation.and_then(|t| t.api).unwrap_or("openai")),
            dropped,
            sent_model,
            answer_notes,
        }),
    });
    response
}

/// `POST /v1/messages/count_tokens`: a target that speaks Messages counts itself; for any other
/// the request is counted as it would be sent, with OpenAI's tokenizer (an estimate for other
/// models' tokenizers, never a made-up number: Claude Code decides when to compact from it).
pub async fn count_tokens(State(state): State<AppState>, request: Request) -> Response {
    let received = Instant::now();
    let limit = state.config().limits.max_request_body_bytes;
    let (parts, body) = request.into_parts();
    if let Some(up) = state.upstream()
        && up.api() == TargetApi::Anthropic
    {
        let out = outgoing(&parts, &state, received);
        return forward::pass_through(up, out, body, limit)
            .await
            .into_response();
    }
    let body = match read_body(&parts.headers, body, limit).await {
        Ok(body) => body,
        Err(error) => return error.into_response(),
    };
    let api = state.upstream().map_or(TargetApi::OpenAi, |up| up.api());
    // The same request, but for what counting does not read.
    let mut counted = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(object)) => object,
        _ => return ProxyError::invalid("The request must be a JSON object.").into_response(),
    };
    counted.insert("max_tokens".into(), json!(1));
    let form = match client::chat_request(Value::Object(counted).to_string().as_bytes(), api) {
        Ok(form) => form,
        Err(error) => return ProxyError::from(error).into_response(),
    };
    // Tokenizing a long conversation takes milliseconds: off the threads that serve streams.
    let counting = tokio::task::spawn_blocking(move || tokens::chat_prompt_tokens(&form.body));
    let Ok(tokens) = counting.await else {
        return ProxyError::invalid("Counting the tokens failed.").into_response();
    };
    (
        [(header::CONTENT_TYPE, "application/json")],
        json!({"input_tokens": tokens}).to_string(),
    )
        .into_response()
}

/// `/v1/v1/messages`: a base URL set with `/v1`, which Claude Code appends itself.
pub async fn doubled_v1() -> Response {
    ProxyError::NotFound {
        message: "There is no /v1/v1/messages: set ANTHROPIC_BASE_URL to the proxy's address without /v1 (for example http://localhost:3000); Claude Code appends /v1/messages itself.".into(),
        code: "unknown_url",
    }
    .into_response()
}

/// A chat answer (the target's, normalized, or the placeholder's) as the Messages answer.
async fn as_messages(
    response: Response,
    stream: bool,
    form: &ChatForm,
    ping_interval: Duration,
) -> Response {
    let (mut parts, body) = response.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    if stream {
        let model = form.body["model"].as_str().unwrap_or_default();
        let id = format!("msg_{}", Stamp::now().suffix());
        let writer =
            MessagesStream::new(id, model, form.prompt_estimate, form.stop_sequences.clone());
        let body = Body::from_stream(chat_relay::event_stream(body, writer, Some(ping_interval)));
        sse::set_stream_headers(&mut parts.headers);
        return Response::from_parts(parts, body);
    }
    let bytes = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            return (
                StatusCode::BAD_GATEWAY,
                [(header::CONTENT_TYPE, "application/json")],
                api_error("The target's answer could not be read to its end."),
            )
                .into_response();
        }
    };
    let (message, notes) = match serde_json::from_slice::<Value>(&bytes) {
        Ok(completion) => client::message_from_completion(&completion, &form.stop_sequences),
        Err(_) => {
            return (
                StatusCode::BAD_GATEWAY,
                [(header::CONTENT_TYPE, "application/json")],
                api_error("The target's answer could not be read as a chat completion."),
            )
                .into_response();
        }
    };
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    parts.extensions.insert(AnswerNotes(notes));
    Response::from_parts(parts, Body::from(message.to_string()))
}

/// What [`as_messages`] noted, for the log.
#[derive(Clone)]
struct AnswerNotes(Vec<String>);

fn api_error(message: &str) -> String {
    json!({"type": "error", "error": {"type": "api_error", "message": message}}).to_string()
}

/// Errors on the Messages routes in Anthropic's envelope, whoever made them (the token check,
/// the body limit, the target): `{"type":"error","error":{"type","message"}}`.
pub async fn anthropic_errors(request: Request, next: Next) -> Response {
    let path = request.extensions().get::<OriginalUri>().map_or_else(
        || request.uri().path().to_owned(),
        |uri| uri.0.path().to_owned(),
    );
    let response = next.run(request).await;
    let messages = path.starts_with("/v1/messages") || path.starts_with("/v1/v1/messages");
    if !messages || response.status().is_success() {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let bytes = match http_body_util::Limited::new(body, ERROR_BODY_LIMIT)
        .collect()
        .await
    {
        Ok(collected) => collected.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let value: Value = serde_json::from_slice(&bytes).unwrap_or_default();
    if value["type"] == "error" {
        // Already Anthropic's (a target that speaks it).
        return Response::from_parts(parts, Body::from(bytes));
    }
    let message = value
        .pointer("/error/message")
        .and_then(Value::as_str)
        .map_or_else(
            || String::from_utf8_lossy(&bytes).into_owned(),
            str::to_owned,
        );
    let body =
        json!({"type": "error", "error": {"type": error_type(parts.status), "message": message}});
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, Body::from(body.to_string()))
}

/// Anthropic's error type for a status.
fn error_type(status: StatusCode) -> &'static str {
    match status.as_u16() {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        503 | 529 => "overloaded_error",
        400..=499 => "invalid_request_error",
        _ => "api_error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_status_gets_anthropics_error_type() {
        for (status, kind) in [
            (400, "invalid_request_error"),
            (401, "authentication_error"),
            (403, "permission_error"),
            (404, "not_found_error"),
            (413, "request_too_large"),
            (422, "invalid_request_error"),
            (429, "rate_limit_error"),
            (500, "api_error"),
            (502, "api_error"),
            (503, "overloaded_error"),
            (529, "overloaded_error"),
        ] {
            assert_eq!(
                error_type(StatusCode::from_u16(status).unwrap()),
                kind,
                "{status}"
            );
        }
    }
}
