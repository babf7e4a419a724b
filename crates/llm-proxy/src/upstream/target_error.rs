//! A target's error answer, made fit for an OpenAI client.
//!
//! An answer already in OpenAI's envelope passes through with its status and bytes (less any
//! echo of our credential). Anything else (an HTML error page from a gateway, plain text, some
//! other JSON) is wrapped in the envelope with a short excerpt, so the user sees the target's
//! own words without a stack trace or a page of markup.

use axum::http::StatusCode;
use bytes::Bytes;
use serde_json::Value;

use super::{UpstreamClient, UpstreamError};

/// Longest excerpt of a foreign error body quoted to the client.
const EXCERPT_CHARS: usize = 300;

/// The status and body to answer with: an OpenAI envelope as the target sent it, a foreign
/// error shape translated (`crate::normalize::errors`), or else an error quoting the body.
pub fn classify(
    client: &UpstreamClient,
    status: StatusCode,
    body: &Bytes,
) -> Result<(StatusCode, Bytes), UpstreamError> {
    let text = String::from_utf8_lossy(body);
    let redacted = client.redact(&text);
    let parsed: Option<Value> = serde_json::from_str(&redacted).ok();
    if let Some(value) = &parsed
        && is_openai_envelope(value)
    {
        let body = match redacted {
            std::borrow::Cow::Borrowed(_) => body.clone(),
            std::borrow::Cow::Owned(clean) => Bytes::from(clean),
        };
        return Ok((status, body));
    }
    if let Some(translated) = parsed
        .as_ref()
        .and_then(|value| crate::normalize::errors::translate(status, value))
    {
        return Ok((translated.status, Bytes::from(translated.body.to_string())));
    }
    let excerpt = match &parsed {
        Some(value) => json_message(value).unwrap_or_else(|| excerpt_of(&redacted)),
        None => excerpt_of(&redacted),
    };
    Err(UpstreamError::Target {
        host: client.host().to_owned(),
        status,
        excerpt,
    })
}

/// `{"error":{"message": string, "type", "param", "code"}}`, every key present as OpenAI sends it.
pub fn is_openai_envelope(value: &Value) -> bool {
    let Some(error) = value.get("error").and_then(Value::as_object) else {
        return false;
    };
    error.get("message").is_some_and(Value::is_string)
        && ["type", "param", "code"]
            .iter()
            .all(|key| error.contains_key(*key))
}

/// The human part of a foreign JSON error: `error.message`, `error` as a string, `message` or
/// `detail`, whichever the target used.
fn json_message(value: &Value) -> Option<String> {
    let candidates = [
        value.pointer("/error/message"),
        value.get("error"),
        value.get("message"),
        value.get("detail"),
    ];
    candidates
        .into_iter()
        .flatten()
        .find_map(Value::as_str)
        .map(|s| truncate(s.trim()))
}

/// A short, single-line excerpt; for an HTML page its `<title>`, which is where gateways put
/// the useful part ("502 Bad Gateway").
fn excerpt_of(text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    if let (Some(start), Some(end)) = (lower.find("<title>"), lower.find("</title>"))
        && start + 7 <= end
    {
        return truncate(text[start + 7..end].trim());
    }
    let plain: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if plain.is_empty() {
        return "(empty body)".to_owned();
    }
    truncate(&plain)
}

fn truncate(text: &str) -> String {
    match text.char_indices().nth(EXCERPT_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn envelope_needs_all_four_keys() {
        assert!(is_openai_envelope(
            &json!({"error":{"message":"m","type":"t","param":null,"code":null}})
        ));
        assert!(!is_openai_envelope(&json!({"error":{"message":"m"}})));
        assert!(!is_openai_envelope(&json!({"error":"m"})));
    }

    #[test]
    fn html_pages_are_reduced_to_their_title() {
        assert_eq!(
            excerpt_of("<html><head><title>502 Bad Gateway</title></head><body>..."),
            "502 Bad Gateway"
        );
    }

    #[test]
    fn text_is_one_short_line() {
        let long = "word ".repeat(200);
        let out = excerpt_of(&long);
        assert!(out.chars().count() <= EXCERPT_CHARS + 1);
        assert!(!out.contains('\n'));
        assert_eq!(excerpt_of("  \n "), "(empty body)");
    }

    #[test]
    fn foreign_json_messages_are_found() {
        assert_eq!(
            json_message(&json!({"error":"model overloaded"})).as_deref(),
            Some("model overloaded")
        );
        assert_eq!(
            json_message(&json!({"detail":"Not Found"})).as_deref(),
            Some("Not Found")
        );
        assert_eq!(
            json_message(
                &json!({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})
            )
            .as_deref(),
            Some("Overloaded")
        );
    }
}
