//! Turns whatever the target answers into OpenAI's exact response shapes.
//!
//! Formats are detected by shape, with no configuration: OpenAI and its near relatives (vLLM,
//! llama.cpp, Azure, old TGI) are repaired in place; Anthropic Messages, Gemini, Cohere, TGI,
//! Ollama and Bedrock Converse are translated. A body that needs nothing is passed on as the
//! target's own bytes: the repair pass doubles as the validator, and only a body it changed is
//! serialized again. What was changed is recorded for the request log.

#[cfg(test)]
mod agreement_tests;
mod already_valid;
mod chat;
pub mod errors;
mod non_chat;
mod repair;
pub mod stream;

use bytes::Bytes;
use serde::Serialize;
use serde_json::Value;

use crate::formats::answer::Stamp;
use crate::formats::usage::{Usage, usage_of};
use crate::formats::{Format, anthropic};

pub use crate::formats::answer::finish_reason;
#[cfg(test)]
pub use already_valid::{is_valid_chat_completion, plain_chunk};
pub use chat::{chunks_from_completion, completion_from_stream};

/// What normalization did to one response, for the request log.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Changes {
    /// The format detected: `openai`, `anthropic`, `gemini`, `cohere-v2`, ...
    pub format: &'static str,
    /// What was filled in or mapped, in words.
    pub changed: Vec<String>,
}

impl Changes {
    pub fn new(format: &'static str) -> Self {
        Self {
            format,
            changed: Vec::new(),
        }
    }

    pub fn note(&mut self, what: impl Into<String>) {
        let what = what.into();
        if !self.changed.contains(&what) {
            self.changed.push(what);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.changed.is_empty()
    }
}

/// Which OpenAI response the client expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expected {
    ChatCompletion,
    Completion,
    Embeddings { base64: bool },
    Models,
    Model,
}

/// A response body fit for the client, and what it took.
#[derive(Debug)]
pub struct Normalized {
    pub body: Bytes,
    /// `None` when the target's bytes passed unchanged.
    pub changes: Option<Changes>,
    /// The token usage, when it was read on the way (the fast path), so the request log need
    /// not parse the body again.
    pub usage: Option<Usage>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NormalizeError {
    #[error("the body is not JSON")]
    NotJson,
    #[error("the body is JSON in a shape this proxy does not recognise ({0})")]
    Unrecognized(String),
}

/// Context a translation needs: what the client asked for, and what the target answers in.
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub model: String,
    pub include_usage: bool,
    /// The format of the target's answers when its `TARGET_API` says (it is still checked by
    /// shape); `None` when it may be any (`TARGET_API=openai`).
    pub answer_format: Option<Format>,
    /// The id and time for an answer whose target gives none.
    pub stamp: Stamp,
}

/// Normalizes a successful non-streaming body.
pub fn response(
    body: &Bytes,
    expected: Expected,
    context: &RequestContext,
) -> Result<Normalized, NormalizeError> {
    let known = context.answer_format;
    if expected == Expected::ChatCompletion
        && known.is_none_or(|format| format == Format::OpenAi)
        && let Some(usage) = already_valid::valid_chat_completion(body)
    {
        return Ok(Normalized {
            body: body.clone(),
            changes: None,
            usage: Some(usage),
        });
    }
    if expected == Expected::ChatCompletion
        && known.is_none_or(|format| format == Format::Anthropic)
        && let Some((translated, usage)) = anthropic::answer_bytes(body, &context.stamp)
    {
        let mut changes = Changes::new(Format::Anthropic.name());
        changes.note(format!("translated from {}", Format::Anthropic.name()));
        return Ok(Normalized {
            body: Bytes::from(translated),
            changes: Some(changes),
            usage: Some(usage),
        });
    }
    let (value, changes) = response_value(body, expected, context)?;
    // Read here, the usage spares the request log a parse of the body.
    let usage = usage_of(&value);
    if changes.is_empty() {
        return Ok(Normalized {
            body: body.clone(),
            changes: None,
            usage,
        });
    }
    let body =
        serde_json::to_vec(&value).map_err(|e| NormalizeError::Unrecognized(e.to_string()))?;
    Ok(Normalized {
        body: Bytes::from(body),
        changes: Some(changes),
        usage,
    })
}

/// A successful non-streaming body in the expected shape as a JSON tree, and what that took:
/// for a caller that goes on to build from it (a synthesized stream) rather than send it.
pub fn response_value(
    body: &[u8],
    expected: Expected,
    context: &RequestContext,
) -> Result<(Value, Changes), NormalizeError> {
    let mut value: Value = serde_json::from_slice(body).map_err(|_| NormalizeError::NotJson)?;
    let changes = match expected {
        Expected::ChatCompletion => chat::normalize(&mut value, context)?,
        Expected::Completion => non_chat::completion(&mut value, context)?,
        Expected::Embeddings { base64 } => {
            non_chat::embeddings(&mut value, &context.model, base64)?
        }
        Expected::Models => non_chat::models(&mut value)?,
        Expected::Model => non_chat::model(&mut value)?,
    };
    Ok((value, changes))
}

/// What the full repair pass would change in a chat completion body (the slow path, without
/// the fast check): for tests that hold the fast path to the same rules.
#[cfg(test)]
fn chat_changes(body: &[u8], context: &RequestContext) -> Result<Changes, NormalizeError> {
    let mut value: Value = serde_json::from_slice(body).map_err(|_| NormalizeError::NotJson)?;
    chat::normalize(&mut value, context)
}

/// A short description of a JSON value's shape, for error messages: its top-level keys.
fn shape_of(value: &Value) -> String {
    match value {
        Value::Object(map) => {
            let keys: Vec<&str> = map.keys().take(8).map(String::as_str).collect();
            format!("keys: {}", keys.join(", "))
        }
        Value::Array(items) => format!("an array of {}", items.len()),
        other => format!("a {}", type_name(other)),
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Makes `usage` a valid `CompletionUsage` object: the three counts as whole numbers (the total
/// computed when missing), token details only as objects of whole numbers.
fn repair_usage(usage: &mut Value, changes: &mut Changes) {
    if !usage.is_object() {
        *usage = serde_json::json!({});
        changes.note("replaced usage that was not an object");
    }
    let Some(map) = usage.as_object_mut() else {
        return;
    };
    for key in ["prompt_tokens", "completion_tokens"] {
        if !map.get(key).is_some_and(Value::is_u64) {
            map.insert(key.into(), serde_json::json!(0));
            changes.note(format!("filled usage.{key}"));
        }
    }
    if !map.get("total_tokens").is_some_and(Value::is_u64) {
        let total = map["prompt_tokens"].as_u64().unwrap_or(0)
            + map["completion_tokens"].as_u64().unwrap_or(0);
        map.insert("total_tokens".into(), serde_json::json!(total));
        changes.note("filled usage.total_tokens");
    }
    for key in ["prompt_tokens_details", "completion_tokens_details"] {
        match map.get_mut(key) {
            None => {}
            Some(Value::Object(details)) => {
                let before = details.len();
                details.retain(|_, v| v.is_u64());
                if details.len() != before {
                    changes.note(format!("removed invalid usage.{key} entries"));
                }
            }
            Some(_) => {
                map.remove(key);
                changes.note(format!("removed usage.{key} that was not an object"));
            }
        }
    }
}

/// Whether `value` is a non-empty string (ids must be).
fn has_text(value: Option<&Value>) -> bool {
    value.and_then(Value::as_str).is_some_and(|s| !s.is_empty())
}
