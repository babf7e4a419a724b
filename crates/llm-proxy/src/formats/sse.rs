//! Server-sent events as OpenAI streams them: `data: <json>` events, ended by `data: [DONE]`.

use axum::http::{HeaderMap, HeaderValue, header};
use serde::Serialize;

/// How events are delimited on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Server-sent events: blocks separated by a blank line.
    Sse,
    /// One JSON object per line (Ollama).
    Ndjson,
}

impl Framing {
    /// How a response with these headers frames its events; `None` when it is not a stream.
    /// The one place that decides whether an answer is a stream.
    pub fn of(headers: &HeaderMap) -> Option<Self> {
        headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(Self::from_content_type)
    }

    pub fn from_content_type(content_type: &str) -> Option<Self> {
        let content_type = content_type.to_ascii_lowercase();
        if content_type.starts_with("text/event-stream") {
            Some(Self::Sse)
        } else if content_type.contains("ndjson")
            || content_type.contains("jsonl")
            || content_type.contains("json-seq")
        {
            Some(Self::Ndjson)
        } else {
            None
        }
    }
}

/// The last event of an OpenAI stream.
pub const DONE: &[u8] = b"data: [DONE]\n\n";

/// Appends `value` as one event.
pub fn push_event(out: &mut Vec<u8>, value: &impl Serialize) {
    out.extend_from_slice(b"data: ");
    // Serializing into a Vec cannot fail for the proxy's own types.
    let _ = serde_json::to_writer(&mut *out, value);
    out.extend_from_slice(b"\n\n");
}

/// Appends JSON already serialized as one event.
pub fn push_raw_event(out: &mut Vec<u8>, json: &[u8]) {
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(json);
    out.extend_from_slice(b"\n\n");
}

/// The headers of an event stream, over whatever else `headers` holds.
pub fn set_stream_headers(headers: &mut HeaderMap) {
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Tells nginx-style buffering proxies in front of us (containers) to pass events at once.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
}

/// How the final events of the streams the proxy serves begin: chat's `[DONE]`, Anthropic's
/// `message_stop`, the Responses API's three endings (with or without an `event:` line).
const FINAL_EVENTS: [&[u8]; 8] = [
    b"data: [DONE]",
    b"event: message_stop",
    b"event: response.completed",
    b"event: response.incomplete",
    b"event: response.failed",
    b"data: {\"type\":\"response.completed\"",
    b"data: {\"type\":\"response.incomplete\"",
    b"data: {\"type\":\"response.failed\"",
];

/// Whether these bytes of a stream end with its final event: a client that goes away after
/// it has its whole answer (Codex closes as soon as it reads `response.completed`). Only the
/// last event is looked at, by its first line: a stream's every piece passes here.
pub fn ends_with_final_event(bytes: &[u8]) -> bool {
    let Some(body) = bytes.strip_suffix(b"\n\n") else {
        return false;
    };
    let last = memchr::memmem::rfind(body, b"\n\n").map_or(body, |at| &body[at + 2..]);
    FINAL_EVENTS.iter().any(|event| last.starts_with(event))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_final_event_of_each_api_is_recognized_only_at_the_end() {
        for done in [
            &b"data: {\"x\":1}\n\ndata: [DONE]\n\n"[..],
            b"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
            b"event: response.completed\ndata: {\"response\":{}}\n\n",
            b"data: {\"type\":\"response.failed\",\"response\":{}}\n\n",
        ] {
            assert!(
                ends_with_final_event(done),
                "{}",
                String::from_utf8_lossy(done)
            );
        }
        for not_done in [
            &b"data: [DONE]\n\ndata: {\"x\":1}\n\n"[..],
            b"data: {\"text\":\"data: [DONE]\"}\n\n",
            b"event: response.output_text.delta\ndata: {}\n\n",
            b"data: [DONE]",
        ] {
            assert!(
                !ends_with_final_event(not_done),
                "{}",
                String::from_utf8_lossy(not_done)
            );
        }
    }
}
