//! Facts of the API formats, below every layer that speaks them: OpenAI's error envelope, its
//! event streams, token usage, the chat request every translation starts from, and requests
//! written for targets that speak another API.

pub mod answer;
pub mod anthropic;
pub mod bedrock;
pub mod chat;
pub mod chat_stream;
pub mod cohere;
pub mod gemini;
pub mod ollama;
pub mod openai;
pub mod raw;
pub mod responses;
pub mod sse;
pub mod tgi;
pub mod tokens;
pub mod usage;

use serde_json::Value;

use crate::config::TargetApi;

/// A chat completion request as a target of `api` takes it: `None` when it goes as the client
/// sent it, else its path after the endpoint, its body and the hints it dropped.
pub fn chat_for_target(
    api: TargetApi,
    body: &[u8],
) -> Result<Option<chat::Translated>, chat::Untranslatable> {
    let translate = match api {
        TargetApi::OpenAi | TargetApi::Responses => return Ok(None),
        TargetApi::Anthropic => anthropic::request,
        TargetApi::Gemini => gemini::request,
        TargetApi::Ollama => ollama::request,
    };
    let chat: chat::ChatRequest =
        serde_json::from_slice(body).map_err(|e| chat::Untranslatable::unreadable(&e))?;
    translate(chat).map(Some)
}

/// The format a target of `api` answers chat requests in; `None` for OpenAI's, whose near
/// relatives answer in many shapes.
pub fn answer_format(api: TargetApi) -> Option<Format> {
    match api {
        TargetApi::OpenAi | TargetApi::Responses => None,
        TargetApi::Anthropic => Some(Format::Anthropic),
        TargetApi::Gemini => Some(Format::Gemini),
        TargetApi::Ollama => Some(Format::Ollama),
    }
}

/// How a target of `api` takes a static key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyHeader {
    /// `Authorization: Bearer <key>`.
    Bearer,
    /// The key alone, in a header of this name.
    Named(&'static str),
}

pub fn key_header(api: TargetApi) -> KeyHeader {
    match api {
        TargetApi::Anthropic => KeyHeader::Named("x-api-key"),
        TargetApi::Gemini => KeyHeader::Named("x-goog-api-key"),
        TargetApi::OpenAi | TargetApi::Responses | TargetApi::Ollama => KeyHeader::Bearer,
    }
}

/// Headers every request to a target of `api` carries.
pub fn extra_headers(api: TargetApi) -> &'static [(&'static str, &'static str)] {
    match api {
        TargetApi::Anthropic => &[("anthropic-version", anthropic::VERSION)],
        TargetApi::OpenAi | TargetApi::Responses | TargetApi::Gemini | TargetApi::Ollama => &[],
    }
}

/// A chat path of `api` to ask with an empty body when finding out which API a target speaks,
/// and whether an error body answered there is in that API's envelope.
pub fn probe(api: TargetApi) -> (&'static str, fn(&Value) -> bool) {
    match api {
        TargetApi::OpenAi | TargetApi::Responses => ("/chat/completions", |body| {
            body["error"]["message"].is_string()
                && body.get("type").is_none()
                && body["error"].get("status").is_none()
        }),
        TargetApi::Anthropic => (anthropic::MESSAGES_PATH, |body| {
            anthropic::error(body).is_some()
        }),
        TargetApi::Gemini => ("/models/gemini-2.5-flash:generateContent", |body| {
            gemini::error(body).is_some()
        }),
        TargetApi::Ollama => (ollama::CHAT_PATH, |body| ollama::error(body).is_some()),
    }
}

/// Where a target of `api` lists its models, after the endpoint: all of them in one page (the
/// APIs' largest), as OpenAI's list has no pages.
pub fn models_path(api: TargetApi) -> &'static str {
    match api {
        TargetApi::OpenAi | TargetApi::Responses => "/models",
        TargetApi::Anthropic => "/models?limit=1000",
        TargetApi::Gemini => "/models?pageSize=1000",
        TargetApi::Ollama => ollama::TAGS_PATH,
    }
}

/// The API format of an answer, as read from its shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    OpenAi,
    Anthropic,
    Gemini,
    Ollama,
    Tgi,
    CohereV2,
    CohereV1,
    Bedrock,
}

impl Format {
    /// The name the request log shows.
    pub fn name(self) -> &'static str {
        match self {
            Self::OpenAi => "openai",
            Self::Anthropic => "anthropic",
            Self::Gemini => "gemini",
            Self::Ollama => "ollama",
            Self::Tgi => "tgi",
            Self::CohereV2 => "cohere-v2",
            Self::CohereV1 => "cohere-v1",
            Self::Bedrock => "bedrock",
        }
    }

    /// The format of a whole answer or of one stream event (`event` is its SSE event name), by
    /// its shape; `None` when no format has it.
    pub fn detect(event: Option<&str>, value: &Value) -> Option<Self> {
        let has = |key: &str| value.get(key).is_some();
        let kind = value["type"].as_str().unwrap_or_default();
        let format = if let Some(list) = value.as_array() {
            // TGI's serverless API answers a list.
            return list
                .first()
                .and_then(|v| v.get("generated_text"))
                .map(|_| Self::Tgi);
        } else if has("choices") || value["object"] == "chat.completion.chunk" {
            Self::OpenAi
        } else if (kind == "message" && has("content"))
            || kind.starts_with("message_")
            || kind.starts_with("content_block")
            || (kind == "error" && value["error"].is_object())
            || event.is_some_and(|name| {
                name.starts_with("message_") || name.starts_with("content_block") || name == "ping"
            })
        {
            Self::Anthropic
        } else if has("candidates") || has("promptFeedback") || has("usageMetadata") {
            Self::Gemini
        } else if value.pointer("/output/message").is_some() {
            Self::Bedrock
        } else if has("done") {
            Self::Ollama
        } else if (value
            .pointer("/message/content")
            .is_some_and(Value::is_array)
            && has("finish_reason"))
            || (kind.contains('-')
                && ["message", "content", "tool"]
                    .iter()
                    .any(|prefix| kind.starts_with(prefix)))
        {
            Self::CohereV2
        } else if has("generation_id") || (has("text") && has("meta")) || has("event_type") {
            Self::CohereV1
        } else if has("generated_text") || has("token") || has("error_type") {
            Self::Tgi
        } else {
            return None;
        };
        Some(format)
    }
}
