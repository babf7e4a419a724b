//! Reading a client's request body: bounded, and looked at just enough to route it.
//!
//! The body is forwarded byte for byte, so it is never re-serialized. It is parsed once into
//! borrowed views of the few fields the proxy acts on (`model`, `stream`, the required inputs);
//! every other parameter, known to us or not, stays as the client wrote it.

use axum::body::Body;
use axum::http::{HeaderMap, header};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::error::ProxyError;
use crate::error_chain::{find, is_length_limit};
use crate::timed_body::BodyTimeout;

/// Reads the whole body, refusing it as soon as it is known to be too large: from
/// `Content-Length` before reading anything, or while reading when there is none.
pub async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, ProxyError> {
    check_declared_length(headers, limit)?;
    axum::body::to_bytes(body, limit).await.map_err(|err| {
        if is_length_limit(&err) {
            ProxyError::BodyTooLarge { limit }
        } else if let Some(timeout) = find::<BodyTimeout>(&err) {
            ProxyError::BodyTimeout(BodyTimeout(timeout.0))
        } else {
            ProxyError::invalid(format!("Could not read the request body: {err}"))
        }
    })
}

pub fn check_declared_length(headers: &HeaderMap, limit: usize) -> Result<(), ProxyError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(length) if length > limit as u64 => Err(ProxyError::BodyTooLarge { limit }),
        _ => Ok(()),
    }
}

/// Which OpenAI operation a body is for: decides the required input parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    ChatCompletions,
    Completions,
    Embeddings,
}

impl Operation {
    fn required_input(self) -> &'static str {
        match self {
            Self::ChatCompletions => "messages",
            Self::Completions => "prompt",
            Self::Embeddings => "input",
        }
    }
}

/// The fields the proxy reads, borrowed from the body.
#[derive(Debug, Deserialize)]
pub struct RequestView<'a> {
    #[serde(borrow, default)]
    model: Option<&'a RawValue>,
    #[serde(borrow, default)]
    messages: Option<&'a RawValue>,
    #[serde(borrow, default)]
    prompt: Option<&'a RawValue>,
    #[serde(borrow, default)]
    input: Option<&'a RawValue>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    stream_options: Option<StreamOptions>,
    #[serde(default)]
    encoding_format: Option<String>,
}

#[derive(Debug, Deserialize)]
struct StreamOptions {
    #[serde(default)]
    include_usage: Option<bool>,
}

/// What routing needs from a validated body.
#[derive(Debug)]
pub struct Peeked<'a> {
    pub model: String,
    pub stream: bool,
    pub include_usage: bool,
    /// The raw JSON of the required input (`messages`, `prompt` or `input`).
    pub input: &'a RawValue,
    /// Embeddings only: the client wants base64 vectors.
    pub base64: bool,
}

/// Checks that the body is a JSON object with a string `model` and the operation's input,
/// and reads what routing needs. The same checks OpenAI makes first, with the same messages,
/// so a mistake is reported before anything is sent to the target.
pub fn peek(body: &[u8], operation: Operation) -> Result<Peeked<'_>, ProxyError> {
    let view: RequestView<'_> = serde_json::from_slice(body).map_err(|err| {
        if err.is_data() {
            // Valid JSON of the wrong shape: an array, a string, `"stream": "yes"`...
            ProxyError::invalid(format!(
                "The request body is not a valid request object: {err}"
            ))
        } else {
            ProxyError::invalid(format!(
                "We could not parse the JSON body of your request ({err}). The API expects a JSON \
                 object, but what was sent was not valid JSON."
            ))
        }
    })?;
    let model = match view.model.map(RawValue::get) {
        None | Some("null") => return Err(missing_model()),
        Some(raw) => {
            serde_json::from_str::<String>(raw).map_err(|_| ProxyError::InvalidRequest {
                message: "Invalid type for 'model': expected a string.".into(),
                param: Some("model"),
                code: Some("invalid_type"),
            })?
        }
    };
    if model.is_empty() {
        return Err(missing_model());
    }
    let input = match operation {
        Operation::ChatCompletions => view.messages,
        Operation::Completions => view.prompt,
        Operation::Embeddings => view.input,
    }
    .filter(|raw| raw.get() != "null")
    .ok_or_else(|| ProxyError::missing_param(operation.required_input()))?;
    Ok(Peeked {
        model,
        stream: view.stream.unwrap_or(false),
        include_usage: view
            .stream_options
            .and_then(|o| o.include_usage)
            .unwrap_or(false),
        input,
        base64: view.encoding_format.as_deref() == Some("base64"),
    })
}

fn missing_model() -> ProxyError {
    ProxyError::InvalidRequest {
        message: "You must provide a model parameter.".into(),
        param: Some("model"),
        code: Some("missing_required_parameter"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_model_stream_and_usage_option() {
        let body = br#"{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"stream":true,
                       "stream_options":{"include_usage":true},"some_future_param":{"x":[1,2]}}"#;
        let peeked = peek(body, Operation::ChatCompletions).unwrap();
        assert_eq!(peeked.model, "gpt-4o");
        assert!(peeked.stream);
        assert!(peeked.include_usage);
    }

    #[test]
    fn names_the_missing_parameter() {
        let cases: [(&[u8], Operation, &str); 5] = [
            (br#"{"messages":[]}"#, Operation::ChatCompletions, "model"),
            (
                br#"{"model":null,"messages":[]}"#,
                Operation::ChatCompletions,
                "model",
            ),
            (br#"{"model":"m"}"#, Operation::ChatCompletions, "messages"),
            (br#"{"model":"m"}"#, Operation::Completions, "prompt"),
            (
                br#"{"model":"m","input":null}"#,
                Operation::Embeddings,
                "input",
            ),
        ];
        for (body, op, param) in cases {
            match peek(body, op) {
                Err(ProxyError::InvalidRequest { param: Some(p), .. }) => assert_eq!(p, param),
                other => panic!("expected missing {param}, got {other:?}"),
            }
        }
    }

    #[test]
    fn rejects_malformed_and_non_object_bodies() {
        for body in [
            &b"{\"model\":"[..],
            b"[1,2]",
            b"",
            b"{\"model\":\"m\",\"messages\":[]} trailing",
        ] {
            assert!(matches!(
                peek(body, Operation::ChatCompletions),
                Err(ProxyError::InvalidRequest { .. })
            ));
        }
        assert!(matches!(
            peek(br#"{"model":5,"messages":[]}"#, Operation::ChatCompletions),
            Err(ProxyError::InvalidRequest {
                param: Some("model"),
                ..
            })
        ));
    }
}
