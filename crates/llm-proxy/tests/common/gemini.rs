//! A mock of Google's Gemini API (`POST /v1beta/models/{model}:generateContent`,
//! `:streamGenerateContent`, `GET /v1beta/models`) on `127.0.0.1:0`, for tests of the proxy's
//! OpenAI→Gemini translation. It reads a request body the way the real API's JSON-to-proto layer
//! does (any unknown field at any level refused, both `camelCase` and `snake_case` names taken,
//! types checked), then applies the API's own rules (roles, empty parts, function call and
//! response turns), and answers each failure in Google's envelope
//! `{"error":{"code","message","status"}}`, in the real API's words where they are known (quoted
//! from real answers in public issue reports). Its answers and streams follow the recorded ones in
//! `tests/fixtures/formats/gemini.*` and `openai/FORMATS.md`.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::serve_on_loopback;
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use futures_util::stream;
use rand::Rng;
use serde_json::{Map, Value, json};
use tokio::sync::Notify;

/// The text of [`GeminiReply::Text`].
pub const MOCK_TEXT: &str = "Hello from the mock.";
/// [`MOCK_TEXT`] as it is streamed: three events.
const TEXT_PIECES: [&str; 3] = ["Hello", " from the", " mock."];
/// `candidatesTokenCount` of a text answer.
const TEXT_TOKENS: u64 = 5;

/// The models the mock knows, with the methods each supports (as `GET /v1beta/models` lists them).
const MODELS: &[(&str, &str, &[&str])] = &[
    (
        "gemini-2.5-flash",
        "Gemini 2.5 Flash",
        &["generateContent", "countTokens", "streamGenerateContent"],
    ),
    (
        "gemini-2.5-pro",
        "Gemini 2.5 Pro",
        &["generateContent", "countTokens", "streamGenerateContent"],
    ),
    (
        "gemini-2.0-flash",
        "Gemini 2.0 Flash",
        &["generateContent", "countTokens", "streamGenerateContent"],
    ),
    (
        "text-embedding-004",
        "Text Embedding 004",
        &["embedContent"],
    ),
];

/// Query parameters every Google API takes (system parameters), plus `alt`.
const QUERY_PARAMETERS: &[&str] = &[
    "alt",
    "key",
    "prettyPrint",
    "fields",
    "quotaUser",
    "access_token",
    "callback",
    "$alt",
    "$fields",
    "$.xgafv",
];

/// One request as the mock received it, the rejected ones included. A body that is not JSON is
/// kept as a string; an empty one (a GET) is `Null`.
#[derive(Clone, Debug)]
pub struct GeminiRequest {
    pub method: Method,
    /// The path, `/v1beta/models/gemini-2.5-flash:generateContent`.
    pub path: String,
    /// The query string without `?`, if there was one.
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: Value,
}

impl GeminiRequest {
    /// The query's parameters, decoded, in order.
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        url::form_urlencoded::parse(self.query.as_deref().unwrap_or_default().as_bytes())
            .into_owned()
            .collect()
    }
}

/// What valid requests get.
#[derive(Clone, Debug)]
pub enum GeminiReply {
    /// A candidate with the text "Hello from the mock.", finishReason STOP (one per requested
    /// `candidateCount`), or its stream in three events.
    Text,
    /// A candidate whose one part is `{"functionCall": {name, args}}`, finishReason STOP (the
    /// real API has no tool finish reason), or its stream in one event.
    FunctionCall { name: String, args: Value },
}

struct MockState {
    /// The `x-goog-api-key` (or `?key=`) accepted; any non-empty bearer token is accepted too
    /// (OAuth).
    key: String,
    received: Mutex<Vec<GeminiRequest>>,
    arrived: Notify,
    reply: Mutex<GeminiReply>,
}

/// An in-process Gemini API on `127.0.0.1:0`, with `/v1beta` as its base path.
pub struct MockGemini {
    pub addr: SocketAddr,
    state: Arc<MockState>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for MockGemini {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl MockGemini {
    /// Accepts `x-goog-api-key: TARGET_KEY` (or any bearer token) and answers
    /// [`GeminiReply::Text`].
    pub async fn start() -> Self {
        Self::with_key(super::TARGET_KEY).await
    }

    pub async fn with_key(key: &str) -> Self {
        let state = Arc::new(MockState {
            key: key.to_owned(),
            received: Mutex::new(Vec::new()),
            arrived: Notify::new(),
            reply: Mutex::new(GeminiReply::Text),
        });
        let app = Router::new()
            .route("/v1beta/models", get(list_models))
            .route("/v1beta/models/{*rest}", get(get_model).post(call_model))
            .fallback(not_found)
            .with_state(state.clone());
        let (addr, server) = serve_on_loopback(app).await;
        Self {
            addr,
            state,
            server,
        }
    }

    /// The API base, as the proxy's `TARGET_ENDPOINT`.
    pub fn url(&self) -> String {
        format!("http://{}/v1beta", self.addr)
    }

    /// Every request received, in order, the rejected ones and the GETs included.
    pub fn requests(&self) -> Vec<GeminiRequest> {
        self.state.received.lock().unwrap().clone()
    }

    pub fn last(&self) -> GeminiRequest {
        self.requests()
            .pop()
            .expect("the Gemini mock received no request")
    }

    /// What valid requests get from now on.
    pub fn set_reply(&self, reply: GeminiReply) {
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
        .expect("the Gemini mock did not receive the requests in time");
    }
}

/// Records a request; its body parsed as JSON when it is JSON.
fn record(
    state: &MockState,
    method: Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Value, serde_json::Error> {
    let parsed = if body.is_empty() {
        Ok(Value::Null)
    } else {
        serde_json::from_slice::<Value>(body)
    };
    let recorded = match &parsed {
        Ok(value) => value.clone(),
        Err(_) => Value::String(String::from_utf8_lossy(body).into_owned()),
    };
    state.received.lock().unwrap().push(GeminiRequest {
        method,
        path: uri.path().to_owned(),
        query: uri.query().map(str::to_owned),
        headers: headers.clone(),
        body: recorded,
    });
    state.arrived.notify_waiters();
    parsed
}

async fn call_model(
    State(state): State<Arc<MockState>>,
    Path(rest): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let parsed = record(&state, Method::POST, &uri, &headers, &body);
    if let Some(response) = check_credential(&state.key, &uri, &headers) {
        return response;
    }
    let query = query_pairs(&uri);
    if let Some(response) = check_query(&query) {
        return response;
    }
    let Some((model, method)) = rest.rsplit_once(':') else {
        return not_found().await;
    };
    if method != "generateContent" && method != "streamGenerateContent" {
        return not_found().await;
    }
    if !MODELS
        .iter()
        .any(|(name, _, methods)| *name == model && methods.contains(&method))
    {
        return error(
            StatusCode::NOT_FOUND,
            format!(
                "models/{model} is not found for API version v1beta, or is not supported for \
                 {method}. Call ListModels to see the list of available models and their \
                 supported methods."
            ),
        );
    }
    let body = match parsed {
        Ok(body) => body,
        Err(e) => {
            return invalid_argument(format!("Invalid JSON payload received. {e}"));
        }
    };
    if let Err(message) = validate_request(&body) {
        return invalid_argument(message);
    }
    let reply = state.reply.lock().unwrap().clone();
    let candidates = body
        .pointer("/generationConfig/candidateCount")
        .or_else(|| body.pointer("/generation_config/candidate_count"))
        .and_then(Value::as_u64)
        .unwrap_or(1);
    let answer = Answer {
        reply,
        model: model.to_owned(),
        candidates,
        prompt_tokens: estimate_prompt_tokens(&body),
        response_id: random_suffix(23),
    };
    if method == "generateContent" {
        return json_answer(StatusCode::OK, &answer.whole());
    }
    let events = answer.stream();
    let alt = query
        .iter()
        .find(|(name, _)| name == "alt" || name == "$alt");
    if alt.is_none_or(|(_, value)| value != "sse") {
        // Without `alt=sse` the real API answers a stream as one JSON array of its events.
        return json_answer(StatusCode::OK, &Value::Array(events));
    }
    let chunks = events
        .into_iter()
        .map(|event| Ok::<_, std::io::Error>(Bytes::from(format!("data: {event}\r\n\r\n"))));
    let mut response = Body::from_stream(stream::iter(chunks)).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    response
}

async fn list_models(
    State(state): State<Arc<MockState>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let _ = record(&state, Method::GET, &uri, &headers, &[]);
    if let Some(response) = check_credential(&state.key, &uri, &headers) {
        return response;
    }
    let query = query_pairs(&uri);
    let allowed =
        |name: &str| QUERY_PARAMETERS.contains(&name) || ["pageSize", "pageToken"].contains(&name);
    if let Some((name, _)) = query.iter().find(|(name, _)| !allowed(name)) {
        return unknown_query_parameter(name);
    }
    let models: Vec<Value> = MODELS.iter().map(model_entry).collect();
    json_answer(StatusCode::OK, &json!({ "models": models }))
}

async fn get_model(
    State(state): State<Arc<MockState>>,
    Path(rest): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let _ = record(&state, Method::GET, &uri, &headers, &[]);
    if let Some(response) = check_credential(&state.key, &uri, &headers) {
        return response;
    }
    match MODELS.iter().find(|(name, _, _)| *name == rest) {
        Some(model) => json_answer(StatusCode::OK, &model_entry(model)),
        None => error(
            StatusCode::NOT_FOUND,
            format!("models/{rest} is not found for API version v1beta"),
        ),
    }
}

async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "Method not found.")
}

fn model_entry((name, display, methods): &(&str, &str, &[&str])) -> Value {
    let mut model = json!({
        "name": format!("models/{name}"),
        "version": "001",
        "displayName": display,
        "description": format!("{display}, as the mock knows it"),
        "inputTokenLimit": 1_048_576,
        "outputTokenLimit": 65_536,
        "supportedGenerationMethods": methods,
    });
    if methods.contains(&"generateContent") {
        model["temperature"] = json!(1);
        model["topP"] = json!(0.95);
        model["topK"] = json!(64);
        model["maxTemperature"] = json!(2);
        model["thinking"] = json!(name.starts_with("gemini-2.5"));
    }
    model
}

fn query_pairs(uri: &Uri) -> Vec<(String, String)> {
    url::form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

fn check_query(query: &[(String, String)]) -> Option<Response> {
    if let Some((name, _)) = query
        .iter()
        .find(|(name, _)| !QUERY_PARAMETERS.contains(&name.as_str()))
    {
        return Some(unknown_query_parameter(name));
    }
    let alt = query
        .iter()
        .find(|(name, _)| name == "alt" || name == "$alt");
    if let Some((_, value)) = alt
        && !["json", "sse", "proto", "media"].contains(&value.as_str())
    {
        return Some(invalid_argument(format!(
            "Invalid value at 'alt' (type.googleapis.com/google.api.Alt), \"{value}\""
        )));
    }
    None
}

fn unknown_query_parameter(name: &str) -> Response {
    invalid_argument(format!(
        "Invalid JSON payload received. Unknown name \"{name}\": Cannot bind query parameter. \
         Field '{name}' could not be found in request message."
    ))
}

/// The rejection of a request without a valid credential: an API key in `x-goog-api-key` (or
/// `?key=`), else a bearer token.
fn check_credential(key: &str, uri: &Uri, headers: &HeaderMap) -> Option<Response> {
    // Repeated headers are seen joined, as the real API sees them.
    let value = |name: &str| {
        let values: Vec<String> = headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect();
        (!values.is_empty()).then(|| values.join(", "))
    };
    let query_key = query_pairs(uri)
        .into_iter()
        .find_map(|(name, value)| (name == "key").then_some(value));
    match (
        value("x-goog-api-key").or(query_key),
        value("authorization"),
    ) {
        (Some(presented), _) if presented != key => Some(api_key_not_valid()),
        (Some(_), _) => None,
        (None, Some(authorization)) => {
            let token = authorization.strip_prefix("Bearer ").unwrap_or_default();
            token.trim().is_empty().then(|| {
                error_with_status(
                    StatusCode::UNAUTHORIZED,
                    "UNAUTHENTICATED",
                    "Request had invalid authentication credentials. Expected OAuth 2 access \
                     token, login cookie or other valid authentication credential. See \
                     https://developers.google.com/identity/sign-in/web/devconsole-project.",
                )
            })
        }
        (None, None) => Some(error_with_status(
            StatusCode::FORBIDDEN,
            "PERMISSION_DENIED",
            "Method doesn't allow unregistered callers (callers without established identity). \
             Please use API Key or other form of API consumer identity to call this API.",
        )),
    }
}

/// The real answer to a wrong key: a 400, with the reason in `details`.
fn api_key_not_valid() -> Response {
    let body = json!({"error": {
        "code": 400,
        "message": "API key not valid. Please pass a valid API key.",
        "status": "INVALID_ARGUMENT",
        "details": [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "API_KEY_INVALID",
                "domain": "googleapis.com",
                "metadata": {"service": "generativelanguage.googleapis.com"}
            },
            {
                "@type": "type.googleapis.com/google.rpc.LocalizedMessage",
                "locale": "en-US",
                "message": "API key not valid. Please pass a valid API key."
            }
        ]
    }});
    json_answer(StatusCode::BAD_REQUEST, &body)
}

fn invalid_argument(message: impl Into<String>) -> Response {
    error(StatusCode::BAD_REQUEST, message)
}

/// Google's error envelope, with the status name that goes with `status`.
fn error(status: StatusCode, message: impl Into<String>) -> Response {
    let name = match status {
        StatusCode::BAD_REQUEST => "INVALID_ARGUMENT",
        StatusCode::UNAUTHORIZED => "UNAUTHENTICATED",
        StatusCode::FORBIDDEN => "PERMISSION_DENIED",
        StatusCode::NOT_FOUND => "NOT_FOUND",
        StatusCode::TOO_MANY_REQUESTS => "RESOURCE_EXHAUSTED",
        _ => "INTERNAL",
    };
    error_with_status(status, name, message)
}

fn error_with_status(status: StatusCode, name: &str, message: impl Into<String>) -> Response {
    let body =
        json!({"error": {"code": status.as_u16(), "message": message.into(), "status": name}});
    json_answer(status, &body)
}

fn json_answer(status: StatusCode, body: &Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=UTF-8"),
    );
    response
}

fn random_suffix(len: usize) -> String {
    rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

/// A rough count (4 characters a token) of what the model reads.
fn estimate_prompt_tokens(body: &Value) -> u64 {
    let chars: usize = [
        "contents",
        "systemInstruction",
        "system_instruction",
        "tools",
    ]
    .iter()
    .filter_map(|key| body.get(*key))
    .map(|value| value.to_string().len())
    .sum();
    (chars / 4).max(1) as u64
}

/// One valid request's answer.
struct Answer {
    reply: GeminiReply,
    model: String,
    candidates: u64,
    prompt_tokens: u64,
    response_id: String,
}

impl Answer {
    fn output_tokens(&self) -> u64 {
        match &self.reply {
            GeminiReply::Text => TEXT_TOKENS,
            GeminiReply::FunctionCall { args, .. } => 10 + args.to_string().len() as u64 / 4,
        }
    }

    /// `usageMetadata` as the last (or only) answer carries it; `None` output tokens for the
    /// earlier events of a stream, which count only the prompt.
    fn usage(&self, output: Option<u64>) -> Value {
        let mut usage = json!({
            "promptTokenCount": self.prompt_tokens,
            "totalTokenCount": self.prompt_tokens,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": self.prompt_tokens}]
        });
        if let Some(output) = output {
            let output = output * self.candidates;
            usage["candidatesTokenCount"] = json!(output);
            usage["totalTokenCount"] = json!(self.prompt_tokens + output);
        }
        usage
    }

    fn response(&self, parts: &Value, finish: bool, usage: Value) -> Value {
        let candidates: Vec<Value> = (0..self.candidates)
            .map(|index| {
                let mut candidate =
                    json!({"content": {"parts": parts, "role": "model"}, "index": index});
                if finish {
                    candidate["finishReason"] = json!("STOP");
                }
                candidate
            })
            .collect();
        json!({
            "candidates": candidates,
            "usageMetadata": usage,
            "modelVersion": self.model,
            "responseId": self.response_id,
        })
    }

    fn whole(&self) -> Value {
        let parts = match &self.reply {
            GeminiReply::Text => json!([{"text": MOCK_TEXT}]),
            GeminiReply::FunctionCall { name, args } => {
                json!([{"functionCall": {"name": name, "args": args}}])
            }
        };
        self.response(&parts, true, self.usage(Some(self.output_tokens())))
    }

    /// The events of the stream: each a whole `GenerateContentResponse`; the usage complete
    /// only in the last.
    fn stream(&self) -> Vec<Value> {
        match &self.reply {
            GeminiReply::Text => {
                let last = TEXT_PIECES.len() - 1;
                TEXT_PIECES
                    .iter()
                    .enumerate()
                    .map(|(i, piece)| {
                        let usage = self.usage((i == last).then_some(TEXT_TOKENS));
                        self.response(&json!([{ "text": piece }]), i == last, usage)
                    })
                    .collect()
            }
            GeminiReply::FunctionCall { .. } => vec![self.whole()],
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Validation: the first problem found, as the message of a 400 INVALID_ARGUMENT.
//
// First the body is read as the real API's JSON-to-proto layer reads it, against the field
// tables below (the v1beta `GenerateContentRequest` and the messages it holds): its errors name
// the field by its proto path (`generation_config.response_schema.properties[0].value`). Then the
// request's own rules are checked; those errors start `* GenerateContentRequest.<path>: `.

type Checked<T = ()> = Result<T, String>;

const API_TYPES: &str = "type.googleapis.com/google.ai.generativelanguage.v1beta";

#[derive(Clone, Copy)]
enum Kind {
    String,
    /// A proto integer (`TYPE_INT32`, `TYPE_INT64`): a JSON integer, or one in a string.
    Integer(&'static str),
    /// A proto float or double: a JSON number, or one in a string.
    Number(&'static str),
    Bool,
    /// Base64 (standard or URL-safe).
    Bytes,
    /// `google.protobuf.Struct`: any JSON object.
    Struct,
    /// `google.protobuf.Value`: any JSON.
    Any,
    Enum(&'static EnumType),
    Message(&'static MessageType),
    /// `map<string, message>`; its entries' paths are `field[k].value`.
    Map(&'static MessageType),
}

struct Field {
    /// The JSON name (`lowerCamelCase`); its proto name (`snake_case`) is accepted too.
    name: &'static str,
    kind: Kind,
    repeated: bool,
}

struct MessageType {
    name: &'static str,
    fields: &'static [Field],
}

struct EnumType {
    name: &'static str,
    values: &'static [&'static str],
    /// The Schema `Type` is taken in any case (`object` as well as `OBJECT`), as JSON Schema
    /// writes it and as Google's function calling examples send it.
    any_case: bool,
}

const fn one(name: &'static str, kind: Kind) -> Field {
    Field {
        name,
        kind,
        repeated: false,
    }
}

const fn many(name: &'static str, kind: Kind) -> Field {
    Field {
        name,
        kind,
        repeated: true,
    }
}

const INT32: Kind = Kind::Integer("TYPE_INT32");
const INT64: Kind = Kind::Integer("TYPE_INT64");
const FLOAT: Kind = Kind::Number("TYPE_FLOAT");
const DOUBLE: Kind = Kind::Number("TYPE_DOUBLE");

static REQUEST: MessageType = MessageType {
    name: "GenerateContentRequest",
    fields: &[
        one("model", Kind::String),
        many("contents", Kind::Message(&CONTENT)),
        many("tools", Kind::Message(&TOOL)),
        one("toolConfig", Kind::Message(&TOOL_CONFIG)),
        many("safetySettings", Kind::Message(&SAFETY_SETTING)),
        one("systemInstruction", Kind::Message(&CONTENT)),
        one("generationConfig", Kind::Message(&GENERATION_CONFIG)),
        one("cachedContent", Kind::String),
    ],
};

static CONTENT: MessageType = MessageType {
    name: "Content",
    fields: &[
        one("role", Kind::String),
        many("parts", Kind::Message(&PART)),
    ],
};

/// The members of `Part`'s `data` oneof.
const PART_DATA: &[&str] = &[
    "text",
    "inlineData",
    "functionCall",
    "functionResponse",
    "fileData",
    "executableCode",
    "codeExecutionResult",
];

static PART: MessageType = MessageType {
    name: "Part",
    fields: &[
        one("text", Kind::String),
        one("inlineData", Kind::Message(&BLOB)),
        one("functionCall", Kind::Message(&FUNCTION_CALL)),
        one("functionResponse", Kind::Message(&FUNCTION_RESPONSE)),
        one("fileData", Kind::Message(&FILE_DATA)),
        one("executableCode", Kind::Struct),
        one("codeExecutionResult", Kind::Struct),
        one("thought", Kind::Bool),
        one("thoughtSignature", Kind::Bytes),
        one("partMetadata", Kind::Struct),
        one("videoMetadata", Kind::Struct),
        one("mediaResolution", Kind::Struct),
    ],
};

static BLOB: MessageType = MessageType {
    name: "Blob",
    fields: &[one("mimeType", Kind::String), one("data", Kind::Bytes)],
};

static FILE_DATA: MessageType = MessageType {
    name: "FileData",
    fields: &[one("mimeType", Kind::String), one("fileUri", Kind::String)],
};

static FUNCTION_CALL: MessageType = MessageType {
    name: "FunctionCall",
    fields: &[
        one("id", Kind::String),
        one("name", Kind::String),
        one("args", Kind::Struct),
    ],
};

static FUNCTION_RESPONSE: MessageType = MessageType {
    name: "FunctionResponse",
    fields: &[
        one("id", Kind::String),
        one("name", Kind::String),
        one("response", Kind::Struct),
        many("parts", Kind::Struct),
        one("willContinue", Kind::Bool),
        one("scheduling", Kind::Enum(&SCHEDULING)),
    ],
};

static SCHEDULING: EnumType = EnumType {
    name: "FunctionResponse.Scheduling",
    values: &["SCHEDULING_UNSPECIFIED", "SILENT", "WHEN_IDLE", "INTERRUPT"],
    any_case: false,
};

static TOOL: MessageType = MessageType {
    name: "Tool",
    fields: &[
        many("functionDeclarations", Kind::Message(&FUNCTION_DECLARATION)),
        one("googleSearchRetrieval", Kind::Struct),
        one("codeExecution", Kind::Struct),
        one("googleSearch", Kind::Struct),
        one("urlContext", Kind::Struct),
        one("computerUse", Kind::Struct),
        one("fileSearch", Kind::Struct),
        one("googleMaps", Kind::Struct),
    ],
};

static FUNCTION_DECLARATION: MessageType = MessageType {
    name: "FunctionDeclaration",
    fields: &[
        one("name", Kind::String),
        one("description", Kind::String),
        one("behavior", Kind::Enum(&BEHAVIOR)),
        one("parameters", Kind::Message(&SCHEMA)),
        one("parametersJsonSchema", Kind::Any),
        one("response", Kind::Message(&SCHEMA)),
        one("responseJsonSchema", Kind::Any),
    ],
};

static BEHAVIOR: EnumType = EnumType {
    name: "FunctionDeclaration.Behavior",
    values: &["UNSPECIFIED", "BLOCKING", "NON_BLOCKING"],
    any_case: false,
};

/// Gemini's own `Schema` (an OpenAPI subset): JSON Schema keywords outside it
/// (`additionalProperties`, `$schema`, `$ref`, `const`, `oneOf`, ...) are unknown fields.
static SCHEMA: MessageType = MessageType {
    name: "Schema",
    fields: &[
        one("type", Kind::Enum(&TYPE)),
        one("format", Kind::String),
        one("title", Kind::String),
        one("description", Kind::String),
        one("nullable", Kind::Bool),
        many("enum", Kind::String),
        one("maxItems", INT64),
        one("minItems", INT64),
        one("properties", Kind::Map(&SCHEMA)),
        many("required", Kind::String),
        one("minProperties", INT64),
        one("maxProperties", INT64),
        one("minLength", INT64),
        one("maxLength", INT64),
        one("pattern", Kind::String),
        one("example", Kind::Any),
        many("anyOf", Kind::Message(&SCHEMA)),
        many("propertyOrdering", Kind::String),
        one("default", Kind::Any),
        one("items", Kind::Message(&SCHEMA)),
        one("minimum", DOUBLE),
        one("maximum", DOUBLE),
    ],
};

static TYPE: EnumType = EnumType {
    name: "Type",
    values: &[
        "TYPE_UNSPECIFIED",
        "STRING",
        "NUMBER",
        "INTEGER",
        "BOOLEAN",
        "ARRAY",
        "OBJECT",
        "NULL",
    ],
    any_case: true,
};

static TOOL_CONFIG: MessageType = MessageType {
    name: "ToolConfig",
    fields: &[
        one(
            "functionCallingConfig",
            Kind::Message(&FUNCTION_CALLING_CONFIG),
        ),
        one("retrievalConfig", Kind::Struct),
    ],
};

static FUNCTION_CALLING_CONFIG: MessageType = MessageType {
    name: "FunctionCallingConfig",
    fields: &[
        one("mode", Kind::Enum(&MODE)),
        many("allowedFunctionNames", Kind::String),
    ],
};

static MODE: EnumType = EnumType {
    name: "FunctionCallingConfig.Mode",
    values: &["MODE_UNSPECIFIED", "AUTO", "ANY", "NONE", "VALIDATED"],
    any_case: false,
};

static SAFETY_SETTING: MessageType = MessageType {
    name: "SafetySetting",
    fields: &[
        one("category", Kind::Enum(&HARM_CATEGORY)),
        one("threshold", Kind::Enum(&HARM_THRESHOLD)),
    ],
};

static HARM_CATEGORY: EnumType = EnumType {
    name: "HarmCategory",
    values: &[
        "HARM_CATEGORY_UNSPECIFIED",
        "HARM_CATEGORY_HARASSMENT",
        "HARM_CATEGORY_HATE_SPEECH",
        "HARM_CATEGORY_SEXUALLY_EXPLICIT",
        "HARM_CATEGORY_DANGEROUS_CONTENT",
        "HARM_CATEGORY_CIVIC_INTEGRITY",
    ],
    any_case: false,
};

static HARM_THRESHOLD: EnumType = EnumType {
    name: "SafetySetting.HarmBlockThreshold",
    values: &[
        "HARM_BLOCK_THRESHOLD_UNSPECIFIED",
        "BLOCK_LOW_AND_ABOVE",
        "BLOCK_MEDIUM_AND_ABOVE",
        "BLOCK_ONLY_HIGH",
        "BLOCK_NONE",
        "OFF",
    ],
    any_case: false,
};

static GENERATION_CONFIG: MessageType = MessageType {
    name: "GenerationConfig",
    fields: &[
        many("stopSequences", Kind::String),
        one("responseMimeType", Kind::String),
        one("responseSchema", Kind::Message(&SCHEMA)),
        one("responseJsonSchema", Kind::Any),
        many("responseModalities", Kind::Enum(&MODALITY)),
        one("candidateCount", INT32),
        one("maxOutputTokens", INT32),
        one("temperature", FLOAT),
        one("topP", FLOAT),
        one("topK", INT32),
        one("seed", INT32),
        one("presencePenalty", FLOAT),
        one("frequencyPenalty", FLOAT),
        one("responseLogprobs", Kind::Bool),
        one("logprobs", INT32),
        one("enableEnhancedCivicAnswers", Kind::Bool),
        one("speechConfig", Kind::Struct),
        one("thinkingConfig", Kind::Message(&THINKING_CONFIG)),
        one("imageConfig", Kind::Struct),
        one("mediaResolution", Kind::Enum(&MEDIA_RESOLUTION)),
    ],
};

static MODALITY: EnumType = EnumType {
    name: "GenerationConfig.Modality",
    values: &["MODALITY_UNSPECIFIED", "TEXT", "IMAGE", "AUDIO"],
    any_case: false,
};

static MEDIA_RESOLUTION: EnumType = EnumType {
    name: "GenerationConfig.MediaResolution",
    values: &[
        "MEDIA_RESOLUTION_UNSPECIFIED",
        "MEDIA_RESOLUTION_LOW",
        "MEDIA_RESOLUTION_MEDIUM",
        "MEDIA_RESOLUTION_HIGH",
    ],
    any_case: false,
};

static THINKING_CONFIG: MessageType = MessageType {
    name: "ThinkingConfig",
    fields: &[
        one("includeThoughts", Kind::Bool),
        one("thinkingBudget", INT32),
        one("thinkingLevel", Kind::Enum(&THINKING_LEVEL)),
    ],
};

static THINKING_LEVEL: EnumType = EnumType {
    name: "ThinkingConfig.ThinkingLevel",
    values: &[
        "THINKING_LEVEL_UNSPECIFIED",
        "MINIMAL",
        "LOW",
        "MEDIUM",
        "HIGH",
    ],
    any_case: false,
};

/// `lowerCamelCase` as the proto's `snake_case` name.
fn snake(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for c in name.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_owned()
    } else {
        format!("{path}.{name}")
    }
}

fn at(path: &str) -> String {
    if path.is_empty() {
        String::new()
    } else {
        format!(" at '{path}'")
    }
}

fn invalid_value(path: &str, kind: &str, value: &Value) -> String {
    format!("Invalid value at '{path}' ({kind}), {value}")
}

/// `object` read as a `message`, at `path`.
fn read_message(message: &MessageType, object: &Map<String, Value>, path: &str) -> Checked {
    for (key, value) in object {
        let Some(field) = message
            .fields
            .iter()
            .find(|field| field.name == key || snake(field.name) == *key)
        else {
            return Err(format!(
                "Invalid JSON payload received. Unknown name \"{key}\"{}: Cannot find field.",
                at(path)
            ));
        };
        if value.is_null() {
            continue;
        }
        let field_path = join(path, &snake(field.name));
        if field.repeated {
            let Some(items) = value.as_array() else {
                return Err(invalid_value(&field_path, &kind_name(field.kind), value));
            };
            for (i, item) in items.iter().enumerate() {
                read_value(field.kind, item, &format!("{field_path}[{i}]"), key, path)?;
            }
        } else {
            if value.is_array() && !matches!(field.kind, Kind::Any) {
                return Err(format!(
                    "Invalid JSON payload received. Unknown name \"{key}\"{}: Proto field is not \
                     repeating, cannot start list.",
                    at(path)
                ));
            }
            read_value(field.kind, value, &field_path, key, path)?;
        }
    }
    Ok(())
}

fn kind_name(kind: Kind) -> String {
    match kind {
        Kind::String => "TYPE_STRING".into(),
        Kind::Integer(name) | Kind::Number(name) => name.into(),
        Kind::Bool => "TYPE_BOOL".into(),
        Kind::Bytes => "TYPE_BYTES".into(),
        Kind::Struct | Kind::Map(_) => "type.googleapis.com/google.protobuf.Struct".into(),
        Kind::Any => "type.googleapis.com/google.protobuf.Value".into(),
        Kind::Enum(enumeration) => format!("{API_TYPES}.{}", enumeration.name),
        Kind::Message(message) => format!("{API_TYPES}.{}", message.name),
    }
}

/// One value of a field; `key` and `parent` name the field for "not repeating" errors.
fn read_value(kind: Kind, value: &Value, path: &str, key: &str, parent: &str) -> Checked {
    use base64::Engine;
    let wrong = || Err(invalid_value(path, &kind_name(kind), value));
    if value.is_array() && !matches!(kind, Kind::Any) {
        return Err(format!(
            "Invalid JSON payload received. Unknown name \"{key}\"{}: Proto field is not \
             repeating, cannot start list.",
            at(parent)
        ));
    }
    match kind {
        Kind::String => {
            if !value.is_string() {
                return wrong();
            }
        }
        Kind::Integer(_) => {
            let integral = match value {
                Value::Number(n) => {
                    n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0)
                }
                Value::String(s) => s.parse::<i64>().is_ok(),
                _ => false,
            };
            if !integral {
                return wrong();
            }
        }
        Kind::Number(_) => {
            let numeric = match value {
                Value::Number(_) => true,
                Value::String(s) => {
                    s.parse::<f64>().is_ok()
                        || ["NaN", "Infinity", "-Infinity"].contains(&s.as_str())
                }
                _ => false,
            };
            if !numeric {
                return wrong();
            }
        }
        Kind::Bool => {
            if !value.is_boolean() {
                return wrong();
            }
        }
        Kind::Bytes => {
            let Some(text) = value.as_str() else {
                return wrong();
            };
            let engines = [
                &base64::engine::general_purpose::STANDARD,
                &base64::engine::general_purpose::STANDARD_NO_PAD,
                &base64::engine::general_purpose::URL_SAFE,
                &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            ];
            if !engines.iter().any(|engine| engine.decode(text).is_ok()) {
                return Err(format!(
                    "Invalid value at '{path}' (TYPE_BYTES), Base64 decoding failed for \"{text}\""
                ));
            }
        }
        Kind::Struct => {
            if !value.is_object() {
                return wrong();
            }
        }
        Kind::Any => {}
        Kind::Enum(enumeration) => {
            let known = match value {
                Value::String(s) => enumeration
                    .values
                    .iter()
                    .any(|v| *v == s || (enumeration.any_case && v.eq_ignore_ascii_case(s))),
                Value::Number(n) => n
                    .as_u64()
                    .is_some_and(|n| (n as usize) < enumeration.values.len()),
                _ => false,
            };
            if !known {
                return wrong();
            }
        }
        Kind::Message(message) => {
            let Some(object) = value.as_object() else {
                return wrong();
            };
            read_message(message, object, path)?;
        }
        Kind::Map(message) => {
            let Some(entries) = value.as_object() else {
                return wrong();
            };
            for (k, entry) in entries.values().enumerate() {
                let entry_path = format!("{path}[{k}].value");
                let Some(object) = entry.as_object() else {
                    return Err(invalid_value(
                        &entry_path,
                        &format!("{API_TYPES}.{}", message.name),
                        entry,
                    ));
                };
                read_message(message, object, &entry_path)?;
            }
        }
    }
    Ok(())
}

/// A field of `object` by its JSON name or its proto name.
fn field<'a>(object: &'a Value, name: &str) -> Option<&'a Value> {
    object
        .get(name)
        .or_else(|| object.get(snake(name)))
        .filter(|value| !value.is_null())
}

fn rule(path: &str, message: &str) -> String {
    format!("* GenerateContentRequest.{path}: {message}\n")
}

/// Checks a `generateContent` request body as the real API does; `Err` holds the error message.
pub fn validate_request(body: &Value) -> Checked {
    let Some(object) = body.as_object() else {
        return Err(
            "Invalid JSON payload received. Unknown name \"\": Root element must be a message."
                .into(),
        );
    };
    read_message(&REQUEST, object, "")?;
    let contents = field(body, "contents")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    if contents.is_empty() {
        return Err(rule("contents", "contents is not specified"));
    }
    if let Some(system) = field(body, "systemInstruction") {
        validate_system_instruction(system)?;
    }
    for (i, content) in contents.iter().enumerate() {
        let role = field(content, "role")
            .and_then(Value::as_str)
            .unwrap_or("user");
        if role != "user" && role != "model" {
            return Err("Please use a valid role: user, model.".into());
        }
        validate_parts(content, &format!("contents[{i}]"))?;
    }
    validate_function_turns(contents)?;
    let declared = match field(body, "tools") {
        Some(tools) => validate_tools(tools)?,
        None => Vec::new(),
    };
    if let Some(config) = field(body, "toolConfig") {
        validate_tool_config(config, &declared)?;
    }
    if let Some(config) = field(body, "generationConfig") {
        validate_generation_config(config)?;
    }
    Ok(())
}

/// Its role is absent or "user" (the API has no system role); its parts follow the usual rules.
/// The wording of the role error is the mock's own: the real one is not on record.
fn validate_system_instruction(system: &Value) -> Checked {
    if let Some(role) = field(system, "role").and_then(Value::as_str)
        && role != "user"
    {
        return Err(rule(
            "system_instruction.role",
            "system instruction role must be unset or 'user'",
        ));
    }
    validate_parts(system, "system_instruction")
}

/// Parts present, each with exactly one member of the `data` oneof set. An empty text is the
/// proto default, so it counts as unset: `{"text": ""}` gets the oneof error, as it does from
/// the real API.
fn validate_parts(content: &Value, path: &str) -> Checked {
    let parts = field(content, "parts")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    if parts.is_empty() {
        return Err(rule(
            &format!("{path}.parts"),
            "contents.parts must not be empty.",
        ));
    }
    for (j, part) in parts.iter().enumerate() {
        let set: Vec<&str> = PART_DATA
            .iter()
            .copied()
            .filter(|name| match field(part, name) {
                Some(Value::String(text)) => !text.is_empty(),
                Some(_) => true,
                None => false,
            })
            .collect();
        match set.as_slice() {
            [] => {
                return Err(rule(
                    &format!("{path}.parts[{j}].data"),
                    "required oneof field 'data' must have one initialized field",
                ));
            }
            [_] => {}
            [_, second, ..] => {
                return Err(format!(
                    "Invalid JSON payload received. Oneof field 'data' is already set. Cannot \
                     set '{second}'"
                ));
            }
        }
        let part_path = format!("{path}.parts[{j}]");
        if let Some(call) = field(part, "functionCall") {
            require_name(call, &format!("{part_path}.function_call.name"))?;
        }
        if let Some(response) = field(part, "functionResponse") {
            require_name(response, &format!("{part_path}.function_response.name"))?;
        }
        if let Some(blob) = field(part, "inlineData") {
            match field(blob, "mimeType").and_then(Value::as_str) {
                None | Some("") => {
                    return Err(rule(
                        &format!("{part_path}.inline_data.mime_type"),
                        "mime_type must not be empty.",
                    ));
                }
                Some(mime) if !mime.contains('/') => {
                    return Err(format!("Unsupported MIME type: {mime}"));
                }
                Some(_) => {}
            }
        }
    }
    Ok(())
}

fn require_name(object: &Value, path: &str) -> Checked {
    match field(object, "name").and_then(Value::as_str) {
        None | Some("") => Err(rule(path, "Name cannot be empty.")),
        Some(_) => Ok(()),
    }
}

fn count_parts(content: &Value, name: &str) -> usize {
    field(content, "parts")
        .and_then(Value::as_array)
        .map(|parts| {
            parts
                .iter()
                .filter(|part| field(part, name).is_some())
                .count()
        })
        .unwrap_or(0)
}

/// A function call turn right after a user turn; a function response turn right after a
/// function call turn, with as many responses as there were calls.
fn validate_function_turns(contents: &[Value]) -> Checked {
    let role = |content: &Value| {
        field(content, "role")
            .and_then(Value::as_str)
            .unwrap_or("user")
            .to_owned()
    };
    for (i, content) in contents.iter().enumerate() {
        let previous = i.checked_sub(1).map(|p| &contents[p]);
        if count_parts(content, "functionCall") > 0
            && previous.is_none_or(|previous| role(previous) != "user")
        {
            return Err(
                "Please ensure that function call turn comes immediately after a user \
                        turn or after a function response turn."
                    .into(),
            );
        }
        let responses = count_parts(content, "functionResponse");
        if responses == 0 {
            continue;
        }
        let calls = previous
            .filter(|previous| role(previous) == "model")
            .map(|previous| count_parts(previous, "functionCall"))
            .unwrap_or(0);
        if role(content) != "user" || calls == 0 {
            return Err(
                "Please ensure that function response turn comes immediately after a \
                        function call turn."
                    .into(),
            );
        }
        if calls != responses {
            return Err(
                "Please ensure that the number of function response parts is equal to \
                        the number of function call parts of the function call turn."
                    .into(),
            );
        }
    }
    Ok(())
}

/// The declared function names.
fn validate_tools(tools: &Value) -> Checked<Vec<String>> {
    let mut names = Vec::new();
    for (i, tool) in tools.as_array().into_iter().flatten().enumerate() {
        let declarations = field(tool, "functionDeclarations")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        for (k, declaration) in declarations.iter().enumerate() {
            let name = field(declaration, "name")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let valid = name.len() <= 64
                && name
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.:-".contains(c));
            if !valid {
                return Err(rule(
                    &format!("tools[{i}].function_declarations[{k}].name"),
                    "Invalid function name. Must start with a letter or an underscore. Must be \
                     alphameric (a-z, A-Z, 0-9), underscores (_), dots (.), colons (:) or dashes \
                     (-), with a maximum length of 64.",
                ));
            }
            if field(declaration, "parameters").is_some()
                && field(declaration, "parametersJsonSchema").is_some()
            {
                return Err(rule(
                    &format!("tools[{i}].function_declarations[{k}].parameters_json_schema"),
                    "parameters and parameters_json_schema cannot both be set.",
                ));
            }
            if names.iter().any(|known| known == name) {
                return Err(format!("Duplicate function declaration found: {name}"));
            }
            names.push(name.to_owned());
        }
    }
    Ok(names)
}

/// Forced calls need declarations; allowed names only with mode ANY (or VALIDATED), and only
/// declared ones. The wordings after the first are the mock's own.
fn validate_tool_config(config: &Value, declared: &[String]) -> Checked {
    let Some(calling) = field(config, "functionCallingConfig") else {
        return Ok(());
    };
    let mode = field(calling, "mode")
        .and_then(Value::as_str)
        .unwrap_or("AUTO");
    let allowed: Vec<&str> = field(calling, "allowedFunctionNames")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if declared.is_empty() && (mode == "ANY" || !allowed.is_empty()) {
        return Err("Function calling config is set without function_declarations.".into());
    }
    if !allowed.is_empty() && mode != "ANY" && mode != "VALIDATED" {
        return Err(rule(
            "tool_config.function_calling_config.allowed_function_names",
            "allowed_function_names may be set only when mode is ANY or VALIDATED.",
        ));
    }
    if let Some(unknown) = allowed
        .iter()
        .find(|name| !declared.iter().any(|known| known == *name))
    {
        return Err(rule(
            "tool_config.function_calling_config.allowed_function_names",
            &format!("function '{unknown}' is not among the function declarations."),
        ));
    }
    Ok(())
}

const RESPONSE_MIME_TYPES: &[&str] = &[
    "text/plain",
    "application/json",
    "application/xml",
    "application/yaml",
    "text/x.enum",
];

/// The response MIME type is one the API knows; a response schema (of either kind) comes with
/// `application/json` (the wordings about schemas are the mock's own).
fn validate_generation_config(config: &Value) -> Checked {
    let mime = field(config, "responseMimeType").and_then(Value::as_str);
    if let Some(mime) = mime
        && !RESPONSE_MIME_TYPES.contains(&mime)
    {
        return Err(rule(
            "generation_config.response_mime_type",
            "allowed mimetypes are `text/plain`, `application/json`, `application/xml`, \
             `application/yaml` and `text/x.enum`.",
        ));
    }
    let schema = field(config, "responseSchema");
    let json_schema = field(config, "responseJsonSchema");
    if schema.is_some() && json_schema.is_some() {
        return Err(rule(
            "generation_config.response_json_schema",
            "response_schema and response_json_schema cannot both be set.",
        ));
    }
    if json_schema.is_some() && mime != Some("application/json") {
        return Err(rule(
            "generation_config.response_json_schema",
            "response_mime_type must be application/json when response_json_schema is set.",
        ));
    }
    if schema.is_some() && mime != Some("application/json") && mime != Some("text/x.enum") {
        return Err(rule(
            "generation_config.response_schema",
            "response_mime_type must be application/json or text/x.enum when response_schema \
             is set.",
        ));
    }
    if let Some(stops) = field(config, "stopSequences").and_then(Value::as_array)
        && stops.len() > 5
    {
        return Err(rule(
            "generation_config.stop_sequences",
            "at most 5 stop sequences are allowed.",
        ));
    }
    Ok(())
}
