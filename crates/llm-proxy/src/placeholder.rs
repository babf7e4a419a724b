//! Placeholder mode: valid OpenAI answers made up locally, with no target.
//!
//! It lets a user wire up their tools before the company endpoint is configured, and gives the
//! tests a target that needs nothing but the proxy itself. Every answer follows OpenAI's
//! schema exactly, streams included, so a tool that works here works against a real target.

use std::convert::Infallible;

use axum::body::Body;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use bytes::Bytes;
use futures_util::stream;
use serde_json::{Value, json};

use crate::error::{ProxyError, json_response};
use crate::formats::sse;
use crate::formats::usage::estimate_tokens;
use crate::ids::{new_id, unix_now};
use crate::request::Peeked;

/// Models the placeholder lists: names tools recognise, plus one that says what it is.
const MODELS: [&str; 5] = [
    "gpt-4o",
    "gpt-4o-mini",
    "text-embedding-3-small",
    "text-embedding-3-large",
    "placeholder",
];
/// A fixed creation time (2024-05-13) so model listings are stable across runs.
const MODELS_CREATED: u64 = 1_715_558_400;
const OWNER: &str = "local-llm-proxy";
/// Length of `text-embedding-3-small` vectors, the default when `dimensions` is not given.
const DEFAULT_EMBEDDING_DIMENSIONS: usize = 1536;
/// How much of the user's message the answer quotes back.
const ECHO_CHARS: usize = 200;

pub fn list_models() -> Response {
    let data: Vec<Value> = MODELS.iter().map(|id| model_object(id)).collect();
    json_response(StatusCode::OK, &json!({"object": "list", "data": data}))
}

/// Any id is a model here, as any model may be asked to chat.
pub fn get_model(id: &str) -> Response {
    json_response(StatusCode::OK, &model_object(id))
}

fn model_object(id: &str) -> Value {
    json!({"id": id, "object": "model", "created": MODELS_CREATED, "owned_by": OWNER})
}

pub fn chat_completion(request: &Peeked<'_>) -> Response {
    let reply = reply_to(last_user_text(request.input.get()).as_deref());
    let prompt_tokens = count_tokens(request.input.get());
    let completion_tokens = count_tokens(&reply);
    let id = new_id("chatcmpl-");
    let created = unix_now();
    if request.stream {
        let mut events = Vec::new();
        let chunk = |delta: Value, finish: Value| {
            let mut chunk = json!({
                "id": id, "object": "chat.completion.chunk", "created": created, "model": request.model,
                "system_fingerprint": null,
                "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
            });
            if request.include_usage {
                chunk["usage"] = Value::Null;
            }
            chunk
        };
        events.push(chunk(
            json!({"role": "assistant", "content": "", "refusal": null}),
            Value::Null,
        ));
        for word in words(&reply) {
            events.push(chunk(json!({"content": word}), Value::Null));
        }
        events.push(chunk(json!({}), json!("stop")));
        if request.include_usage {
            events.push(json!({
                "id": id, "object": "chat.completion.chunk", "created": created, "model": request.model,
                "system_fingerprint": null, "choices": [],
                "usage": usage(prompt_tokens, completion_tokens),
            }));
        }
        return sse_response(events);
    }
    json_response(
        StatusCode::OK,
        &json!({
            "id": id, "object": "chat.completion", "created": created, "model": request.model,
            "system_fingerprint": null,
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": reply, "refusal": null, "annotations": []},
                "logprobs": null,
                "finish_reason": "stop",
            }],
            "usage": usage(prompt_tokens, completion_tokens),
        }),
    )
}

pub fn completion(request: &Peeked<'_>) -> Response {
    let prompt = match serde_json::from_str::<Value>(request.input.get()) {
        Ok(Value::String(s)) => s,
        Ok(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    };
    let text = format!(" {}", reply_to(Some(&prompt)));
    let prompt_tokens = count_tokens(&prompt);
    let completion_tokens = count_tokens(&text);
    let id = new_id("cmpl-");
    let created = unix_now();
    let body = |text: &str, finish: Value| {
        json!({
            "id": id, "object": "text_completion", "created": created, "model": request.model,
            "system_fingerprint": null,
            "choices": [{"index": 0, "text": text, "logprobs": null, "finish_reason": finish}],
        })
    };
    if request.stream {
        let mut events: Vec<Value> = words(&text).map(|w| body(w, Value::Null)).collect();
        events.push(body("", json!("stop")));
        if request.include_usage {
            events.push(json!({
                "id": id, "object": "text_completion", "created": created, "model": request.model,
                "choices": [], "usage": usage(prompt_tokens, completion_tokens),
            }));
        }
        return sse_response(events);
    }
    let mut answer = body(&text, json!("stop"));
    answer["usage"] = usage(prompt_tokens, completion_tokens);
    json_response(StatusCode::OK, &answer)
}

/// Deterministic vectors: the same input always gives the same unit vector, so similarity
/// search behaves sensibly (identical texts match) while nothing is computed for real.
pub fn embeddings(request: &Peeked<'_>, body: &[u8]) -> Result<Response, ProxyError> {
    #[derive(serde::Deserialize)]
    struct Options {
        dimensions: Option<usize>,
        encoding_format: Option<String>,
    }
    let options: Options =
        serde_json::from_slice(body).map_err(|e| ProxyError::invalid(e.to_string()))?;
    let dimensions = options.dimensions.unwrap_or(DEFAULT_EMBEDDING_DIMENSIONS);
    if dimensions == 0 || dimensions > 8192 {
        return Err(ProxyError::InvalidRequest {
            message: "'dimensions' must be between 1 and 8192.".into(),
            param: Some("dimensions"),
            code: Some("invalid_value"),
        });
    }
    let base64 = match options.encoding_format.as_deref() {
        None | Some("float") => false,
        Some("base64") => true,
        Some(other) => {
            return Err(ProxyError::InvalidRequest {
                message: format!(
                    "Invalid value for 'encoding_format': '{other}'. Expected 'float' or 'base64'."
                ),
                param: Some("encoding_format"),
                code: Some("invalid_value"),
            });
        }
    };
    let inputs = embedding_inputs(request.input.get())?;
    let mut tokens = 0;
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(index, text)| {
            tokens += count_tokens(text);
            let vector = unit_vector(text.as_bytes(), dimensions);
            let embedding = if base64 {
                let bytes: Vec<u8> = vector.iter().flat_map(|x| x.to_le_bytes()).collect();
                json!(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                json!(vector)
            };
            json!({"object": "embedding", "index": index, "embedding": embedding})
        })
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "object": "list", "data": data, "model": request.model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }),
    ))
}

/// `input` as OpenAI accepts it: a string, strings, a token array, or token arrays. Token
/// arrays are embedded by their JSON text, which is as deterministic as anything.
fn embedding_inputs(raw: &str) -> Result<Vec<String>, ProxyError> {
    let invalid = || ProxyError::InvalidRequest {
        message: "'input' must be a non-empty string, array of strings, or array of token arrays."
            .into(),
        param: Some("input"),
        code: Some("invalid_type"),
    };
    let value: Value = serde_json::from_str(raw).map_err(|_| invalid())?;
    let inputs = match value {
        Value::String(s) => vec![s],
        Value::Array(items) if !items.is_empty() && items.iter().all(Value::is_number) => {
            vec![Value::Array(items).to_string()]
        }
        Value::Array(items) => items
            .into_iter()
            .map(|item| match item {
                Value::String(s) => Ok(s),
                Value::Array(tokens)
                    if !tokens.is_empty() && tokens.iter().all(Value::is_number) =>
                {
                    Ok(Value::Array(tokens).to_string())
                }
                _ => Err(invalid()),
            })
            .collect::<Result<_, _>>()?,
        _ => return Err(invalid()),
    };
    if inputs.is_empty() || inputs.iter().any(String::is_empty) {
        return Err(invalid());
    }
    Ok(inputs)
}

/// A unit vector from SplitMix64 seeded by the FNV-1a hash of the input.
fn unit_vector(input: &[u8], dimensions: usize) -> Vec<f32> {
    let mut state = input.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    });
    let mut vector: Vec<f32> = (0..dimensions)
        .map(|_| {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            // Top 24 bits to [-1, 1).
            ((z >> 40) as f32 / (1u64 << 23) as f32) - 1.0
        })
        .collect();
    let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        vector.iter_mut().for_each(|x| *x /= norm);
    }
    vector
}

/// The text of the last user message: a string, or the text parts of a content array.
fn last_user_text(messages: &str) -> Option<String> {
    let messages: Vec<Value> = serde_json::from_str(messages).ok()?;
    let last = messages.iter().rev().find(|m| m["role"] == "user")?;
    match &last["content"] {
        Value::String(s) => Some(s.clone()),
        Value::Array(parts) => Some(
            parts
                .iter()
                .filter_map(|p| p["text"].as_str())
                .collect::<Vec<_>>()
                .join(" "),
        ),
        _ => None,
    }
}

fn reply_to(user_text: Option<&str>) -> String {
    let intro = "This is a placeholder response from Local LLM Proxy: no target endpoint is configured, \
                 so nothing was sent to a model. Set TARGET_ENDPOINT to forward requests.";
    match user_text.map(str::trim).filter(|t| !t.is_empty()) {
        Some(text) => {
            let quoted: String = text.chars().take(ECHO_CHARS).collect();
            let ellipsis = if text.chars().count() > ECHO_CHARS {
                "…"
            } else {
                ""
            };
            format!("{intro} You said: \"{quoted}{ellipsis}\"")
        }
        None => intro.to_owned(),
    }
}

/// Words with their leading space, as a model streams them.
fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split_inclusive(' ')
}

fn count_tokens(text: &str) -> u64 {
    estimate_tokens(text.chars().count())
}

fn usage(prompt: u64, completion: u64) -> Value {
    json!({
        "prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                      "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0},
    })
}

fn sse_response(events: Vec<Value>) -> Response {
    let frames = events
        .into_iter()
        .map(|event| {
            let mut out = Vec::new();
            sse::push_event(&mut out, &event);
            Bytes::from(out)
        })
        .chain(std::iter::once(Bytes::from_static(sse::DONE)))
        .map(Ok::<_, Infallible>);
    let mut response = Body::from_stream(stream::iter(frames)).into_response();
    sse::set_stream_headers(response.headers_mut());
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_are_deterministic_unit_length_and_distinct() {
        let a = unit_vector(b"hello", 64);
        assert_eq!(a, unit_vector(b"hello", 64));
        assert_ne!(a, unit_vector(b"hullo", 64));
        let norm: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4);
    }

    #[test]
    fn reply_quotes_the_last_user_message() {
        let messages = r#"[{"role":"user","content":"first"},{"role":"assistant","content":"x"},
                           {"role":"user","content":[{"type":"text","text":"second"}]}]"#;
        assert_eq!(last_user_text(messages).as_deref(), Some("second"));
        assert!(reply_to(Some("second")).ends_with("You said: \"second\""));
    }

    #[test]
    fn embedding_inputs_accept_every_form() {
        assert_eq!(embedding_inputs(r#""a""#).unwrap().len(), 1);
        assert_eq!(embedding_inputs(r#"["a","b"]"#).unwrap().len(), 2);
        assert_eq!(embedding_inputs("[1,2,3]").unwrap().len(), 1);
        assert_eq!(embedding_inputs("[[1,2],[3]]").unwrap().len(), 2);
        assert!(embedding_inputs("[]").is_err());
        assert!(embedding_inputs(r#"[""]"#).is_err());
        assert!(embedding_inputs("{}").is_err());
    }
}
