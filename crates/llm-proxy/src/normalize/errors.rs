//! Error bodies in foreign shapes, made OpenAI's envelope with the status kept and the type and
//! code mapped, because the SDKs pick their exception from the status and tools read the code.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::formats::answer::ForeignError;
use crate::formats::openai::{self, error_kind};
use crate::formats::{anthropic, gemini, ollama};

/// A target error translated: the status to answer with and the envelope.
#[derive(Debug, PartialEq)]
pub struct Translated {
    pub status: StatusCode,
    pub body: Value,
    pub format: &'static str,
}

/// Recognises Anthropic, Google, vLLM, TGI, Azure and plain-string errors. `None` when the body
/// is none of these (HTML, text, unknown JSON): the caller quotes an excerpt instead.
pub fn translate(status: StatusCode, value: &Value) -> Option<Translated> {
    // Google's envelope is OpenAI's with a `status`: it is tried first.
    let ForeignError {
        format,
        message,
        kind: foreign_type,
        param,
        code,
    } = anthropic::error(value)
        .or_else(|| gemini::error(value))
        .or_else(|| openai::foreign_error(value))
        .or_else(|| ollama::error(value))?;
    let status = match status.as_u16() {
        // Anthropic's "overloaded": a 503 is what clients know to retry.
        529 => StatusCode::SERVICE_UNAVAILABLE,
        _ if foreign_type.as_deref() == Some("overloaded_error") => StatusCode::SERVICE_UNAVAILABLE,
        _ => status,
    };
    let (kind, mapped_code) = classify(status, foreign_type.as_deref(), &message);
    Some(Translated {
        status,
        body: json!({"error": {"message": message, "type": kind, "param": param, "code": code.or(mapped_code.map(str::to_owned))}}),
        format,
    })
}

/// OpenAI's `type` and `code` for an error, from its status, the foreign type and the words.
fn classify(
    status: StatusCode,
    foreign_type: Option<&str>,
    message: &str,
) -> (&'static str, Option<&'static str>) {
    let lower = message.to_ascii_lowercase();
    let context = [
        "context length",
        "context window",
        "maximum context",
        "prompt is too long",
        "too many tokens",
        "max_tokens",
        "input is too long",
    ];
    if context.iter().any(|needle| lower.contains(needle)) && status.is_client_error() {
        return ("invalid_request_error", Some("context_length_exceeded"));
    }
    // A foreign type says what the status would have; then the one status table decides.
    let status = match foreign_type
        .unwrap_or_default()
        .to_ascii_lowercase()
        .as_str()
    {
        "rate_limit_error" | "resource_exhausted" | "throttlingexception" => 429,
        "authentication_error" | "unauthenticated" => 401,
        "permission_error" | "permission_denied" => 403,
        "not_found_error" | "not_found" => 404,
        "request_too_large" => 413,
        "overloaded_error" | "unavailable" | "unavailable_error" => 503,
        _ => status.as_u16(),
    };
    match error_kind(status) {
        (kind, Some("not_found")) if lower.contains("model") => (kind, Some("model_not_found")),
        kind => kind,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(status: u16, body: Value) -> Translated {
        translate(StatusCode::from_u16(status).unwrap(), &body).expect("recognised")
    }

    #[test]
    fn anthropic_overloaded_becomes_503_server_error() {
        let t = check(
            529,
            json!({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}),
        );
        assert_eq!(t.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(t.body["error"]["type"], "server_error");
        assert_eq!(t.body["error"]["message"], "Overloaded");
    }

    #[test]
    fn google_and_vllm_and_plain_shapes() {
        let google = check(
            429,
            json!({"error":{"code":429,"message":"Quota exceeded","status":"RESOURCE_EXHAUSTED"}}),
        );
        assert_eq!(google.body["error"]["code"], "rate_limit_exceeded");
        assert_eq!(google.format, "google");
        let vllm = check(
            400,
            json!({"object":"error","message":"This model's maximum context length is 4096 tokens","type":"BadRequestError","param":null,"code":400}),
        );
        assert_eq!(vllm.body["error"]["code"], "context_length_exceeded");
        let plain = check(404, json!({"error":"model 'x' not found"}));
        assert_eq!(plain.body["error"]["code"], "model_not_found");
        let azure = check(
            400,
            json!({"error":{"message":"The response was filtered","type":null,"param":"prompt","code":"content_filter","status":400}}),
        );
        assert_eq!(azure.body["error"]["type"], "invalid_request_error");
        assert_eq!(azure.body["error"]["code"], "content_filter");
        assert_eq!(azure.body["error"]["param"], "prompt");
        let numeric = check(
            400,
            json!({"error":{"code":400,"message":"bad","type":"invalid_request_error"}}),
        );
        assert!(
            numeric.body["error"]["code"].is_null(),
            "integer codes become strings or null"
        );
    }

    #[test]
    fn unknown_json_is_left_to_the_caller() {
        assert!(translate(StatusCode::BAD_GATEWAY, &json!({"detail": "x"})).is_none());
    }
}
