//! A mock of Ollama's native API (`POST /api/chat`, `GET /api/tags`) on `127.0.0.1:0`, for
//! tests of the proxy's OpenAI→Ollama translation. It decodes requests as the real server does
//! (Go's `encoding/json` into `api.ChatRequest`, then the checks of `server/routes.go`
//! `ChatHandler`), answers failures in Ollama's `{"error": "..."}` shape with the real server's
//! wording, and answers whole (`application/json`) or as an NDJSON stream
//! (`application/x-ndjson`, the default when `stream` is absent) as recorded in
//! `tests/fixtures/formats/ollama*.json{,l}`.
//!
//! It is stricter than the real server in one way, on purpose: Go's decoder silently drops the
//! fields `ChatRequest` does not declare, and Ollama ignores unknown `options`. An OpenAI field
//! left untranslated (`max_tokens`, `temperature` at the top level, `response_format`,
//! `tool_choice`, `n`...) is therefore accepted by the real server and changes nothing: the
//! client's setting is lost and no test would notice. The mock records such fields in
//! [`OllamaRequest::ignored_fields`] and refuses the request with a 400 saying so.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::serve_on_loopback;
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use bytes::Bytes;
use futures_util::stream;
use serde_json::{Map, Value, json};
use tokio::sync::Notify;

/// The text of [`OllamaReply::Text`].
pub const MOCK_TEXT: &str = "Hello from the mock.";
/// [`MOCK_TEXT`] as it is streamed: three pieces.
pub const TEXT_PIECES: [&str; 3] = ["Hello", " from the", " mock."];
/// `eval_count` of [`OllamaReply::Text`]: the completion tokens the proxy should report.
pub const TEXT_EVAL_COUNT: u64 = 6;
/// `eval_count` of [`OllamaReply::ToolCall`].
pub const TOOL_CALL_EVAL_COUNT: u64 = 21;

/// A model the mock has "pulled": its name in `/api/tags`, when it was modified, and whether it
/// can think (Ollama refuses `"think": true` for models that cannot).
pub struct LocalModel {
    pub name: &'static str,
    pub modified_at: &'static str,
    /// `modified_at` in Unix seconds: the `created` the proxy's model list should show.
    pub modified_unix: i64,
    pub thinking: bool,
    family: &'static str,
    parameter_size: &'static str,
    size: u64,
    digest: &'static str,
}

/// The models the mock knows; `llama3.2` also answers to its short name (the `:latest` tag is
/// implied, as in Ollama).
pub const MODELS: [LocalModel; 2] = [
    LocalModel {
        name: "llama3.2:latest",
        modified_at: "2025-05-04T17:37:44.706015396-07:00",
        modified_unix: 1_746_405_464,
        thinking: false,
        family: "llama",
        parameter_size: "3.2B",
        size: 2_019_393_189,
        digest: "a80c4f17acd55265feec403c7aef86be0c25983ab279d83f3bcd3abbcb5b8b72",
    },
    LocalModel {
        name: "qwen3:8b",
        modified_at: "2025-06-12T09:15:02.123456789Z",
        modified_unix: 1_749_719_702,
        thinking: true,
        family: "qwen3",
        parameter_size: "8.2B",
        size: 5_225_388_164,
        digest: "500a1f067a9f782620b40bee6f7b0c89e17ae61f686b92c24933e4ca4b2b8b41",
    },
];

/// One request as the mock received it, the rejected ones included. A body that is not JSON is
/// kept as a string.
#[derive(Clone, Debug)]
pub struct OllamaRequest {
    pub method: Method,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Value,
    /// Fields the real Ollama would have accepted and ignored (paths such as `max_tokens`,
    /// `messages[1].name`, `options.max_tokens`); any makes the mock answer 400.
    pub ignored_fields: Vec<String>,
}

/// What valid chat requests get.
#[derive(Clone, Debug)]
pub enum OllamaReply {
    /// "Hello from the mock.", done_reason "stop"; streamed in three pieces.
    Text,
    /// One tool call, its arguments an object and without an id, done_reason "stop": what
    /// Ollama answers (it has no "tool_calls" done reason).
    ToolCall { name: String, arguments: Value },
}

struct MockState {
    /// When set, the `Authorization: Bearer` key required (an Ollama behind a gateway).
    key: Option<String>,
    received: Mutex<Vec<OllamaRequest>>,
    arrived: Notify,
    reply: Mutex<OllamaReply>,
}

/// An in-process Ollama server on `127.0.0.1:0`; its root URL is the proxy's `TARGET_ENDPOINT`.
pub struct MockOllama {
    pub addr: SocketAddr,
    state: Arc<MockState>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for MockOllama {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl MockOllama {
    /// A local Ollama: no credential required. Answers [`OllamaReply::Text`].
    pub async fn start() -> Self {
        Self::serve(None).await
    }

    /// An Ollama behind a gateway that requires `Authorization: Bearer {key}`.
    pub async fn with_key(key: &str) -> Self {
        Self::serve(Some(key.to_owned())).await
    }

    async fn serve(key: Option<String>) -> Self {
        let state = Arc::new(MockState {
            key,
            received: Mutex::new(Vec::new()),
            arrived: Notify::new(),
            reply: Mutex::new(OllamaReply::Text),
        });
        // One handler for every route: Ollama's gin router answers a wrong method with the
        // same 404 as an unknown path (it does not send 405).
        let app = Router::new().fallback(handle).with_state(state.clone());
        let (addr, server) = serve_on_loopback(app).await;
        Self {
            addr,
            state,
            server,
        }
    }

    /// The server's root URL, as the proxy's `TARGET_ENDPOINT` (no `/v1`, no `/api`).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request received, in order, the rejected ones included.
    pub fn requests(&self) -> Vec<OllamaRequest> {
        self.state.received.lock().unwrap().clone()
    }

    pub fn last(&self) -> OllamaRequest {
        self.requests()
            .pop()
            .expect("the Ollama mock received no request")
    }

    /// What valid chat requests get from now on.
    pub fn set_reply(&self, reply: OllamaReply) {
        *self.state.reply.lock().unwrap() = reply;
    }

    /// Waits until `n` requests have arrived in all.
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
        .expect("the Ollama mock did not receive the requests in time");
    }
}

async fn handle(State(state): State<Arc<MockState>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let parsed = (!body.is_empty()).then(|| serde_json::from_slice::<Value>(&body));
    let ignored_fields = match &parsed {
        Some(Ok(value)) if parts.uri.path() == "/api/chat" => ignored_fields(value),
        _ => Vec::new(),
    };
    state.received.lock().unwrap().push(OllamaRequest {
        method: parts.method.clone(),
        path: parts.uri.path().to_owned(),
        headers: parts.headers.clone(),
        body: match &parsed {
            Some(Ok(value)) => value.clone(),
            _ => Value::String(String::from_utf8_lossy(&body).into_owned()),
        },
        ignored_fields: ignored_fields.clone(),
    });
    state.arrived.notify_waiters();

    let route = (parts.method.clone(), parts.uri.path());
    if route != (Method::POST, "/api/chat") && route != (Method::GET, "/api/tags") {
        return not_found();
    }
    if let Some(key) = &state.key {
        let expected = format!("Bearer {key}");
        let presented = parts.headers.get(header::AUTHORIZATION);
        if presented.is_none_or(|value| value.as_bytes() != expected.as_bytes()) {
            return error(StatusCode::UNAUTHORIZED, "unauthorized");
        }
    }
    if parts.method == Method::GET {
        return answer(StatusCode::OK, &tags());
    }
    let body = match parsed {
        None => return error(StatusCode::BAD_REQUEST, "missing request body"),
        Some(Err(e)) => return error(StatusCode::BAD_REQUEST, go_syntax_error(&body, &e)),
        Some(Ok(body)) => body,
    };
    if let Err(message) = decode_chat_request(&body) {
        return error(StatusCode::BAD_REQUEST, message);
    }
    if let Some(field) = ignored_fields.first() {
        return error(
            StatusCode::BAD_REQUEST,
            format!("mock: field {field} would be ignored by Ollama"),
        );
    }
    if let Err((status, message)) = check_chat_request(&body) {
        return error(status, message);
    }
    let name = body["model"].as_str().unwrap_or_default();
    let messages = body["messages"].as_array().map_or(0, Vec::len);
    // Ollama streams unless told not to.
    let streamed = body["stream"] != Value::Bool(false);
    if messages == 0 {
        // A request without messages only loads the model.
        let loaded = json!({"model": name, "created_at": created_at(),
            "message": {"role": "assistant", "content": ""}, "done": true, "done_reason": "load"});
        return if streamed {
            ndjson(vec![loaded])
        } else {
            answer(StatusCode::OK, &loaded)
        };
    }
    let reply = state.reply.lock().unwrap().clone();
    let prompt_eval_count = estimate_prompt_tokens(&body);
    if streamed {
        ndjson(stream_lines(&reply, name, prompt_eval_count))
    } else {
        answer(StatusCode::OK, &whole(&reply, name, prompt_eval_count))
    }
}

// ---------------------------------------------------------------------------------------------
// Answers

/// Go's `gin` default for an unknown route (or a known one with another method).
fn not_found() -> Response {
    let mut response = (StatusCode::NOT_FOUND, "404 page not found").into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    response
}

/// Ollama's error shape: `{"error": "message"}`.
fn error(status: StatusCode, message: impl Into<String>) -> Response {
    answer(status, &json!({"error": message.into()}))
}

/// JSON as gin's `c.JSON` writes it.
fn answer(status: StatusCode, body: &Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    response
}

/// One JSON object a line, each line sent as a chunk of its own.
fn ndjson(lines: Vec<Value>) -> Response {
    let chunks = lines
        .into_iter()
        .map(|line| Ok::<_, std::io::Error>(Bytes::from(format!("{line}\n"))));
    let mut response = Body::from_stream(stream::iter(chunks)).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    response
}

fn tags() -> Value {
    let models: Vec<Value> = MODELS
        .iter()
        .map(|m| {
            json!({
                "name": m.name,
                "model": m.name,
                "modified_at": m.modified_at,
                "size": m.size,
                "digest": m.digest,
                "details": {
                    "parent_model": "",
                    "format": "gguf",
                    "family": m.family,
                    "families": [m.family],
                    "parameter_size": m.parameter_size,
                    "quantization_level": "Q4_K_M"
                }
            })
        })
        .collect();
    json!({ "models": models })
}

/// Now, as Go writes a `time.Time` in UTC: RFC 3339 with up to nine fraction digits.
fn created_at() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

/// A rough count (4 characters a token) of what the model reads.
fn estimate_prompt_tokens(body: &Value) -> u64 {
    let chars: usize = ["messages", "tools"]
        .iter()
        .filter_map(|key| body.get(*key))
        .map(|value| value.to_string().len())
        .sum();
    (chars / 4).max(1) as u64
}

fn eval_count(reply: &OllamaReply) -> u64 {
    match reply {
        OllamaReply::Text => TEXT_EVAL_COUNT,
        OllamaReply::ToolCall { .. } => TOOL_CALL_EVAL_COUNT,
    }
}

/// The assistant message of `reply`, as the whole answer carries it.
fn reply_message(reply: &OllamaReply) -> Value {
    match reply {
        OllamaReply::Text => json!({"role": "assistant", "content": MOCK_TEXT}),
        OllamaReply::ToolCall { name, arguments } => json!({
            "role": "assistant",
            "content": "",
            "tool_calls": [{"function": {"index": 0, "name": name, "arguments": arguments}}]
        }),
    }
}

/// The fields of the final (`done: true`) object: the reason and the counts, durations in ns.
fn done(reply: &OllamaReply, model: &str, prompt_eval_count: u64, message: Value) -> Value {
    json!({
        "model": model,
        "created_at": created_at(),
        "message": message,
        "done": true,
        "done_reason": "stop",
        "total_duration": 4_883_583_458_u64,
        "load_duration": 1_334_875,
        "prompt_eval_count": prompt_eval_count,
        "prompt_eval_duration": 342_546_000,
        "eval_count": eval_count(reply),
        "eval_duration": 4_535_599_000_u64
    })
}

fn whole(reply: &OllamaReply, model: &str, prompt_eval_count: u64) -> Value {
    done(reply, model, prompt_eval_count, reply_message(reply))
}

/// The NDJSON lines of `reply`: text in three pieces, or the tool call in one line, then the
/// final object with an empty message and the counts.
fn stream_lines(reply: &OllamaReply, model: &str, prompt_eval_count: u64) -> Vec<Value> {
    let line = |message: Value| json!({"model": model, "created_at": created_at(), "message": message, "done": false});
    let mut lines: Vec<Value> = match reply {
        OllamaReply::Text => TEXT_PIECES
            .iter()
            .map(|piece| line(json!({"role": "assistant", "content": piece})))
            .collect(),
        OllamaReply::ToolCall { .. } => vec![line(reply_message(reply))],
    };
    lines.push(done(
        reply,
        model,
        prompt_eval_count,
        json!({"role": "assistant", "content": ""}),
    ));
    lines
}

// ---------------------------------------------------------------------------------------------
// Decoding, as Go's `encoding/json` decodes into `api.ChatRequest` (api/types.go): wrong types
// fail with a 400 in Go's words; null leaves a field at its zero value; unknown fields pass.

type Checked<T = ()> = Result<T, String>;

/// `ChatRequest`'s fields.
const CHAT_REQUEST_FIELDS: &[&str] = &[
    "model",
    "messages",
    "stream",
    "format",
    "keep_alive",
    "tools",
    "options",
    "think",
    "truncate",
    "shift",
    "_debug_render_only",
    "logprobs",
    "top_logprobs",
];
/// `Message`'s fields (`tool_call_id` since Ollama 0.12.10, whose answers carry call ids).
const MESSAGE_FIELDS: &[&str] = &[
    "role",
    "content",
    "thinking",
    "images",
    "tool_calls",
    "tool_name",
    "tool_call_id",
];
/// `ToolCall`'s fields, and `type`: OpenAI's `"type": "function"` loses nothing when ignored.
const TOOL_CALL_FIELDS: &[&str] = &["id", "function", "type"];
const TOOL_CALL_FUNCTION_FIELDS: &[&str] = &["index", "name", "arguments"];
const TOOL_FIELDS: &[&str] = &["type", "items", "function"];
const TOOL_FUNCTION_FIELDS: &[&str] = &["name", "description", "parameters"];

/// The kind of an `Options` field, which decides its check in `Options.FromMap`.
#[derive(Clone, Copy)]
enum OptionKind {
    Integer,
    Float,
    Boolean,
    Strings,
}

/// `api.Options` (and its embedded `Runner`) by JSON name.
const OPTIONS: &[(&str, OptionKind)] = &[
    ("num_ctx", OptionKind::Integer),
    ("num_batch", OptionKind::Integer),
    ("num_gpu", OptionKind::Integer),
    ("main_gpu", OptionKind::Integer),
    ("use_mmap", OptionKind::Boolean),
    ("num_thread", OptionKind::Integer),
    ("draft_num_predict", OptionKind::Integer),
    ("num_keep", OptionKind::Integer),
    ("seed", OptionKind::Integer),
    ("num_predict", OptionKind::Integer),
    ("top_k", OptionKind::Integer),
    ("top_p", OptionKind::Float),
    ("min_p", OptionKind::Float),
    ("typical_p", OptionKind::Float),
    ("repeat_last_n", OptionKind::Integer),
    ("temperature", OptionKind::Float),
    ("repeat_penalty", OptionKind::Float),
    ("presence_penalty", OptionKind::Float),
    ("frequency_penalty", OptionKind::Float),
    ("stop", OptionKind::Strings),
];

/// What Go's `ShouldBindJSON` says of a body that is not JSON.
fn go_syntax_error(body: &[u8], e: &serde_json::Error) -> String {
    match body.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(&b) if !b"{[\"-0123456789tfn".contains(&b) => {
            format!(
                "invalid character '{}' looking for beginning of value",
                b as char
            )
        }
        _ if e.is_eof() => "unexpected EOF".to_owned(),
        _ => format!("invalid character in JSON: {e}"),
    }
}

/// How Go's decoder names a JSON value it cannot store.
fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// `json: cannot unmarshal X into Go struct field S.path of type T`.
fn type_error(found: &Value, field: &str, go_type: &str) -> String {
    format!(
        "json: cannot unmarshal {} into Go struct field ChatRequest.{field} of type {go_type}",
        json_kind(found)
    )
}

fn go_string(value: &Value, field: &str) -> Checked {
    match value {
        Value::Null | Value::String(_) => Ok(()),
        other => Err(type_error(other, field, "string")),
    }
}

fn go_bool(value: &Value, field: &str) -> Checked {
    match value {
        Value::Null | Value::Bool(_) => Ok(()),
        other => Err(type_error(other, field, "bool")),
    }
}

/// An `int` field: a JSON number without a fraction (Go writes `number 1.5` for one with).
fn go_int(value: &Value, field: &str) -> Checked {
    match value {
        Value::Null => Ok(()),
        Value::Number(n) if n.is_i64() || n.is_u64() => Ok(()),
        Value::Number(n) => Err(format!(
            "json: cannot unmarshal number {n} into Go struct field ChatRequest.{field} of type int"
        )),
        other => Err(type_error(other, field, "int")),
    }
}

fn go_array<'a>(value: &'a Value, field: &str, go_type: &str) -> Checked<&'a [Value]> {
    match value {
        Value::Null => Ok(&[]),
        Value::Array(items) => Ok(items),
        other => Err(type_error(other, field, go_type)),
    }
}

fn go_object<'a>(
    value: &'a Value,
    field: &str,
    go_type: &str,
) -> Checked<Option<&'a Map<String, Value>>> {
    match value {
        Value::Null => Ok(None),
        Value::Object(map) => Ok(Some(map)),
        other => Err(type_error(other, field, go_type)),
    }
}

/// Decodes `body` as the real server does; `Err` is the message of its 400.
pub fn decode_chat_request(body: &Value) -> Checked {
    let Some(top) = body.as_object() else {
        return Err(format!(
            "json: cannot unmarshal {} into Go value of type api.ChatRequest",
            json_kind(body)
        ));
    };
    for (key, value) in top {
        match key.as_str() {
            "model" => go_string(value, "model")?,
            "messages" => {
                for message in go_array(value, "messages", "[]api.Message")? {
                    decode_message(message)?;
                }
            }
            "stream" | "truncate" | "shift" | "_debug_render_only" | "logprobs" => {
                go_bool(value, key)?;
            }
            "top_logprobs" => go_int(value, key)?,
            "keep_alive" => match value {
                Value::Null | Value::Number(_) | Value::String(_) => {}
                other => return Err(format!("Unsupported type: '{}'", json_kind(other))),
            },
            "tools" => {
                for tool in go_array(value, "tools", "api.Tools")? {
                    decode_tool(tool)?;
                }
            }
            "options" => {
                go_object(value, "options", "map[string]interface {}")?;
            }
            "think" => decode_think(value)?,
            // `format` is a json.RawMessage: anything decodes; ChatHandler judges it later.
            _ => {}
        }
    }
    Ok(())
}

fn decode_message(message: &Value) -> Checked {
    let Some(fields) = go_object(message, "messages", "api.Message")? else {
        return Ok(());
    };
    for (key, value) in fields {
        let field = format!("messages.{key}");
        match key.as_str() {
            "role" | "content" | "thinking" | "tool_name" | "tool_call_id" => {
                go_string(value, &field)?;
            }
            "images" => {
                for image in go_array(value, &field, "[]api.ImageData")? {
                    match image {
                        Value::Null => {}
                        // ImageData is a []byte: Go decodes a JSON string as standard base64.
                        Value::String(data) => decode_base64(data)?,
                        other => return Err(type_error(other, &field, "api.ImageData")),
                    }
                }
            }
            "tool_calls" => {
                for call in go_array(value, &field, "[]api.ToolCall")? {
                    decode_tool_call(call)?;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn decode_tool_call(call: &Value) -> Checked {
    let Some(fields) = go_object(call, "messages.tool_calls", "api.ToolCall")? else {
        return Ok(());
    };
    if let Some(id) = fields.get("id") {
        go_string(id, "messages.tool_calls.id")?;
    }
    let function = fields.get("function").unwrap_or(&Value::Null);
    let Some(function) = go_object(
        function,
        "messages.tool_calls.function",
        "api.ToolCallFunction",
    )?
    else {
        return Ok(());
    };
    for (key, value) in function {
        let field = format!("messages.tool_calls.function.{key}");
        match key.as_str() {
            "index" => go_int(value, &field)?,
            "name" => go_string(value, &field)?,
            // An ordered map: a JSON object, never the string OpenAI uses.
            "arguments" => {
                go_object(value, &field, "api.ToolCallFunctionArguments")?;
            }
            _ => {}
        }
    }
    Ok(())
}

fn decode_tool(tool: &Value) -> Checked {
    let Some(fields) = go_object(tool, "tools", "api.Tool")? else {
        return Ok(());
    };
    if let Some(kind) = fields.get("type") {
        go_string(kind, "tools.type")?;
    }
    let function = fields.get("function").unwrap_or(&Value::Null);
    let Some(function) = go_object(function, "tools.function", "api.ToolFunction")? else {
        return Ok(());
    };
    for key in ["name", "description"] {
        if let Some(value) = function.get(key) {
            go_string(value, &format!("tools.function.{key}"))?;
        }
    }
    let parameters = function.get("parameters").unwrap_or(&Value::Null);
    let Some(parameters) = go_object(
        parameters,
        "tools.function.parameters",
        "api.ToolFunctionParameters",
    )?
    else {
        return Ok(());
    };
    if let Some(kind) = parameters.get("type") {
        go_string(kind, "tools.function.parameters.type")?;
    }
    if let Some(required) = parameters.get("required") {
        for name in go_array(required, "tools.function.parameters.required", "[]string")? {
            go_string(name, "tools.function.parameters.required")?;
        }
    }
    if let Some(properties) = parameters.get("properties") {
        go_object(
            properties,
            "tools.function.parameters.properties",
            "api.ToolPropertiesMap",
        )?;
    }
    Ok(())
}

/// `api.ThinkValue`: a boolean, or one of the effort levels some models take.
fn decode_think(value: &Value) -> Checked {
    match value {
        Value::Null | Value::Bool(_) => Ok(()),
        Value::String(level) if ["high", "medium", "low", "max"].contains(&level.as_str()) => {
            Ok(())
        }
        Value::String(level) => Err(format!(
            "invalid think value: \"{level}\" (must be \"high\", \"medium\", \"low\", \"max\", true, or false)"
        )),
        _ => Err(
            "think must be a boolean or string (\"high\", \"medium\", \"low\", \"max\", true, or false)"
                .to_owned(),
        ),
    }
}

/// Go's `base64.StdEncoding` (padding required, trailing bits allowed), in its words:
/// a data URL fails with `illegal base64 data at input byte 4` (the `:` of `data:`).
fn decode_base64(data: &str) -> Checked {
    const GO_STD: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
    );
    // Go skips line breaks inside base64.
    let cleaned: String = data.chars().filter(|c| *c != '\r' && *c != '\n').collect();
    match GO_STD.decode(&cleaned) {
        Ok(_) => Ok(()),
        Err(_) => {
            let at = cleaned
                .bytes()
                .position(|b| !(b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'='))
                .unwrap_or(cleaned.len());
            Err(format!("illegal base64 data at input byte {at}"))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// What the real server would ignore, and the checks of ChatHandler after decoding.

/// Every field of a chat request that Ollama would accept and then ignore (see the module doc).
pub fn ignored_fields(body: &Value) -> Vec<String> {
    let mut ignored = Vec::new();
    let Some(top) = body.as_object() else {
        return ignored;
    };
    let mut unknown = |path: String, object: &Map<String, Value>, known: &[&str]| {
        for key in object.keys().filter(|k| !known.contains(&k.as_str())) {
            ignored.push(if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            });
        }
    };
    unknown(String::new(), top, CHAT_REQUEST_FIELDS);
    let each = |key: &str| {
        top.get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
            .filter_map(|(i, v)| v.as_object().map(|o| (i, o)))
    };
    for (i, message) in each("messages") {
        unknown(format!("messages[{i}]"), message, MESSAGE_FIELDS);
        let calls = message.get("tool_calls").and_then(Value::as_array);
        for (k, call) in calls.into_iter().flatten().enumerate() {
            let Some(call) = call.as_object() else {
                continue;
            };
            let path = format!("messages[{i}].tool_calls[{k}]");
            unknown(path.clone(), call, TOOL_CALL_FIELDS);
            if let Some(function) = call.get("function").and_then(Value::as_object) {
                unknown(
                    format!("{path}.function"),
                    function,
                    TOOL_CALL_FUNCTION_FIELDS,
                );
            }
        }
    }
    for (i, tool) in each("tools") {
        unknown(format!("tools[{i}]"), tool, TOOL_FIELDS);
        if let Some(function) = tool.get("function").and_then(Value::as_object) {
            unknown(
                format!("tools[{i}].function"),
                function,
                TOOL_FUNCTION_FIELDS,
            );
        }
    }
    if let Some(options) = top.get("options").and_then(Value::as_object) {
        let known: Vec<&str> = OPTIONS.iter().map(|(name, _)| *name).collect();
        unknown("options".to_owned(), options, &known);
    }
    ignored
}

/// The model a request names, among [`MODELS`] (`llama3.2` is `llama3.2:latest`).
fn find_model(name: &str) -> Option<&'static LocalModel> {
    let full = if name.contains(':') {
        name.to_owned()
    } else {
        format!("{name}:latest")
    };
    MODELS.iter().find(|m| m.name == full)
}

/// The checks `ChatHandler` makes once the body decoded, in its order, with its statuses, and
/// the mock's own on roles and tool results; `Ok` is the model.
pub fn check_chat_request(body: &Value) -> Result<&'static LocalModel, (StatusCode, String)> {
    let bad = |message: String| Err((StatusCode::BAD_REQUEST, message));
    if let Some(n) = body.get("top_logprobs").and_then(Value::as_i64)
        && !(0..=20).contains(&n)
    {
        return bad("top_logprobs must be between 0 and 20".into());
    }
    let name = body["model"].as_str().unwrap_or_default();
    if name.is_empty() {
        return bad("model is required".into());
    }
    let Some(model) = find_model(name) else {
        return Err((StatusCode::NOT_FOUND, format!("model '{name}' not found")));
    };
    if body["think"] == Value::Bool(true) && !model.thinking {
        return bad(format!("\"{name}\" does not support thinking"));
    }
    check_messages(body).map_err(|m| (StatusCode::BAD_REQUEST, m))?;
    // `Options.FromMap` runs when the model is scheduled; its errors are answered as 500s.
    if let Some(options) = body.get("options").and_then(Value::as_object) {
        check_options(options).map_err(|m| (StatusCode::INTERNAL_SERVER_ERROR, m))?;
    }
    check_format(&body["format"]).map_err(|m| (StatusCode::INTERNAL_SERVER_ERROR, m))?;
    Ok(model)
}

/// Roles Ollama's chat templates understand (it lowercases them first), and tool results that
/// name the tool they answer. The real server renders other roles and unnamed tool results
/// without complaint, and the model reads a conversation that is not the client's: that is a
/// wrong translation, refused here.
fn check_messages(body: &Value) -> Checked {
    let messages = body["messages"].as_array().map_or(&[][..], Vec::as_slice);
    let mut called: Vec<&str> = Vec::new();
    for (i, message) in messages.iter().enumerate() {
        let role = message["role"].as_str().unwrap_or_default().to_lowercase();
        match role.as_str() {
            "system" | "user" => {}
            "assistant" => {
                let calls = message["tool_calls"]
                    .as_array()
                    .map_or(&[][..], Vec::as_slice);
                called.extend(calls.iter().filter_map(|c| c["function"]["name"].as_str()));
            }
            "tool" => match message["tool_name"].as_str() {
                None | Some("") => {
                    return Err(format!(
                        "mock: messages[{i}] is a tool result without tool_name; Ollama's \
                         templates name the tool it answers with it"
                    ));
                }
                Some(tool) if !called.contains(&tool) => {
                    return Err(format!(
                        "mock: messages[{i}].tool_name \"{tool}\" answers no earlier tool call"
                    ));
                }
                Some(_) => {}
            },
            other => {
                return Err(format!(
                    "mock: messages[{i}].role \"{other}\" is not one Ollama's chat templates \
                     render (system, user, assistant, tool)"
                ));
            }
        }
    }
    Ok(())
}

/// `Options.FromMap`, in its words.
fn check_options(options: &Map<String, Value>) -> Checked {
    for (key, value) in options {
        let Some((_, kind)) = OPTIONS.iter().find(|(name, _)| name == key) else {
            continue;
        };
        let ok = match (kind, value) {
            (_, Value::Null) => true,
            (OptionKind::Integer | OptionKind::Float, Value::Number(_)) => true,
            (OptionKind::Boolean, Value::Bool(_)) => true,
            (OptionKind::Strings, Value::Array(items)) => {
                if !items.iter().all(Value::is_string) {
                    return Err(format!("option \"{key}\" must be of an array of strings"));
                }
                true
            }
            _ => false,
        };
        if !ok {
            let kind = match kind {
                OptionKind::Integer => "integer",
                OptionKind::Float => "float32",
                OptionKind::Boolean => "boolean",
                OptionKind::Strings => "array",
            };
            return Err(format!("option \"{key}\" must be of type {kind}"));
        }
    }
    Ok(())
}

/// `format`: absent, null, "", "json", or a JSON Schema object.
fn check_format(format: &Value) -> Checked {
    match format {
        Value::Null | Value::Object(_) => Ok(()),
        Value::String(s) if s.is_empty() || s == "json" => Ok(()),
        other => {
            let raw = other.to_string();
            Err(format!(
                "invalid format: {raw:?}; expected \"json\" or a valid JSON Schema object"
            ))
        }
    }
}
