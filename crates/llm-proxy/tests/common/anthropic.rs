//! A mock of Anthropic's Messages API (`POST /v1/messages`, `GET /v1/models`) on `127.0.0.1:0`,
//! for tests of the proxy's OpenAI→Anthropic translation. It checks requests as strictly as the
//! real API does and answers each failure in Anthropic's envelope, in the real API's wording
//! where it is known (messages quoted from real answers in public issue reports and in
//! `MESSAGES.md`). Its answers and streams follow the recorded ones in `tests/fixtures/anthropic/`.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::serve_on_loopback;
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use futures_util::stream;
use rand::Rng;
use serde_json::{Map, Value, json};
use tokio::sync::Notify;

/// The only `anthropic-version` the mock accepts.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";
/// The text of [`AnthropicReply::Text`].
pub const MOCK_TEXT: &str = "Hello from the mock.";
/// [`MOCK_TEXT`] as it is streamed: three deltas, as in the recorded `text-stream.sse`.
const TEXT_PIECES: [&str; 3] = ["Hello", " from the", " mock."];
/// The longest `partial_json` piece of a streamed tool input.
const JSON_PIECE: usize = 8;

const DOCS: &str = "https://docs.claude.com/en/docs/build-with-claude/extended-thinking";

/// One `POST /v1/messages` as the mock received it. A body that is not JSON is kept as a string.
#[derive(Clone, Debug)]
pub struct AnthropicRequest {
    pub headers: HeaderMap,
    pub body: Value,
    /// The body's bytes as they arrived.
    pub raw: Bytes,
    pub query: Option<String>,
}

/// What valid requests get.
#[derive(Clone, Debug)]
pub enum AnthropicReply {
    /// A message with one text block "Hello from the mock." (stop_reason end_turn), or its stream
    /// when the request has "stream": true.
    Text,
    /// A tool_use block calling `name` with `input`, stop_reason tool_use (or its stream:
    /// content_block_start tool_use + input_json_delta pieces).
    ToolUse { name: String, input: Value },
}

struct MockState {
    /// The `x-api-key` accepted; any non-empty bearer token is accepted too (OAuth).
    key: String,
    received: Mutex<Vec<AnthropicRequest>>,
    arrived: Notify,
    reply: Mutex<AnthropicReply>,
}

/// An in-process Anthropic API on `127.0.0.1:0`, with `/v1` as its base path.
pub struct MockAnthropic {
    pub addr: SocketAddr,
    state: Arc<MockState>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for MockAnthropic {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl MockAnthropic {
    /// Accepts `x-api-key: TARGET_KEY` (or any bearer token) and answers [`AnthropicReply::Text`].
    pub async fn start() -> Self {
        Self::with_key(super::TARGET_KEY).await
    }

    pub async fn with_key(key: &str) -> Self {
        let state = Arc::new(MockState {
            key: key.to_owned(),
            received: Mutex::new(Vec::new()),
            arrived: Notify::new(),
            reply: Mutex::new(AnthropicReply::Text),
        });
        let app = Router::new()
            .route("/v1/messages", post(messages_handler))
            .route("/v1/models", get(models_handler))
            .fallback(not_found)
            .with_state(state.clone());
        let (addr, server) = serve_on_loopback(app).await;
        Self {
            addr,
            state,
            server,
        }
    }

    /// The base URL, as the proxy's `TARGET_ENDPOINT`.
    pub fn url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Every `POST /v1/messages` received, in order, the rejected ones included.
    pub fn requests(&self) -> Vec<AnthropicRequest> {
        self.state.received.lock().unwrap().clone()
    }

    pub fn last(&self) -> AnthropicRequest {
        self.requests()
            .pop()
            .expect("the Anthropic mock received no request")
    }

    /// What valid requests get from now on.
    pub fn set_reply(&self, reply: AnthropicReply) {
        *self.state.reply.lock().unwrap() = reply;
    }

    /// Waits until `n` requests to `POST /v1/messages` have arrived in all.
    pub async fn wait_for_requests(&self, n: usize) {
        tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                let notified = self.state.arrived.notified();
                if self.state.received.lock().unwrap().len() >= n {
                    return;
                }
                notified.await;
            }
        })
        .await
        .expect("the Anthropic mock did not receive the requests in time");
    }
}

async fn messages_handler(
    State(state): State<Arc<MockState>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let parsed = serde_json::from_slice::<Value>(&body);
    let recorded = match &parsed {
        Ok(value) => value.clone(),
        Err(_) => Value::String(String::from_utf8_lossy(&body).into_owned()),
    };
    state.received.lock().unwrap().push(AnthropicRequest {
        headers: headers.clone(),
        body: recorded,
        raw: body.clone(),
        query: uri.query().map(str::to_owned),
    });
    state.arrived.notify_waiters();
    if let Some(response) = check_headers(&state.key, &headers) {
        return response;
    }
    let body = match parsed {
        Ok(body) => body,
        Err(e) => {
            return invalid_request(format!("There was an error parsing the body: {e}"));
        }
    };
    if let Err(message) = validate_request(&body) {
        return invalid_request(message);
    }
    let reply = state.reply.lock().unwrap().clone();
    let model = body["model"].as_str().unwrap_or_default();
    let input_tokens = estimate_input_tokens(&body);
    if body["stream"] == Value::Bool(true) {
        let events = stream_events(&reply, model, input_tokens);
        let chunks = events
            .into_iter()
            .map(|event| Ok::<_, std::io::Error>(Bytes::from(event)));
        let mut response = Body::from_stream(stream::iter(chunks)).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream; charset=utf-8"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        insert_request_id(headers, &request_id());
        response
    } else {
        answer(
            StatusCode::OK,
            &message(&reply, model, input_tokens),
            &request_id(),
        )
    }
}

async fn models_handler(State(state): State<Arc<MockState>>, headers: HeaderMap) -> Response {
    if let Some(response) = check_headers(&state.key, &headers) {
        return response;
    }
    let models = json!({
        "data": [
            {"type": "model", "id": "claude-sonnet-4-5", "display_name": "Claude Sonnet 4.5", "created_at": "2025-09-29T00:00:00Z"},
            {"type": "model", "id": "claude-opus-4-1", "display_name": "Claude Opus 4.1", "created_at": "2025-08-05T00:00:00Z"}
        ],
        "has_more": false,
        "first_id": "claude-sonnet-4-5",
        "last_id": "claude-opus-4-1"
    });
    answer(StatusCode::OK, &models, &request_id())
}

async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "not_found_error", "Not Found")
}

/// The rejection of a request that fails authentication (401) or lacks `anthropic-version`
/// (400), checked in that order as the real API does.
fn check_headers(key: &str, headers: &HeaderMap) -> Option<Response> {
    // Repeated headers are seen joined, as the real API sees them (a proxy that adds a header
    // the client already sent gets `"2023-06-01, 2023-06-01" is not a valid version`).
    let value = |name: &str| {
        let values: Vec<String> = headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect();
        (!values.is_empty()).then(|| values.join(", "))
    };
    let unauthorized =
        |message: &str| error(StatusCode::UNAUTHORIZED, "authentication_error", message);
    match (value("x-api-key"), value("authorization")) {
        (Some(presented), _) if presented != key => return Some(unauthorized("invalid x-api-key")),
        (Some(_), _) => {}
        (None, Some(authorization)) => {
            let token = authorization.strip_prefix("Bearer ").unwrap_or_default();
            if token.trim().is_empty() {
                return Some(unauthorized("Invalid bearer token"));
            }
        }
        (None, None) => return Some(unauthorized("x-api-key header is required")),
    }
    match value("anthropic-version") {
        None => Some(invalid_request("anthropic-version: header is required")),
        Some(version) if version == ANTHROPIC_VERSION => None,
        Some(version) => Some(invalid_request(format!(
            "anthropic-version: \"{version}\" is not a valid version"
        ))),
    }
}

fn invalid_request(message: impl Into<String>) -> Response {
    error(StatusCode::BAD_REQUEST, "invalid_request_error", message)
}

/// Anthropic's error envelope: `{"type":"error","error":{"type","message"},"request_id"}`.
fn error(status: StatusCode, kind: &str, message: impl Into<String>) -> Response {
    let id = request_id();
    let body = json!({
        "type": "error",
        "error": {"type": kind, "message": message.into()},
        "request_id": id,
    });
    answer(status, &body, &id)
}

fn answer(status: StatusCode, body: &Value, request_id: &str) -> Response {
    let mut response = (status, body.to_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    insert_request_id(headers, request_id);
    response
}

fn insert_request_id(headers: &mut HeaderMap, id: &str) {
    headers.insert("request-id", HeaderValue::from_str(id).unwrap());
}

fn random_suffix(len: usize) -> String {
    rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

fn request_id() -> String {
    format!("req_011C{}", random_suffix(20))
}

/// A rough count (4 characters a token) of what the model reads.
fn estimate_input_tokens(body: &Value) -> u64 {
    let chars: usize = ["system", "messages", "tools"]
        .iter()
        .filter_map(|key| body.get(*key))
        .map(|value| value.to_string().len())
        .sum();
    (chars / 4).max(1) as u64
}

fn output_tokens(reply: &AnthropicReply) -> u64 {
    match reply {
        AnthropicReply::Text => 6,
        AnthropicReply::ToolUse { input, .. } => 30 + input.to_string().len() as u64 / 4,
    }
}

/// The usage of a message, in the shape of the recorded `text.json`.
fn usage(input_tokens: u64, output_tokens: u64) -> Value {
    json!({
        "input_tokens": input_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
        "output_tokens": output_tokens,
        "service_tier": "standard",
        "inference_geo": "not_available"
    })
}

fn message(reply: &AnthropicReply, model: &str, input_tokens: u64) -> Value {
    let (content, stop_reason) = match reply {
        AnthropicReply::Text => (json!([{"type": "text", "text": MOCK_TEXT}]), "end_turn"),
        AnthropicReply::ToolUse { name, input } => (
            json!([{"type": "tool_use", "id": format!("toolu_01{}", random_suffix(22)), "name": name, "input": input}]),
            "tool_use",
        ),
    };
    json!({
        "model": model,
        "id": format!("msg_01{}", random_suffix(22)),
        "type": "message",
        "role": "assistant",
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": null,
        "usage": usage(input_tokens, output_tokens(reply)),
    })
}

fn event(name: &str, data: &Value) -> String {
    format!("event: {name}\ndata: {data}\n\n")
}

/// The stream of `reply`, event for event as the recorded streams go.
fn stream_events(reply: &AnthropicReply, model: &str, input_tokens: u64) -> Vec<String> {
    let mut start = message(reply, model, input_tokens);
    start["content"] = json!([]);
    start["stop_reason"] = Value::Null;
    start["usage"] = usage(input_tokens, 1);
    let mut events = vec![event(
        "message_start",
        &json!({"type": "message_start", "message": start}),
    )];
    // The real API writes this one with a space: `{"type": "ping"}`.
    let ping = "event: ping\ndata: {\"type\": \"ping\"}\n\n".to_owned();
    let delta = |delta: Value| {
        event(
            "content_block_delta",
            &json!({"type": "content_block_delta", "index": 0, "delta": delta}),
        )
    };
    let (block, deltas, stop_reason) = match reply {
        AnthropicReply::Text => (
            json!({"type": "text", "text": ""}),
            TEXT_PIECES
                .iter()
                .map(|piece| delta(json!({"type": "text_delta", "text": piece})))
                .collect::<Vec<_>>(),
            "end_turn",
        ),
        AnthropicReply::ToolUse { name, input } => {
            let id = format!("toolu_01{}", random_suffix(22));
            // An empty input is streamed as one empty piece (recorded `tool-no-args` stream).
            let mut pieces = vec![String::new()];
            if input.as_object().is_none_or(|o| !o.is_empty()) {
                pieces.extend(json_pieces(&input.to_string()));
            }
            (
                json!({"type": "tool_use", "id": id, "name": name, "input": {}}),
                pieces
                    .iter()
                    .map(|piece| delta(json!({"type": "input_json_delta", "partial_json": piece})))
                    .collect(),
                "tool_use",
            )
        }
    };
    events.push(event(
        "content_block_start",
        &json!({"type": "content_block_start", "index": 0, "content_block": block}),
    ));
    events.push(ping);
    events.extend(deltas);
    events.push(event(
        "content_block_stop",
        &json!({"type": "content_block_stop", "index": 0}),
    ));
    events.push(event(
        "message_delta",
        &json!({
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason, "stop_sequence": null},
            "usage": {
                "input_tokens": input_tokens,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
                "output_tokens": output_tokens(reply)
            }
        }),
    ));
    events.push(event("message_stop", &json!({"type": "message_stop"})));
    events
}

/// `json` cut into pieces of at most [`JSON_PIECE`] characters.
fn json_pieces(json: &str) -> Vec<String> {
    let chars: Vec<char> = json.chars().collect();
    chars
        .chunks(JSON_PIECE)
        .map(|piece| piece.iter().collect())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Validation: the first problem found, as the message of a 400 `invalid_request_error`.
// Paths are written as the real API writes them (`messages.1.content.0.tool_use.id`: the block's
// type names the variant), and its messages are reused where they are known.

type Checked<T = ()> = Result<T, String>;

const TOP_LEVEL: &[&str] = &[
    "model",
    "messages",
    "max_tokens",
    "system",
    "stop_sequences",
    "stream",
    "temperature",
    "top_p",
    "top_k",
    "tools",
    "tool_choice",
    "metadata",
    "thinking",
    "service_tier",
];
const MESSAGE_BLOCKS: &[&str] = &[
    "document",
    "image",
    "redacted_thinking",
    "text",
    "thinking",
    "tool_result",
    "tool_use",
];
const TOOL_RESULT_BLOCKS: &[&str] = &["document", "image", "text"];
const SERVER_TOOLS: &[&str] = &[
    "bash_20250124",
    "code_execution_20250825",
    "memory_20250818",
    "text_editor_20250728",
    "web_fetch_20250910",
    "web_search_20250305",
];
const CUSTOM_TOOL_FIELDS: &[&str] = &[
    "type",
    "name",
    "description",
    "input_schema",
    "cache_control",
    "strict",
    "defer_loading",
    "eager_input_streaming",
    "input_examples",
    "allowed_callers",
];
const IMAGE_TYPES: &[&str] = &["image/jpeg", "image/png", "image/gif", "image/webp"];

/// Checks a Messages request body as the real API does; `Err` holds the error message.
pub fn validate_request(body: &Value) -> Checked {
    let top = body
        .as_object()
        .ok_or("Input should be a valid dictionary")?;
    no_extra("", top, TOP_LEVEL)?;
    let model = string("model", required("", top, "model")?)?;
    if model.is_empty() {
        return Err("model: String should have at least 1 character".into());
    }
    let max_tokens = integer("max_tokens", required("", top, "max_tokens")?)?;
    if max_tokens < 1 {
        return Err("max_tokens: Input should be greater than or equal to 1".into());
    }
    let messages = list("messages", required("", top, "messages")?)?;
    if let Some(system) = top.get("system") {
        validate_system(system)?;
    }
    if let Some(stops) = top.get("stop_sequences") {
        for (k, stop) in list("stop_sequences", stops)?.iter().enumerate() {
            string(&format!("stop_sequences.{k}"), stop)?;
        }
    }
    if let Some(stream) = top.get("stream") {
        boolean("stream", stream)?;
    }
    for name in ["temperature", "top_p"] {
        if let Some(value) = top.get(name) {
            let value = number(name, value)?;
            if value < 0.0 {
                return Err(format!(
                    "{name}: Input should be greater than or equal to 0"
                ));
            }
            if value > 1.0 {
                return Err(format!("{name}: Input should be less than or equal to 1"));
            }
        }
    }
    if let Some(top_k) = top.get("top_k")
        && integer("top_k", top_k)? < 0
    {
        return Err("top_k: Input should be greater than or equal to 0".into());
    }
    if let Some(metadata) = top.get("metadata") {
        let metadata = object("metadata", metadata)?;
        no_extra("metadata", metadata, &["user_id"])?;
        match metadata.get("user_id") {
            None | Some(Value::Null) => {}
            Some(user) if string("metadata.user_id", user)?.chars().count() > 256 => {
                return Err("metadata.user_id: String should have at most 256 characters".into());
            }
            Some(_) => {}
        }
    }
    if let Some(tier) = top.get("service_tier")
        && !["auto", "standard_only"].contains(&string("service_tier", tier)?)
    {
        return Err("service_tier: Input should be 'auto' or 'standard_only'".into());
    }
    let thinking = match top.get("thinking") {
        Some(thinking) => validate_thinking(thinking, max_tokens)?,
        None => false,
    };
    let tool_names = match top.get("tools") {
        Some(tools) => validate_tools(tools)?,
        None => Vec::new(),
    };
    if let Some(choice) = top.get("tool_choice") {
        validate_tool_choice(choice, &tool_names, thinking)?;
    }
    if thinking
        && let Some(temperature) = top.get("temperature").and_then(Value::as_f64)
        && temperature != 1.0
    {
        return Err(format!(
            "`temperature` may only be set to 1 when thinking is enabled. Please consult our \
             documentation at {DOCS}#important-considerations-when-using-extended-thinking"
        ));
    }
    validate_messages(messages, thinking)
}

fn prefix(path: &str) -> String {
    if path.is_empty() {
        String::new()
    } else {
        format!("{path}.")
    }
}

fn no_extra(path: &str, object: &Map<String, Value>, allowed: &[&str]) -> Checked {
    match object.keys().find(|key| !allowed.contains(&key.as_str())) {
        Some(key) => Err(format!(
            "{}{key}: Extra inputs are not permitted",
            prefix(path)
        )),
        None => Ok(()),
    }
}

fn required<'a>(path: &str, object: &'a Map<String, Value>, field: &str) -> Checked<&'a Value> {
    object
        .get(field)
        .ok_or_else(|| format!("{}{field}: Field required", prefix(path)))
}

fn object<'a>(path: &str, value: &'a Value) -> Checked<&'a Map<String, Value>> {
    value
        .as_object()
        .ok_or_else(|| format!("{path}: Input should be a valid dictionary"))
}

fn list<'a>(path: &str, value: &'a Value) -> Checked<&'a Vec<Value>> {
    value
        .as_array()
        .ok_or_else(|| format!("{path}: Input should be a valid list"))
}

fn string<'a>(path: &str, value: &'a Value) -> Checked<&'a str> {
    value
        .as_str()
        .ok_or_else(|| format!("{path}: Input should be a valid string"))
}

/// A JSON integer; `1024.0` is not one (the API's validation is strict).
fn integer(path: &str, value: &Value) -> Checked<i64> {
    value
        .as_i64()
        .ok_or_else(|| format!("{path}: Input should be a valid integer"))
}

fn number(path: &str, value: &Value) -> Checked<f64> {
    value
        .as_f64()
        .ok_or_else(|| format!("{path}: Input should be a valid number"))
}

fn boolean(path: &str, value: &Value) -> Checked<bool> {
    value
        .as_bool()
        .ok_or_else(|| format!("{path}: Input should be a valid boolean"))
}

/// The `type` of a tagged union member, one of `expected`.
fn tag<'a>(path: &str, object: &'a Map<String, Value>, expected: &[&str]) -> Checked<&'a str> {
    let Some(tag) = object.get("type").and_then(Value::as_str) else {
        return Err(format!(
            "{path}: Unable to extract tag using discriminator 'type'"
        ));
    };
    if expected.contains(&tag) {
        Ok(tag)
    } else {
        let expected: Vec<String> = expected.iter().map(|t| format!("'{t}'")).collect();
        Err(format!(
            "{path}: Input tag '{tag}' found using 'type' does not match any of the expected tags: {}",
            expected.join(", ")
        ))
    }
}

/// `^[a-zA-Z0-9_-]+$`, at most `max` characters.
fn is_identifier(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn validate_text(path: &str, object: &Map<String, Value>) -> Checked {
    no_extra(
        path,
        object,
        &["type", "text", "cache_control", "citations"],
    )?;
    let text = string(&format!("{path}.text"), required(path, object, "text")?)?;
    let field = path.split('.').next().unwrap_or_default();
    if text.is_empty() {
        return Err(format!("{field}: text content blocks must be non-empty"));
    }
    if text.trim().is_empty() {
        return Err(format!(
            "{field}: text content blocks must contain non-whitespace text"
        ));
    }
    if let Some(cache) = object.get("cache_control") {
        validate_cache_control(&format!("{path}.cache_control"), cache)?;
    }
    Ok(())
}

fn validate_cache_control(path: &str, value: &Value) -> Checked {
    let cache = object(path, value)?;
    let kind = tag(path, cache, &["ephemeral"])?;
    let path = format!("{path}.{kind}");
    no_extra(&path, cache, &["type", "ttl"])?;
    if let Some(ttl) = cache.get("ttl")
        && !["5m", "1h"].contains(&string(&format!("{path}.ttl"), ttl)?)
    {
        return Err(format!("{path}.ttl: Input should be '5m' or '1h'"));
    }
    Ok(())
}

fn validate_system(system: &Value) -> Checked {
    if system.is_string() {
        return Ok(());
    }
    let Some(blocks) = system.as_array() else {
        return Err("system: Input should be a valid string".into());
    };
    for (k, block) in blocks.iter().enumerate() {
        let path = format!("system.{k}");
        let block = object(&path, block)?;
        let kind = tag(&path, block, &["text"])?;
        validate_text(&format!("{path}.{kind}"), block)?;
    }
    Ok(())
}

/// Whether thinking is on (`enabled` or `adaptive`).
fn validate_thinking(thinking: &Value, max_tokens: i64) -> Checked<bool> {
    let thinking = object("thinking", thinking)?;
    let kind = tag("thinking", thinking, &["adaptive", "disabled", "enabled"])?;
    let path = format!("thinking.{kind}");
    match kind {
        "enabled" => {
            no_extra(&path, thinking, &["type", "budget_tokens", "display"])?;
            let budget_path = format!("{path}.budget_tokens");
            let budget = integer(&budget_path, required(&path, thinking, "budget_tokens")?)?;
            if budget < 1024 {
                return Err(format!(
                    "{budget_path}: Input should be greater than or equal to 1024"
                ));
            }
            if budget >= max_tokens {
                return Err(format!(
                    "`max_tokens` must be greater than `thinking.budget_tokens`. Please consult \
                     our documentation at {DOCS}#max-tokens-and-context-window-size"
                ));
            }
        }
        "adaptive" => no_extra(&path, thinking, &["type", "display"])?,
        _ => {
            no_extra(&path, thinking, &["type"])?;
            return Ok(false);
        }
    }
    if let Some(display) = thinking.get("display")
        && !["summarized", "omitted"].contains(&string(&format!("{path}.display"), display)?)
    {
        return Err(format!(
            "{path}.display: Input should be 'summarized' or 'omitted'"
        ));
    }
    Ok(true)
}

/// The tools' names.
fn validate_tools(tools: &Value) -> Checked<Vec<String>> {
    let mut names = Vec::new();
    let expected: Vec<&str> = SERVER_TOOLS
        .iter()
        .copied()
        .chain(["custom"])
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    for (k, tool) in list("tools", tools)?.iter().enumerate() {
        let path = format!("tools.{k}");
        let tool = object(&path, tool)?;
        let kind = match tool.get("type") {
            None => "custom",
            Some(_) => tag(&path, tool, &expected)?,
        };
        let path = format!("{path}.{kind}");
        let name = string(&format!("{path}.name"), required(&path, tool, "name")?)?;
        names.push(name.to_owned());
        if kind != "custom" {
            continue;
        }
        no_extra(&path, tool, CUSTOM_TOOL_FIELDS)?;
        if !is_identifier(name, 128) {
            return Err(format!(
                "{path}.name: String should match pattern '^[a-zA-Z0-9_-]{{1,128}}$'"
            ));
        }
        if let Some(description) = tool.get("description") {
            string(&format!("{path}.description"), description)?;
        }
        let schema_path = format!("{path}.input_schema");
        let schema = object(&schema_path, required(&path, tool, "input_schema")?)?;
        match schema.get("type") {
            None => return Err(format!("{schema_path}.type: Field required")),
            Some(kind) if kind == "object" => {}
            Some(_) => return Err(format!("{schema_path}.type: Input should be 'object'")),
        }
        if !jsonschema::draft202012::meta::is_valid(&Value::Object(schema.clone())) {
            return Err(format!(
                "{schema_path}: JSON schema is invalid. It must match JSON Schema draft 2020-12 \
                 (https://json-schema.org/draft/2020-12)."
            ));
        }
        if let Some(cache) = tool.get("cache_control") {
            validate_cache_control(&format!("{path}.cache_control"), cache)?;
        }
    }
    let unique: HashSet<&String> = names.iter().collect();
    if unique.len() != names.len() {
        return Err("tools: Tool names must be unique.".into());
    }
    Ok(names)
}

fn validate_tool_choice(choice: &Value, tool_names: &[String], thinking: bool) -> Checked {
    let choice = object("tool_choice", choice)?;
    let kind = tag("tool_choice", choice, &["any", "auto", "none", "tool"])?;
    let path = format!("tool_choice.{kind}");
    let allowed: &[&str] = match kind {
        "none" => &["type"],
        "tool" => &["type", "name", "disable_parallel_tool_use"],
        _ => &["type", "disable_parallel_tool_use"],
    };
    no_extra(&path, choice, allowed)?;
    if let Some(flag) = choice.get("disable_parallel_tool_use") {
        boolean(&format!("{path}.disable_parallel_tool_use"), flag)?;
    }
    if kind == "tool" {
        let name = string(&format!("{path}.name"), required(&path, choice, "name")?)?;
        if !tool_names.iter().any(|tool| tool == name) {
            return Err(format!("{path}.name: Tool '{name}' not found in `tools`"));
        }
    }
    if thinking && (kind == "any" || kind == "tool") {
        return Err("Thinking may not be enabled when tool_choice forces tool use.".into());
    }
    Ok(())
}

/// A content block where it was sent: message `index`, block `block`.
struct Placed<'a> {
    index: usize,
    block: usize,
    kind: &'a str,
    /// The `id` of a tool_use, the `tool_use_id` of a tool_result.
    id: &'a str,
}

/// Consecutive messages of one role, which the API combines into one turn.
struct Turn<'a> {
    role: &'a str,
    blocks: Vec<Placed<'a>>,
}

impl Turn<'_> {
    fn tool_use_ids(&self) -> impl Iterator<Item = &Placed<'_>> {
        self.blocks.iter().filter(|b| b.kind == "tool_use")
    }

    /// The tool_result ids at the start of the turn.
    fn leading_result_ids(&self) -> HashSet<&str> {
        self.blocks
            .iter()
            .take_while(|b| b.kind == "tool_result")
            .map(|b| b.id)
            .collect()
    }
}

fn validate_messages(messages: &[Value], thinking: bool) -> Checked {
    if messages.is_empty() {
        return Err("messages: at least one message is required".into());
    }
    let last = messages.len() - 1;
    let mut turns: Vec<Turn> = Vec::new();
    for (i, message) in messages.iter().enumerate() {
        let path = format!("messages.{i}");
        let message = object(&path, message)?;
        let role = string(&format!("{path}.role"), required(&path, message, "role")?)?;
        match role {
            "user" | "assistant" => {}
            "system" => {
                return Err(
                    "messages: Unexpected role \"system\". The Messages API accepts a \
                            top-level `system` parameter, not \"system\" as an input message role."
                        .into(),
                );
            }
            _ => {
                return Err(format!(
                    "{path}.role: Input should be 'user' or 'assistant'"
                ));
            }
        }
        no_extra(&path, message, &["role", "content"])?;
        let content = required(&path, message, "content")?;
        let final_assistant = i == last && role == "assistant";
        let empty = || {
            format!(
                "{path}: all messages must have non-empty content except for the optional final \
                 assistant message"
            )
        };
        let mut placed = Vec::new();
        match content {
            Value::String(text) => {
                if text.is_empty() && !final_assistant {
                    return Err(empty());
                }
                if !text.is_empty() && text.trim().is_empty() && !final_assistant {
                    return Err(
                        "messages: text content blocks must contain non-whitespace text".into(),
                    );
                }
                if final_assistant && text.ends_with(char::is_whitespace) {
                    return Err(
                        "messages: final assistant content cannot end with trailing whitespace"
                            .into(),
                    );
                }
                placed.push(Placed {
                    index: i,
                    block: 0,
                    kind: "text",
                    id: "",
                });
            }
            Value::Array(blocks) => {
                if blocks.is_empty() && !final_assistant {
                    return Err(empty());
                }
                for (j, block) in blocks.iter().enumerate() {
                    let (kind, id) = validate_block(&format!("{path}.content.{j}"), block, role)?;
                    placed.push(Placed {
                        index: i,
                        block: j,
                        kind,
                        id,
                    });
                }
                if final_assistant {
                    check_final_assistant(i, blocks, thinking)?;
                }
            }
            _ => {
                return Err(format!(
                    "{path}.content: Input should be a valid string or a list of content blocks"
                ));
            }
        }
        match turns.last_mut() {
            Some(turn) if turn.role == role => turn.blocks.extend(placed),
            _ => turns.push(Turn {
                role,
                blocks: placed,
            }),
        }
    }
    if turns[0].role != "user" {
        return Err("messages: first message must use the \"user\" role".into());
    }
    check_tool_pairs(&turns)?;
    if thinking {
        check_thinking_first(&turns)?;
    }
    Ok(())
}

fn check_final_assistant(i: usize, blocks: &[Value], thinking: bool) -> Checked {
    let Some(last_block) = blocks.last() else {
        return Ok(());
    };
    if let Some(text) = last_block.get("text").and_then(Value::as_str)
        && last_block["type"] == "text"
        && text.ends_with(char::is_whitespace)
    {
        return Err("messages: final assistant content cannot end with trailing whitespace".into());
    }
    let is_thinking = |b: &Value| b["type"] == "thinking" || b["type"] == "redacted_thinking";
    if !thinking && let Some(j) = blocks.iter().position(is_thinking) {
        return Err(format!(
            "messages.{i}.content.{j}: When thinking is disabled, an `assistant` message in the \
             final position cannot contain `thinking`. To use thinking blocks, enable `thinking` \
             in your request."
        ));
    }
    if is_thinking(last_block) {
        return Err(format!(
            "messages.{i}: The final block in an assistant message cannot be `thinking`."
        ));
    }
    Ok(())
}

/// Every tool_use answered at the start of the next turn; every tool_result answering one.
fn check_tool_pairs(turns: &[Turn]) -> Checked {
    let mut seen = HashSet::new();
    for (t, turn) in turns.iter().enumerate() {
        if turn.role == "assistant" {
            for used in turn.tool_use_ids() {
                if !seen.insert(used.id) {
                    return Err(format!(
                        "messages.{}.content.{}: `tool_use` ids must be unique",
                        used.index, used.block
                    ));
                }
            }
            let answered = turns
                .get(t + 1)
                .map(Turn::leading_result_ids)
                .unwrap_or_default();
            let missing: Vec<&Placed> = turn
                .tool_use_ids()
                .filter(|used| !answered.contains(used.id))
                .collect();
            if let Some(first) = missing.first() {
                let ids: Vec<&str> = missing.iter().map(|used| used.id).collect();
                return Err(format!(
                    "messages.{}: `tool_use` ids were found without `tool_result` blocks \
                     immediately after: {}. Each `tool_use` block must have a corresponding \
                     `tool_result` block in the next message.",
                    first.index,
                    ids.join(", ")
                ));
            }
        } else {
            let expected: HashSet<&str> = match t.checked_sub(1).map(|p| &turns[p]) {
                Some(previous) => previous.tool_use_ids().map(|used| used.id).collect(),
                None => HashSet::new(),
            };
            let mut leading = true;
            for block in &turn.blocks {
                if block.kind != "tool_result" {
                    leading = false;
                } else if !leading || !expected.contains(block.id) {
                    return Err(format!(
                        "messages.{}.content.{}: unexpected `tool_use_id` found in `tool_result` \
                         blocks: {}. Each `tool_result` block must have a corresponding \
                         `tool_use` block in the previous message.",
                        block.index, block.block, block.id
                    ));
                }
            }
        }
    }
    Ok(())
}

/// With thinking on, the assistant turn of the tool loop in progress must start with thinking.
fn check_thinking_first(turns: &[Turn]) -> Checked {
    let [.., assistant, user] = turns else {
        return Ok(());
    };
    let in_tool_loop = user.role == "user"
        && user.blocks.first().is_some_and(|b| b.kind == "tool_result")
        && assistant.tool_use_ids().next().is_some();
    let Some(first) = assistant.blocks.first() else {
        return Ok(());
    };
    if in_tool_loop && first.kind != "thinking" && first.kind != "redacted_thinking" {
        return Err(format!(
            "messages.{}.content.{}.type: Expected `thinking` or `redacted_thinking`, but found \
             `{}`. When `thinking` is enabled, a final `assistant` message must start with a \
             thinking block (preceeding the lastmost set of `tool_use` and `tool_result` blocks). \
             We recommend you include thinking blocks from previous turns. To avoid this \
             requirement, disable `thinking`. Please consult our documentation at {DOCS}",
            first.index, first.block, first.kind
        ));
    }
    Ok(())
}

/// A block of a message sent by `role`: its type, and its tool id if it has one.
fn validate_block<'a>(path: &str, block: &'a Value, role: &str) -> Checked<(&'a str, &'a str)> {
    let block = object(path, block)?;
    let kind = tag(path, block, MESSAGE_BLOCKS)?;
    let at = format!("{path}.{kind}");
    let mut id = "";
    match kind {
        "text" => validate_text(&at, block)?,
        "image" => validate_image(&at, block)?,
        "document" => validate_document(&at, block)?,
        "tool_use" => {
            if role != "assistant" {
                return Err(format!(
                    "{path}: `tool_use` blocks can only be in `assistant` messages"
                ));
            }
            no_extra(
                &at,
                block,
                &["type", "id", "name", "input", "cache_control", "caller"],
            )?;
            id = string(&format!("{at}.id"), required(&at, block, "id")?)?;
            if !is_identifier(id, usize::MAX) {
                return Err(format!(
                    "{at}.id: String should match pattern '^[a-zA-Z0-9_-]+$'"
                ));
            }
            let name = string(&format!("{at}.name"), required(&at, block, "name")?)?;
            if name.is_empty() {
                return Err(format!(
                    "{at}.name: String should have at least 1 character"
                ));
            }
            object(&format!("{at}.input"), required(&at, block, "input")?)?;
        }
        "tool_result" => {
            if role != "user" {
                return Err(format!(
                    "{path}: `tool_result` blocks can only be in `user` messages"
                ));
            }
            no_extra(
                &at,
                block,
                &[
                    "type",
                    "tool_use_id",
                    "content",
                    "is_error",
                    "cache_control",
                ],
            )?;
            let id_path = format!("{at}.tool_use_id");
            id = string(&id_path, required(&at, block, "tool_use_id")?)?;
            if !is_identifier(id, usize::MAX) {
                return Err(format!(
                    "{id_path}: String should match pattern '^[a-zA-Z0-9_-]+$'"
                ));
            }
            match block.get("content") {
                None | Some(Value::String(_)) => {}
                Some(Value::Array(parts)) => {
                    for (k, part) in parts.iter().enumerate() {
                        let part_path = format!("{at}.content.{k}");
                        let part = object(&part_path, part)?;
                        let part_kind = tag(&part_path, part, TOOL_RESULT_BLOCKS)?;
                        let part_at = format!("{part_path}.{part_kind}");
                        match part_kind {
                            "text" => validate_text(&part_at, part)?,
                            "image" => validate_image(&part_at, part)?,
                            _ => validate_document(&part_at, part)?,
                        }
                    }
                }
                Some(_) => {
                    return Err(format!(
                        "{at}.content: Input should be a valid string or a list of content blocks"
                    ));
                }
            }
            if let Some(flag) = block.get("is_error") {
                boolean(&format!("{at}.is_error"), flag)?;
            }
        }
        "thinking" | "redacted_thinking" => {
            if role != "assistant" {
                return Err(format!(
                    "{path}: `{kind}` blocks can only be in `assistant` messages"
                ));
            }
            let fields: &[&str] = if kind == "thinking" {
                &["thinking", "signature"]
            } else {
                &["data"]
            };
            let mut allowed = vec!["type"];
            allowed.extend(fields);
            no_extra(&at, block, &allowed)?;
            for field in fields {
                string(&format!("{at}.{field}"), required(&at, block, field)?)?;
            }
        }
        _ => unreachable!("tag() accepts only MESSAGE_BLOCKS"),
    }
    if let Some(cache) = block.get("cache_control") {
        validate_cache_control(&format!("{at}.cache_control"), cache)?;
    }
    Ok((kind, id))
}

fn validate_image(path: &str, block: &Map<String, Value>) -> Checked {
    use base64::Engine;
    no_extra(path, block, &["type", "source", "cache_control"])?;
    let source_path = format!("{path}.source");
    let source = object(&source_path, required(path, block, "source")?)?;
    let kind = tag(&source_path, source, &["base64", "url"])?;
    let at = format!("{source_path}.{kind}");
    if kind == "url" {
        no_extra(&at, source, &["type", "url"])?;
        let url = string(&format!("{at}.url"), required(&at, source, "url")?)?;
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(format!(
                "{at}.url: URL must use the http or https scheme (send `data:` URLs as a base64 \
                 source)"
            ));
        }
        return Ok(());
    }
    no_extra(&at, source, &["type", "media_type", "data"])?;
    let media_type = string(
        &format!("{at}.media_type"),
        required(&at, source, "media_type")?,
    )?;
    if !IMAGE_TYPES.contains(&media_type) {
        return Err(format!(
            "{at}.media_type: Input should be 'image/jpeg', 'image/png', 'image/gif' or 'image/webp'"
        ));
    }
    let data = string(&format!("{at}.data"), required(&at, source, "data")?)?;
    if data.is_empty()
        || base64::engine::general_purpose::STANDARD
            .decode(data)
            .is_err()
    {
        return Err(format!("{at}.data: The image data is not valid base64"));
    }
    Ok(())
}

fn validate_document(path: &str, block: &Map<String, Value>) -> Checked {
    no_extra(
        path,
        block,
        &[
            "type",
            "source",
            "title",
            "context",
            "citations",
            "cache_control",
        ],
    )?;
    let source_path = format!("{path}.source");
    let source = object(&source_path, required(path, block, "source")?)?;
    tag(&source_path, source, &["base64", "content", "text", "url"])?;
    Ok(())
}
