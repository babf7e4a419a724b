//! What is recorded of a call, and how a raw capture becomes a stored record.
//!
//! The request path only captures (cheap clones of `Bytes` and headers). Everything that costs
//! (parsing bodies for usage, assembling a stream into one message, redacting, truncating)
//! happens here, on the log writer's thread.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::Method;
use bytes::Bytes;
use serde::Serialize;
use serde_json::Value;

use super::compact::{EventCopy, HeaderCopy};
use crate::credential_headers::is_credential;
use crate::formats::chat_stream::{Assembled, assemble_stream};
use crate::formats::openai::error_message;
use crate::formats::usage::{Usage, estimate_tokens, usage_of};
use crate::metrics::Observed;
use crate::notes::{
    CallNotes, KnownUsage, NormalizationNote, RequestTranslation, StreamConclusion,
};
use crate::stats::Sample;

/// A response body as the recorder kept it.
#[derive(Debug)]
pub enum Collected {
    /// A single body: its chunks as they came (usually one; see `recorder` for when copied).
    Body(Vec<Bytes>),
    /// An event stream, kept compact while it lasts (see [`EventCopy`]).
    Events(EventCopy),
    /// A transcoded stream: nothing copied, the relay hands over the answer it assembled.
    Concluded(StreamConclusion),
}

impl Collected {
    /// The bytes held; an event stream's in its compact form.
    fn held_bytes(&self) -> usize {
        match self {
            Self::Body(chunks) => chunks.iter().map(Bytes::len).sum(),
            Self::Events(events) => events.held_bytes(),
            Self::Concluded(_) => 0,
        }
    }

    fn into_bytes(self) -> Bytes {
        match self {
            Self::Body(chunks) => match chunks.as_slice() {
                [] => Bytes::new(),
                [one] => one.clone(),
                many => Bytes::from(many.concat()),
            },
            Self::Events(events) => Bytes::from(events.decode()),
            Self::Concluded(_) => Bytes::new(),
        }
    }
}

/// The raw material of one record, gathered on the request path.
#[derive(Debug)]
pub struct CallCapture {
    pub started_at: SystemTime,
    pub method: Method,
    pub path: String,
    pub request_headers: HeaderCopy,
    pub notes: Option<CallNotes>,
    pub status: u16,
    pub event_stream: bool,
    pub ttfb: Option<Duration>,
    pub total: Duration,
    pub upstream: Option<Duration>,
    /// The response as the client received it (up to the collection cap).
    pub response: Collected,
    pub response_complete: bool,
    /// The client went away before the response was complete.
    pub disconnected: bool,
    pub normalization: Option<NormalizationNote>,
    pub known_usage: Option<KnownUsage>,
    /// The bodies were let go before the record was queued ([`CallCapture::shed_bodies`]).
    pub bodies_shed: bool,
}

/// Model names longer than this are cut, with a visible mark: a client chooses them, and each
/// is kept in the log, the statistics and a metric label.
pub const MODEL_MAX_BYTES: usize = 256;
const MODEL_CUT_MARK: &str = "…[truncated]";

fn capped_model(mut model: String) -> String {
    if model.len() > MODEL_MAX_BYTES {
        let mut cut = MODEL_MAX_BYTES;
        while !model.is_char_boundary(cut) {
            cut -= 1;
        }
        model.truncate(cut);
        model.push_str(MODEL_CUT_MARK);
    }
    model
}

/// Stored in place of a body that was let go while the log writer was behind.
pub const SHED_BODY: &str = "[not recorded: the request log was behind]";

impl CallCapture {
    /// The body bytes this capture holds until the writer takes it.
    pub fn body_bytes(&self) -> usize {
        self.notes.as_ref().map_or(0, |n| n.request_body.len()) + self.response.held_bytes()
    }

    /// Lets the bodies go while the writer is behind: the call is still recorded and counted,
    /// with what the handler and the forwarding noted (model, usage read on the way); its
    /// bodies say they were not recorded, and no usage is estimated from them.
    pub fn shed_bodies(&mut self) {
        if let Some(notes) = &mut self.notes {
            notes.request_body = Bytes::new();
        }
        self.response = Collected::Body(Vec::new());
        self.bodies_shed = true;
    }
}

/// One API call as stored and served by the dashboard API (see [`CallEntry`] for its shape).
#[derive(Debug, Clone)]
pub struct ApiCall {
    pub id: i64,
    /// Unix milliseconds at which the request arrived.
    pub time: i64,
    pub method: String,
    pub path: String,
    pub model: Option<String>,
    pub stream: bool,
    pub client: Option<String>,
    pub status: u16,
    pub latency_ms: f64,
    pub ttfb_ms: Option<f64>,
    pub upstream_ms: Option<f64>,
    pub usage: Option<Usage>,
    pub usage_source: UsageSource,
    pub request_headers: StoredHeaders,
    pub request_body: Option<String>,
    pub response_body: Option<String>,
    pub chunk_count: Option<u32>,
    pub error: Option<String>,
    /// What normalization changed in the response, when it changed anything.
    pub normalization: Option<Value>,
}

/// [`ApiCall`] less its headers and bodies (a test keeps the two in step): the row shown in
/// the table. Made from a call, or straight from a stored row without reading its bodies.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct CallSummary<'a> {
    pub(super) id: i64,
    pub(super) time: i64,
    pub(super) method: &'a str,
    pub(super) path: &'a str,
    pub(super) model: Option<&'a str>,
    pub(super) stream: bool,
    pub(super) client: Option<&'a str>,
    pub(super) status: u16,
    pub(super) latency_ms: f64,
    pub(super) ttfb_ms: Option<f64>,
    pub(super) upstream_ms: Option<f64>,
    pub(super) usage: Option<Usage>,
    pub(super) usage_source: UsageSource,
    pub(super) chunk_count: Option<u32>,
    pub(super) error: Option<&'a str>,
    pub(super) normalization: Option<&'a Value>,
}

/// A summary as the API serves it: ours, then the original project's names for the same facts.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SummaryEntry<'a> {
    #[serde(flatten)]
    summary: &'a CallSummary<'a>,
    timestamp: String,
    response_status: u16,
    /// Milliseconds.
    duration: f64,
}

impl<'a> CallSummary<'a> {
    fn entry(&'a self) -> SummaryEntry<'a> {
        SummaryEntry {
            summary: self,
            timestamp: iso_timestamp(self.time),
            response_status: self.status,
            duration: self.latency_ms,
        }
    }

    pub(super) fn to_json(&self) -> Value {
        serde_json::to_value(self.entry()).unwrap_or_default()
    }
}

/// A stored body as the API serves it: the JSON it holds, or its text when it is not JSON (cut
/// short, or not JSON to begin with). The original project served bodies parsed.
struct JsonOrText<'a>(&'a str);

impl Serialize for JsonOrText<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match serde_json::from_str::<&serde_json::value::RawValue>(self.0) {
            Ok(raw) => raw.serialize(serializer),
            Err(_) => serializer.serialize_str(self.0),
        }
    }
}

/// A whole call as the API serves it: the summary's fields, then headers and bodies.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CallEntry<'a> {
    #[serde(flatten)]
    summary: SummaryEntry<'a>,
    request_headers: &'a StoredHeaders,
    request_body: Option<JsonOrText<'a>>,
    response_body: Option<JsonOrText<'a>>,
}

impl Serialize for ApiCall {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let summary = self.summary_fields();
        CallEntry {
            summary: summary.entry(),
            request_headers: &self.request_headers,
            request_body: self.request_body.as_deref().map(JsonOrText),
            response_body: self.response_body.as_deref().map(JsonOrText),
        }
        .serialize(serializer)
    }
}

/// Where a call's token usage came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum UsageSource {
    /// The answer's `usage`.
    Response,
    /// The stream's usage chunk.
    Stream,
    /// Counted from the text's length: the answer reported none.
    Estimated,
    None,
}

impl UsageSource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Response => "response",
            Self::Stream => "stream",
            Self::Estimated => "estimated",
            Self::None => "none",
        }
    }

    /// From its stored text; anything unknown reads as `None`.
    pub(super) fn from_stored(stored: &str) -> Self {
        match stored {
            "response" => Self::Response,
            "stream" => Self::Stream,
            "estimated" => Self::Estimated,
            _ => Self::None,
        }
    }
}

/// How the log treats bodies.
#[derive(Debug, Clone, Copy)]
pub struct BodyPolicy {
    pub keep: bool,
    pub max_bytes: usize,
    /// The call is stored, not only counted: its headers and texts are worth making.
    pub stored: bool,
}

impl ApiCall {
    pub fn from_capture(mut capture: CallCapture, policy: BodyPolicy) -> Self {
        let (response, concluded) =
            match std::mem::replace(&mut capture.response, Collected::Body(Vec::new())) {
                Collected::Concluded(slot) => (Bytes::new(), slot.take()),
                collected => (collected.into_bytes(), None),
            };
        let notes = capture.notes.as_ref();
        // The request is parsed only when something needs it (an estimate, or a model the
        // handler could not note): most calls need neither.
        let request_json = std::cell::OnceCell::new();
        let request_json = || -> Option<&Value> {
            request_json
                .get_or_init(|| {
                    notes.and_then(|n| serde_json::from_slice::<Value>(&n.request_body).ok())
                })
                .as_ref()
        };
        let (response_text, parsed) = read_response(&capture, &response, concluded, policy.keep);
        let success = (200..300).contains(&capture.status);
        let (usage, usage_source) = match parsed.usage() {
            Some(found) => found,
            None if success && notes.is_some() && !capture.bodies_shed => {
                let prompt = request_json().map(prompt_text_len).unwrap_or(0);
                (parsed.estimate(prompt), UsageSource::Estimated)
            }
            None => (None, UsageSource::None),
        };
        let error = if capture.disconnected {
            Some("the client disconnected before the response was complete".to_owned())
        } else {
            parsed.error(success, capture.status)
        };
        let model = notes
            .and_then(|n| n.model.clone())
            .or_else(|| request_json()?.get("model")?.as_str().map(str::to_owned))
            .or_else(|| parsed.model())
            .map(capped_model);
        let client = capture
            .request_headers
            .get("user-agent")
            .map(|v| String::from_utf8_lossy(v).into_owned());
        let body = |text: Option<String>| {
            if policy.keep {
                text.map(|t| truncate(t, policy.max_bytes))
            } else {
                None
            }
        };
        let request_body = if !policy.keep {
            None
        } else if capture.bodies_shed {
            notes.map(|_| SHED_BODY.to_owned())
        } else {
            notes.map(|n| text(&n.request_body))
        };
        let response_body =
            if capture.response_complete || capture.event_stream || capture.bodies_shed {
                response_text
            } else {
                response_text.map(|t| format!("{t}…[not recorded past this point]"))
            };
        Self {
            id: 0,
            time: unix_ms(capture.started_at),
            method: capture.method.to_string(),
            path: capture.path,
            model,
            stream: notes.is_some_and(|n| n.stream) || capture.event_stream,
            client,
            status: capture.status,
            latency_ms: ms(capture.total),
            ttfb_ms: capture.ttfb.map(ms),
            upstream_ms: capture.upstream.map(ms),
            usage,
            usage_source,
            request_headers: if policy.stored {
                StoredHeaders::redacted(&capture.request_headers)
            } else {
                StoredHeaders::default()
            },
            request_body: body(request_body),
            response_body: body(response_body),
            chunk_count: match &parsed {
                Parsed::Stream(assembled) => Some(assembled.chunks),
                Parsed::Json(_) | Parsed::Probed { .. } => None,
            },
            error,
            normalization: changes(
                capture.normalization.as_ref(),
                notes.and_then(|n| n.translation.as_ref()),
            ),
        }
    }

    /// The row shown in the table: everything but headers and bodies. Serialized without
    /// them, not made whole and then cut: a summary goes out for every call while a dashboard
    /// is open, and the headers are made JSON only for a call shown in full.
    pub fn summary(&self) -> Value {
        self.summary_fields().to_json()
    }

    fn summary_fields(&self) -> CallSummary<'_> {
        CallSummary {
            id: self.id,
            time: self.time,
            method: &self.method,
            path: &self.path,
            model: self.model.as_deref(),
            stream: self.stream,
            client: self.client.as_deref(),
            status: self.status,
            latency_ms: self.latency_ms,
            ttfb_ms: self.ttfb_ms,
            upstream_ms: self.upstream_ms,
            usage: self.usage,
            usage_source: self.usage_source,
            chunk_count: self.chunk_count,
            error: self.error.as_deref(),
            normalization: self.normalization.as_ref(),
        }
    }

    pub fn is_error(&self) -> bool {
        self.status >= 400 || self.error.is_some()
    }

    /// What the statistics count of this call.
    pub fn sample(&self) -> Sample<'_> {
        Sample {
            time: self.time,
            latency_ms: self.latency_ms,
            failed: self.is_error(),
            usage: self.usage,
            model: self.model.as_deref(),
        }
    }

    /// What the metrics count of this call.
    pub fn observed(&self) -> Observed<'_> {
        Observed {
            path: &self.path,
            model: self.model.as_deref(),
            status: self.status,
            latency_ms: self.latency_ms,
            ttfb_ms: self.ttfb_ms,
            usage: self.usage,
        }
    }
}

enum Parsed {
    /// A success body read for its usage and model only.
    Probed {
        usage: Usage,
        model: Option<String>,
    },
    Json(Option<Value>),
    Stream(Assembled),
}

/// What the proxy changed, for the record: the answer's normalization, and under `request`
/// how the request was written for the target.
fn changes(
    normalization: Option<&NormalizationNote>,
    translation: Option<&RequestTranslation>,
) -> Option<Value> {
    let mut changes = normalization
        .and_then(|note| note.0.get())
        .map(|c| serde_json::to_value(c).unwrap_or_default());
    if let Some(translation) = translation {
        let request = serde_json::to_value(translation).unwrap_or_default();
        match changes.as_mut().and_then(Value::as_object_mut) {
            Some(object) => {
                object.insert("request".into(), request);
            }
            None => changes = Some(serde_json::json!({ "request": request })),
        }
    }
    changes
}

/// The response text to store (when `keep_text`) and what was read of it: as little as the
/// call needs.
fn read_response(
    capture: &CallCapture,
    response: &Bytes,
    concluded: Option<Assembled>,
    keep_text: bool,
) -> (Option<String>, Parsed) {
    if capture.bodies_shed {
        let parsed = match capture.known_usage {
            Some(KnownUsage(usage)) => Parsed::Probed { usage, model: None },
            None => Parsed::Json(None),
        };
        return (keep_text.then(|| SHED_BODY.to_owned()), parsed);
    }
    if capture.event_stream {
        let assembled = concluded.unwrap_or_else(|| assemble_stream(response));
        let text = keep_text.then(|| assembled.message.to_string());
        return (text, Parsed::Stream(assembled));
    }
    let probed = (200..300)
        .contains(&capture.status)
        .then(|| match capture.known_usage {
            Some(KnownUsage(usage)) => Some((usage, None)),
            None => probe(response),
        })
        .flatten();
    let parsed = match probed {
        // The usual case, a success with its usage: read just that, no JSON tree.
        Some((usage, model)) => Parsed::Probed { usage, model },
        None => Parsed::Json(serde_json::from_slice(response).ok()),
    };
    (keep_text.then(|| text(response)), parsed)
}

impl Parsed {
    /// The usage the answer itself reported, and where it was.
    fn usage(&self) -> Option<(Option<Usage>, UsageSource)> {
        let (usage, source) = match self {
            Self::Probed { usage, .. } => (Some(*usage), UsageSource::Response),
            Self::Json(Some(value)) => (usage_of(value), UsageSource::Response),
            Self::Stream(assembled) => (assembled.usage, UsageSource::Stream),
            Self::Json(None) => (None, UsageSource::None),
        };
        usage.map(|usage| (Some(usage), source))
    }

    /// Usage estimated from the text's length, for an answer that did not report it.
    fn estimate(&self, prompt_chars: usize) -> Option<Usage> {
        let completion = match self {
            Self::Json(Some(value)) => completion_text_len(value),
            Self::Stream(assembled) => assembled.text_len,
            Self::Json(None) | Self::Probed { .. } => 0,
        };
        let (prompt, completion) = (estimate_tokens(prompt_chars), estimate_tokens(completion));
        Some(Usage {
            prompt_tokens: prompt,
            completion_tokens: completion,
            total_tokens: prompt + completion,
        })
    }

    fn error(&self, success: bool, status: u16) -> Option<String> {
        match self {
            Self::Json(Some(value)) if !success => error_message(value),
            Self::Json(None) if !success => Some(format!("HTTP {status}")),
            Self::Stream(assembled) => assembled.error.clone(),
            _ => None,
        }
    }

    /// The model the answer names.
    fn model(&self) -> Option<String> {
        match self {
            Self::Probed { model, .. } => model.clone(),
            Self::Json(Some(value)) => value.get("model")?.as_str().map(str::to_owned),
            _ => None,
        }
    }
}

/// The usage and model of a response, by a typed parse that builds no JSON tree; `None` when
/// the body has no usable `usage` (then the full parse decides).
fn probe(body: &[u8]) -> Option<(Usage, Option<String>)> {
    #[derive(serde::Deserialize)]
    struct Probe {
        usage: ProbeUsage,
        #[serde(default)]
        model: Option<String>,
    }
    #[derive(serde::Deserialize)]
    struct ProbeUsage {
        prompt_tokens: u64,
        #[serde(default)]
        completion_tokens: u64,
        #[serde(default)]
        total_tokens: Option<u64>,
    }
    let probe: Probe = serde_json::from_slice(body).ok()?;
    let u = probe.usage;
    let usage = Usage {
        prompt_tokens: u.prompt_tokens,
        completion_tokens: u.completion_tokens,
        total_tokens: u
            .total_tokens
            .unwrap_or(u.prompt_tokens + u.completion_tokens),
    };
    Some((usage, probe.model))
}

/// Characters of the text a request sends to the model (messages, prompt or input).
fn prompt_text_len(request: &Value) -> usize {
    ["messages", "prompt", "input"]
        .iter()
        .filter_map(|k| request.get(*k))
        .map(string_chars)
        .sum()
}

fn completion_text_len(response: &Value) -> usize {
    response
        .get("choices")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|choice| {
            choice
                .get("message")
                .map_or_else(|| string_chars(&choice["text"]), string_chars)
        })
        .sum()
}

fn string_chars(value: &Value) -> usize {
    match value {
        Value::String(s) => s.chars().count(),
        Value::Array(items) => items.iter().map(string_chars).sum(),
        Value::Object(map) => map.values().map(string_chars).sum(),
        _ => 0,
    }
}

/// A request's headers as stored: `name:value` lines in the order received, a repeated
/// header's lines adjacent (see [`HeaderCopy`]), credentials replaced. Shown as a JSON object,
/// a repeated header's values joined by ", ". Kept as lines because writing them as JSON for
/// every call cost the log writer 3.6k instructions more (callgrind, of the 41k the log added
/// to a completion), while a call's headers are asked for rarely.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredHeaders(String);

impl StoredHeaders {
    pub fn redacted(headers: &HeaderCopy) -> Self {
        // One UTF-8 check and whole lines copied: checking and copying header by header
        // cost more than the JSON this replaced.
        let text = as_text(headers.as_bytes());
        let mut stored = String::with_capacity(text.len());
        let mut previous = "";
        for line in text.split_terminator('\n') {
            let name = line.split_once(':').map_or(line, |(name, _)| name);
            if !is_credential(name) {
                stored.push_str(line);
                stored.push('\n');
            } else if name != previous {
                // A repeated credential is stored once.
                stored.push_str(name);
                stored.push_str(":[redacted]\n");
            }
            previous = name;
        }
        Self(stored)
    }

    /// Lines as [`StoredHeaders::as_str`] gave them.
    pub fn from_stored(text: String) -> Self {
        Self(text)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Serialize for StoredHeaders {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(None)?;
        let mut lines = self
            .0
            .lines()
            .filter_map(|line| line.split_once(':'))
            .peekable();
        while let Some((name, first)) = lines.next() {
            let mut value = std::borrow::Cow::Borrowed(first);
            while let Some((_, more)) = lines.next_if(|(next, _)| *next == name) {
                let joined = value.to_mut();
                joined.push_str(", ");
                joined.push_str(more);
            }
            map.serialize_entry(name, &value)?;
        }
        map.end()
    }
}

/// Cuts `text` at `max` bytes (on a character boundary) and says how much there was.
pub fn truncate(text: String, max: usize) -> String {
    if text.len() <= max {
        return text;
    }
    let mut cut = max;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}…[truncated: {} bytes in all]", &text[..cut], text.len())
}

/// [`as_text`], owned.
fn text(bytes: &[u8]) -> String {
    as_text(bytes).into_owned()
}

/// A body or headers as text for the log. They are almost always UTF-8, which the standard
/// library's validator checks several times faster than the lossy conversion walks it.
fn as_text(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(valid) => valid.into(),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

/// Unix milliseconds as ISO 8601 in UTC with milliseconds (`2026-12-05T12:00:00.123Z`), as
/// JavaScript's `toISOString` writes them: the original project's `timestamp`.
pub fn iso_timestamp(unix_ms: i64) -> String {
    const FORMAT: &[time::format_description::BorrowedFormatItem<'_>] = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(unix_ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(FORMAT).ok())
        .unwrap_or_default()
}

pub fn unix_ms(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_is_visible_and_respects_characters() {
        assert_eq!(truncate("short".into(), 10), "short");
        let cut = truncate("ééééé".into(), 3);
        assert_eq!(cut, "é…[truncated: 10 bytes in all]");
    }

    #[test]
    fn a_summary_is_the_whole_call_less_headers_and_bodies() {
        let mut headers = axum::http::HeaderMap::new();
        headers.insert("user-agent", "OpenAI/Python".parse().unwrap());
        let call = ApiCall {
            id: 7,
            time: 1,
            method: "POST".into(),
            path: "/v1/chat/completions".into(),
            model: Some("m".into()),
            stream: true,
            client: Some("OpenAI/Python".into()),
            status: 200,
            latency_ms: 2.5,
            ttfb_ms: Some(1.0),
            upstream_ms: Some(2.0),
            usage: Some(Usage {
                prompt_tokens: 1,
                completion_tokens: 2,
                total_tokens: 3,
            }),
            usage_source: UsageSource::Stream,
            request_headers: StoredHeaders::redacted(&HeaderCopy::of(&headers)),
            request_body: Some("{}".into()),
            response_body: Some("{}".into()),
            chunk_count: Some(3),
            error: Some("e".into()),
            normalization: Some(serde_json::json!({"changed": 1})),
        };
        let mut whole = serde_json::to_value(&call).unwrap();
        let map = whole.as_object_mut().unwrap();
        for key in ["requestHeaders", "requestBody", "responseBody"] {
            assert!(map.remove(key).is_some(), "{key}");
        }
        assert_eq!(call.summary(), whole);
    }

    #[test]
    fn bodies_are_served_as_the_json_they_hold_and_cut_ones_as_text() {
        let serve = |body: &str| serde_json::to_value(JsonOrText(body)).unwrap();
        assert_eq!(
            serve(r#"{"model":"m","n":[1,2]}"#),
            serde_json::json!({"model": "m", "n": [1, 2]})
        );
        let cut = r#"{"model":"m"…[truncated: 9 bytes in all]"#;
        assert_eq!(serve(cut), Value::String(cut.into()));
        assert_eq!(serve("plain"), Value::String("plain".into()));
    }

    #[test]
    fn timestamps_are_iso_8601_utc_with_milliseconds() {
        assert_eq!(iso_timestamp(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso_timestamp(1_733_400_000_123), "2024-12-05T12:00:00.123Z");
    }

    #[test]
    fn credentials_in_headers_are_redacted() {
        let mut headers = axum::http::HeaderMap::new();
        for name in crate::credential_headers::CREDENTIAL_HEADERS {
            headers.insert(name.clone(), "secret-value".parse().unwrap());
            // A repeated credential is redacted once, not joined.
            headers.append(name, "second-secret".parse().unwrap());
        }
        headers.insert("user-agent", "OpenAI/Python".parse().unwrap());
        headers.append("x-tag", "a".parse().unwrap());
        headers.append("x-tag", "b".parse().unwrap());
        let stored = StoredHeaders::redacted(&HeaderCopy::of(&headers));
        assert!(!stored.as_str().contains("secret"), "{}", stored.as_str());
        let shown = serde_json::to_value(&stored).unwrap();
        let text = shown.to_string();
        assert!(!text.contains("secret"), "{text}");
        assert_eq!(shown["user-agent"], "OpenAI/Python");
        assert_eq!(shown["x-tag"], "a, b");
        for name in crate::credential_headers::CREDENTIAL_HEADERS {
            assert_eq!(shown[name.as_str()], "[redacted]");
        }
    }
}
