//! `/v1/responses`: OpenAI's Responses API for its clients (Codex CLI, the SDKs, the Agents
//! SDK). A target that has it (`TARGET_API=responses`) gets every request byte for byte; any
//! other gets it as a chat completion, whose answer or stream is written back as a Response.
//! Responses the client asks to store are kept beside the request log, for
//! `previous_response_id` and the `/v1/responses/{id}` routes.

use std::time::Instant;

use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::BodyExt;
use serde_json::{Value, json};

use crate::config::TargetApi;
use crate::error::ProxyError;
use crate::formats::answer::Stamp;
use crate::formats::chat_stream::Assembled;
use crate::formats::responses::events::{Finished, FinishedSlot, ResponsesStream};
use crate::formats::responses::{ChatForm, ResponsesRequest, Skeleton, chat_request};
use crate::formats::{responses, sse, usage::usage_of};
use crate::forward;
use crate::notes::{CallNotes, RequestTranslation, StreamConclusion};
use crate::request::{Operation, peek, read_body};
use crate::routes::chat_relay;
use crate::routes::openai::{aliased, answer, outgoing};
use crate::state::AppState;

/// `POST /v1/responses`.
pub async fn create(State(state): State<AppState>, request: Request) -> Response {
    let received = Instant::now();
    let limit = state.config().limits.max_request_body_bytes;
    let (parts, body) = request.into_parts();
    let body = match read_body(&parts.headers, body, limit).await {
        Ok(body) => body,
        Err(error) => return error.into_response(),
    };
    let (mut response, translation, model, stream) = match state.upstream() {
        Some(up) if up.api() == TargetApi::Responses => {
            // The target has the API: nothing to translate, the bytes pass (with the model
            // renamed, when an alias applies), read only for the log's model and stream.
            #[derive(serde::Deserialize)]
            struct Probe {
                #[serde(default)]
                model: Option<String>,
                #[serde(default)]
                stream: Option<bool>,
            }
            let probe = serde_json::from_slice::<Probe>(&body).ok();
            let model = probe.as_ref().and_then(|p| p.model.clone());
            let stream = probe.is_some_and(|p| p.stream == Some(true));
            let aliased = aliased(&state, &body, model.as_deref().unwrap_or_default());
            let sent = aliased.as_ref().map_or(&body, |(body, _)| body).clone();
            let response = forward::pass_through(
                up,
                outgoing(&parts, &state, received),
                Body::from(sent),
                limit,
            )
            .await
            .into_response();
            let translation = aliased.map(|(_, sent_model)| RequestTranslation {
                sent_model: Some(sent_model),
                ..RequestTranslation::default()
            });
            (response, translation, model, stream)
        }
        _ => match ResponsesRequest::parse(&body) {
            Err(error) => {
                let translation = RequestTranslation {
                    api: state.upstream().map(|up| up.api().name()),
                    ..RequestTranslation::default()
                };
                let response = ProxyError::from(error).into_response();
                (response, Some(translation), None, false)
            }
            Ok(request) => {
                let (model, stream) = (request.model.clone(), request.stream == Some(true));
                let (response, translation) = translated(&state, &parts, request, received).await;
                (response, Some(translation), model, stream)
            }
        },
    };
    response.extensions_mut().insert(CallNotes {
        model,
        stream,
        request_body: body,
        translation,
    });
    response
}

/// A Responses request answered as a chat completion: by the placeholder, or by a target that
/// speaks chat completions (or another API, through the translation layer).
async fn translated(
    state: &AppState,
    parts: &axum::http::request::Parts,
    request: ResponsesRequest,
    received: Instant,
) -> (Response, RequestTranslation) {
    let api = state.upstream().map_or(TargetApi::OpenAi, |up| up.api());
    let mut translation = RequestTranslation {
        api: state.upstream().map(|up| up.api().name()),
        ..RequestTranslation::default()
    };
    let history = match &request.previous_response_id {
        None => Vec::new(),
        Some(id) => match stored(state, id).await {
            Ok((input, response)) => {
                let mut history = input;
                history.extend(response["output"].as_array().cloned().unwrap_or_default());
                history
            }
            Err(error) => {
                // OpenAI's answer: a 400 naming the parameter, not the 404 of `GET`.
                let error = match error {
                    ProxyError::NotFound { .. } => ProxyError::InvalidRequest {
                        message: format!("Previous response with id '{id}' not found."),
                        param: Some("previous_response_id"),
                        code: Some("previous_response_not_found"),
                    },
                    other => other,
                };
                return (error.into_response(), translation);
            }
        },
    };
    let stamp = Stamp::now();
    let suffix = stamp.suffix().to_owned();
    let mut form = match chat_request(&request, history, api, &suffix) {
        Ok(form) => form,
        Err(error) => return (ProxyError::from(error).into_response(), translation),
    };
    let asked = form.body["model"].as_str().unwrap_or_default().to_owned();
    if let Some(sent) = state
        .upstream()
        .and_then(|_| state.config().model_aliases.resolve(&asked))
    {
        form.body["model"] = Value::String(sent.to_owned());
        translation.sent_model = Some(sent.to_owned());
    }
    let skeleton = Skeleton {
        id: format!("resp_{suffix}"),
        created_at: stamp.created,
        suffix,
        echo: std::mem::take(&mut form.echo),
        tools: std::mem::take(&mut form.tools),
        prompt_chars: form.prompt_chars,
    };
    translation.dropped = std::mem::take(&mut form.dropped);
    let chat = json_bytes(&form.body);
    let peeked = match peek(&chat, Operation::ChatCompletions) {
        Ok(peeked) => peeked,
        Err(error) => return (error.into_response(), translation),
    };
    let result = answer(
        state,
        parts,
        &chat,
        &peeked,
        Operation::ChatCompletions,
        received,
        Some("/chat/completions"),
    )
    .await;
    let mut response = match result {
        Ok(response) if response.status().is_success() => {
            let model = peeked.model.to_string();
            if peeked.stream {
                as_event_stream(state, response, skeleton, &model, form)
            } else {
                let (response, notes) = as_response(state, response, skeleton, form).await;
                translation.answer_notes = notes;
                response
            }
        }
        other => other.into_response(),
    };
    if let Some(target) = response.extensions_mut().remove::<RequestTranslation>() {
        translation.api = target.api.or(translation.api);
        translation.dropped.extend(target.dropped);
    }
    (response, translation)
}

/// A whole chat answer as the Response object, stored when asked.
async fn as_response(
    state: &AppState,
    response: Response,
    skeleton: Skeleton,
    form: ChatForm,
) -> (Response, Vec<String>) {
    let (mut parts, body) = response.into_parts();
    let id = skeleton.id.clone();
    let read = match body.collect().await {
        Ok(collected) => responses::response_from_completion(&skeleton, &collected.to_bytes()).ok(),
        Err(_) => None,
    };
    let Some((object, notes)) = read else {
        let error = ProxyError::Upstream(crate::upstream::UpstreamError::Malformed {
            host: String::new(),
            detail: "the target's answer could not be read as a chat completion".into(),
        });
        return (error.into_response(), Vec::new());
    };
    if form.store {
        keep(state, &id, &form.input_items, &object).await;
    }
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let body = Body::from(object);
    (Response::from_parts(parts, body), notes)
}

/// A chat stream as the Responses event stream. When it ends, the Response is stored (when
/// asked) before its last event goes out, so a client that continues at once finds it.
fn as_event_stream(
    state: &AppState,
    response: Response,
    skeleton: Skeleton,
    model: &str,
    form: ChatForm,
) -> Response {
    let (mut parts, body) = response.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    sse::set_stream_headers(&mut parts.headers);
    let id = skeleton.id.clone();
    let slot = FinishedSlot::default();
    let writer = ResponsesStream::new(skeleton, model, slot.clone());
    // The log gets the Response the client was sent, not the chat stream under it.
    let conclusion = StreamConclusion::default();
    parts.extensions.insert(conclusion.clone());
    let state = state.clone();
    let mut input_items = form.store.then_some(form.input_items);
    let events = chat_relay::event_stream(body, writer, None).then(move |bytes| {
        let finished = slot
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        let stored = finished
            .as_ref()
            .filter(|f| f.response["status"] != "failed")
            .and_then(|_| input_items.take());
        let (state, id, conclusion) = (state.clone(), id.clone(), conclusion.clone());
        async move {
            if let Some(finished) = finished {
                if let Some(input) = stored {
                    let response = serde_json::to_vec(&finished.response).unwrap_or_default();
                    keep(&state, &id, &input, &response).await;
                }
                conclusion.put(assembled(finished));
            }
            bytes
        }
    });
    Response::from_parts(parts, Body::from_stream(events))
}

/// A finished stream as the log shows it: the Response the client was sent.
fn assembled(finished: Finished) -> Assembled {
    let response = finished.response;
    Assembled {
        id: response["id"].as_str().map(str::to_owned),
        model: response["model"].as_str().map(str::to_owned),
        usage: usage_of(&response),
        usage_object: response.get("usage").cloned(),
        chunks: finished.events,
        error: response
            .pointer("/error/message")
            .and_then(Value::as_str)
            .map(str::to_owned),
        text_len: finished.chars,
        message: response,
    }
}

/// Stores a Response (its JSON text) and the input items it followed. A store that fails costs
/// the client only a later `previous_response_id`: noted in the server events, not fatal to the
/// answer.
async fn keep(state: &AppState, id: &str, input: &[Value], response: &[u8]) {
    let mut record = b"{\"input\":".to_vec();
    // Serializing JSON trees into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut record, input);
    record.extend_from_slice(b",\"response\":");
    record.extend_from_slice(response);
    record.push(b'}');
    let record = String::from_utf8(record).unwrap_or_default();
    if let Err(error) = state.log().put_response(id.to_owned(), record).await {
        state.log().event(
            crate::logs::Level::Warn,
            format!("A response could not be stored for previous_response_id: {error}"),
        );
    }
}

/// A stored Response's input items and the Response; `NotFound` when there is none.
async fn stored(state: &AppState, id: &str) -> Result<(Vec<Value>, Value), ProxyError> {
    let not_found = || ProxyError::NotFound {
        message: format!("Response with id '{id}' not found."),
        code: "not_found",
    };
    let record = match state.log().response(id.to_owned()).await {
        Ok(Some(record)) => record,
        Ok(None) => return Err(not_found()),
        Err(error) => {
            return Err(ProxyError::invalid(format!(
                "Stored responses could not be read: {error}"
            )));
        }
    };
    let mut record: Value = serde_json::from_str(&record).map_err(|_| not_found())?;
    let input = record["input"].as_array().cloned().unwrap_or_default();
    Ok((input, record["response"].take()))
}

/// Whether the `/v1/responses/{id}` routes go to the target (which keeps its own).
fn target_keeps_responses(state: &AppState) -> bool {
    state
        .upstream()
        .is_some_and(|up| up.api() == TargetApi::Responses)
}

/// `GET /v1/responses/{id}`.
pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
    request: Request,
) -> Result<Response, ProxyError> {
    if target_keeps_responses(&state) {
        return crate::routes::openai::pass_through(State(state), request).await;
    }
    let (_, response) = stored(&state, &id).await?;
    Ok(json_response(StatusCode::OK, &response))
}

/// `DELETE /v1/responses/{id}`.
pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    request: Request,
) -> Result<Response, ProxyError> {
    if target_keeps_responses(&state) {
        return crate::routes::openai::pass_through(State(state), request).await;
    }
    match state.log().delete_response(id.clone()).await {
        Ok(true) => Ok(json_response(
            StatusCode::OK,
            &json!({"id": id, "object": "response", "deleted": true}),
        )),
        Ok(false) => Err(ProxyError::NotFound {
            message: format!("Response with id '{id}' not found."),
            code: "not_found",
        }),
        Err(error) => Err(ProxyError::invalid(format!(
            "Stored responses could not be changed: {error}"
        ))),
    }
}

/// The paging of `input_items`.
#[derive(Debug, serde::Deserialize)]
pub struct ItemsQuery {
    #[serde(default)]
    limit: Option<usize>,
    #[serde(default)]
    order: Option<String>,
    #[serde(default)]
    after: Option<String>,
}

/// `GET /v1/responses/{id}/input_items`: the items the Response followed, newest first unless
/// `order=asc`, `limit` at a time (20 by default, 1 to 100), after the item `after`.
pub async fn input_items(
    State(state): State<AppState>,
    Path(id): Path<String>,
    query: Result<Query<ItemsQuery>, axum::extract::rejection::QueryRejection>,
    request: Request,
) -> Result<Response, ProxyError> {
    if target_keeps_responses(&state) {
        return crate::routes::openai::pass_through(State(state), request).await;
    }
    let Query(query) = query.map_err(|e| ProxyError::invalid(e.body_text()))?;
    let limit = query.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(ProxyError::InvalidRequest {
            message: format!("Invalid 'limit': expected a number from 1 to 100, got {limit}."),
            param: Some("limit"),
            code: Some("integer_out_of_range"),
        });
    }
    let (mut items, _) = stored(&state, &id).await?;
    match query.order.as_deref() {
        None | Some("desc") => items.reverse(),
        Some("asc") => {}
        Some(other) => {
            return Err(ProxyError::InvalidRequest {
                message: format!("Invalid 'order': expected 'asc' or 'desc', got '{other}'."),
                param: Some("order"),
                code: None,
            });
        }
    }
    if let Some(after) = &query.after {
        let at = items.iter().position(|item| item["id"] == after.as_str());
        items.drain(..at.map_or(items.len(), |at| at + 1));
    }
    let has_more = items.len() > limit;
    items.truncate(limit);
    let first_id = items
        .first()
        .map(|item| item["id"].clone())
        .unwrap_or_default();
    let last_id = items
        .last()
        .map(|item| item["id"].clone())
        .unwrap_or_default();
    Ok(json_response(
        StatusCode::OK,
        &json!({"object": "list", "data": items, "first_id": first_id, "last_id": last_id, "has_more": has_more}),
    ))
}

fn json_response(status: StatusCode, value: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        json_bytes(value),
    )
        .into_response()
}

/// A JSON tree's text, written straight into bytes (`Value`'s `Display` goes through a slower
/// formatter).
fn json_bytes(value: &Value) -> Bytes {
    // Serializing a JSON tree cannot fail.
    Bytes::from(serde_json::to_vec(value).unwrap_or_default())
}
