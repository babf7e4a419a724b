//! OpenAI's shapes that every layer speaks: the error envelope.

use serde::Serialize;

use super::answer::ForeignError;

/// OpenAI's error body. `param` and `code` serialize as `null` when absent: clients index them.
#[derive(Debug, Serialize)]
pub struct ErrorBody<'a> {
    error: ErrorDetails<'a>,
}

#[derive(Debug, Serialize)]
struct ErrorDetails<'a> {
    message: String,
    #[serde(rename = "type")]
    kind: &'a str,
    param: Option<&'a str>,
    code: Option<&'a str>,
}

impl<'a> ErrorBody<'a> {
    pub fn new(
        message: String,
        kind: &'a str,
        param: Option<&'a str>,
        code: Option<&'a str>,
    ) -> Self {
        Self {
            error: ErrorDetails {
                message,
                kind,
                param,
                code,
            },
        }
    }

    pub fn message(&self) -> &str {
        &self.error.message
    }

    pub fn to_json(&self) -> Vec<u8> {
        // Serializing strings and options into a Vec cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// `data: {"error":{...}}` and the blank line that ends an event: how a stream that has
    /// already started reports a failure.
    pub fn to_sse_event(&self) -> bytes::Bytes {
        let json = self.to_json();
        let mut out = Vec::with_capacity(json.len() + 8);
        super::sse::push_raw_event(&mut out, &json);
        bytes::Bytes::from(out)
    }
}

/// OpenAI's error `type` for a target's failure with this status, and its `code` where the
/// status alone says what went wrong: one table for errors translated from another shape and
/// errors quoted from a body that had none.
pub fn error_kind(status: u16) -> (&'static str, Option<&'static str>) {
    match status {
        // The target refused the proxy's own credential: the client's key was fine.
        401 => ("invalid_request_error", Some("upstream_auth_failed")),
        403 => ("invalid_request_error", Some("permission_denied")),
        404 => ("invalid_request_error", Some("not_found")),
        413 => ("invalid_request_error", Some("request_too_large")),
        429 => ("rate_limit_error", Some("rate_limit_exceeded")),
        503 => ("server_error", Some("overloaded")),
        400..=499 => ("invalid_request_error", None),
        _ => ("server_error", None),
    }
}

/// The message of an error event or body: `error.message`, or `error` itself when it is text.
pub fn error_message(value: &serde_json::Value) -> Option<String> {
    let error = value.get("error")?;
    error
        .get("message")
        .and_then(serde_json::Value::as_str)
        .or_else(|| error.as_str())
        .map(str::to_owned)
}

/// An error in OpenAI's envelope as its relatives send it (Azure, llama.cpp, newer vLLM, with
/// codes of any type), or in vLLM's older flat one (`{"object":"error","message",...}`).
pub fn foreign_error(value: &serde_json::Value) -> Option<ForeignError> {
    let text = |v: &serde_json::Value| v.as_str().map(str::to_owned);
    if value.get("object").and_then(serde_json::Value::as_str) == Some("error") {
        return Some(ForeignError {
            param: text(&value["param"]),
            ..ForeignError::new("vllm", value["message"].as_str()?, value["type"].as_str())
        });
    }
    let e = value.get("error").filter(|e| e.is_object())?;
    Some(ForeignError {
        param: text(&e["param"]),
        code: text(&e["code"]),
        ..ForeignError::new("openai-like", e["message"].as_str()?, e["type"].as_str())
    })
}
