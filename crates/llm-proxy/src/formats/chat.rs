//! The proxy's internal language: an OpenAI chat completion request, typed where the proxy
//! reads or translates a field, with every other field carried along in `extra` so nothing a
//! client sends is lost when the request has to be written again.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ChatRequest {
    pub model: String,
    pub messages: Vec<Message>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_completion_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<Stop>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<Tool>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<ToolChoice>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallel_tool_calls: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_effort: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Every other field, as the client sent it.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Message {
    pub role: Role,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<Content>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCall>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    Developer,
    User,
    Assistant,
    Tool,
    Function,
}

/// A message's content: text, or parts (text, images, audio, files).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub enum Content {
    Text(String),
    Parts(Vec<Part>),
}

impl Content {
    /// The text of the content, parts joined; `None` when a part is not text.
    pub fn text(&self) -> Option<String> {
        match self {
            Self::Text(text) => Some(text.clone()),
            Self::Parts(parts) => parts
                .iter()
                .map(|part| match part {
                    Part::Text { text } => Some(text.as_str()),
                    _ => None,
                })
                .collect::<Option<Vec<_>>>()
                .map(|texts| texts.join("")),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Part {
    Text {
        text: String,
    },
    ImageUrl {
        image_url: ImageUrl,
    },
    /// Audio, files, refusals and whatever comes next: kept as sent.
    #[serde(untagged)]
    Other(Value),
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ImageUrl {
    /// An `https://` URL or a `data:` URL with base64 data.
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ToolCall {
    pub id: String,
    pub function: FunctionCall,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct FunctionCall {
    pub name: String,
    /// JSON text, as the model wrote it.
    pub arguments: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Tool {
    pub function: FunctionDefinition,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct FunctionDefinition {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Value>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub enum ToolChoice {
    /// `none`, `auto` or `required`.
    Mode(String),
    Named {
        function: NamedFunction,
    },
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct NamedFunction {
    pub name: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub enum Stop {
    One(String),
    Many(Vec<String>),
}

impl Stop {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            Self::One(one) => vec![one],
            Self::Many(many) => many,
        }
    }
}

/// A chat request written in the target's API, and the harmless hints that had no place in it
/// (for the log).
#[derive(Debug)]
pub struct Translated {
    /// Where it goes, after the endpoint's base URL, query included.
    pub path: String,
    pub body: Vec<u8>,
    pub dropped: Vec<String>,
}

/// A chat request the target's API cannot express: a 400 naming the parameter, never a
/// silent drop.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Untranslatable {
    /// Where in the request, e.g. `n` or `messages[2].content[0].type`.
    pub param: Option<String>,
    pub message: String,
}

impl Untranslatable {
    pub fn new(param: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            param: Some(param.into()),
            message: message.into(),
        }
    }

    /// A body that is not a chat request the typed form can hold (a wrong type somewhere).
    pub fn unreadable(error: &serde_json::Error) -> Self {
        Self {
            param: None,
            message: format!(
                "The request cannot be translated for the target's API (TARGET_API): {error}"
            ),
        }
    }
}

/// Whether leaving out a parameter that a target's format has no field for changes nothing:
/// `Some(true)` for OpenAI platform hints and default values, `Some(false)` when the client
/// asked for something, `None` for a name OpenAI does not have either.
fn harmless(name: &str, value: &Value) -> Option<bool> {
    let is_default = match name {
        "n" => value.as_u64() == Some(1),
        "logprobs" => value == &Value::Bool(false),
        "presence_penalty" | "frequency_penalty" => value.as_f64() == Some(0.0),
        "logit_bias" => value.as_object().is_some_and(Map::is_empty),
        "response_format" => value["type"] == "text",
        "modalities" => value == &serde_json::json!(["text"]),
        // Hints for OpenAI's own platform: nothing to do elsewhere.
        "store" | "metadata" | "service_tier" | "stream_options" | "safety_identifier"
        | "prompt_cache_key" => true,
        "top_logprobs" | "seed" | "audio" | "prediction" | "web_search_options" | "functions"
        | "function_call" | "verbosity" => false,
        _ => return None,
    };
    Some(is_default || value.is_null())
}

/// Settles the parameters a target's format has no field for (`api` names the target in
/// messages): harmless ones are dropped and noted, anything else is refused.
pub fn drop_or_refuse(
    unmapped: &Map<String, Value>,
    api: &str,
    dropped: &mut Vec<String>,
) -> Result<(), Untranslatable> {
    for (name, value) in unmapped {
        match harmless(name, value) {
            Some(true) => {
                if !value.is_null() && name != "stream_options" {
                    dropped.push(name.clone());
                }
            }
            Some(false) => {
                return Err(Untranslatable::new(
                    name.clone(),
                    format!(
                        "'{name}' with this value cannot be sent to {api}: it has no equivalent there."
                    ),
                ));
            }
            None => {
                return Err(Untranslatable::new(
                    name.clone(),
                    format!(
                        "Unrecognized request argument supplied: '{name}' (it cannot be sent to {api})."
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Message fields the target has no place for (`name`, `refusal`...), noted as dropped when
/// they say something.
pub fn note_message_extras(i: usize, message: &Message, dropped: &mut Vec<String>) {
    for (key, value) in &message.extra {
        let empty = value.is_null() || value.as_array().is_some_and(Vec::is_empty);
        if !empty {
            dropped.push(format!("messages[{i}].{key}"));
        }
    }
}

/// The media type and base64 data of a `data:` URL.
pub fn data_url(url: &str) -> Option<(&str, &str)> {
    url.strip_prefix("data:")?.split_once(";base64,")
}

/// A tool call's arguments as the JSON object every other API takes (an empty text is `{}`).
pub fn arguments_object(
    i: usize,
    k: usize,
    call: &ToolCall,
    api: &str,
) -> Result<Map<String, Value>, Untranslatable> {
    let arguments = call.function.arguments.trim();
    if arguments.is_empty() {
        return Ok(Map::new());
    }
    match serde_json::from_str(arguments) {
        Ok(Value::Object(object)) => Ok(object),
        _ => Err(Untranslatable::new(
            format!("messages[{i}].tool_calls[{k}].function.arguments"),
            format!("Tool call arguments must be a JSON object to be sent to {api}."),
        )),
    }
}

/// The text of a message that must be text on the target (system prompts, tool results).
pub fn text_of(
    i: usize,
    content: Option<&Content>,
    what: &str,
    api: &str,
) -> Result<String, Untranslatable> {
    match content {
        None => Ok(String::new()),
        Some(content) => content.text().ok_or_else(|| {
            Untranslatable::new(
                format!("messages[{i}].content"),
                format!("{what} must be text to be sent to {api}."),
            )
        }),
    }
}

/// The refusal of a content part the target cannot take.
pub fn unsupported_part(i: usize, j: usize, part: &Value, api: &str) -> Untranslatable {
    let kind = part["type"].as_str().unwrap_or("unknown");
    Untranslatable::new(
        format!("messages[{i}].content[{j}].type"),
        format!("Content of type '{kind}' cannot be sent to {api}."),
    )
}

/// The refusal of an image the target cannot fetch itself.
pub fn image_needs_data(i: usize, j: usize, api: &str) -> Untranslatable {
    Untranslatable::new(
        format!("messages[{i}].content[{j}].image_url.url"),
        format!("An image must be a base64 data URL to be sent to {api}."),
    )
}

/// The refusal of the deprecated `function` role.
pub fn function_role(i: usize, api: &str) -> Untranslatable {
    Untranslatable::new(
        format!("messages[{i}].role"),
        format!("The deprecated 'function' role cannot be sent to {api}; use tools."),
    )
}

/// The refusal of a tool that is not a function.
pub fn check_function_tool(i: usize, tool: &Tool, api: &str) -> Result<(), Untranslatable> {
    if tool.extra.get("type").is_some_and(|t| t != "function") {
        return Err(Untranslatable::new(
            format!("tools[{i}].type"),
            format!("Only function tools can be sent to {api}."),
        ));
    }
    Ok(())
}

/// `response_format`, read: plain text, any JSON object, or JSON following a schema.
pub enum ResponseFormat {
    Text,
    JsonObject,
    JsonSchema(Value),
}

impl ResponseFormat {
    pub fn read(value: &Value) -> Result<Self, Untranslatable> {
        match value["type"].as_str() {
            Some("text") => Ok(Self::Text),
            Some("json_object") => Ok(Self::JsonObject),
            Some("json_schema") => value["json_schema"]["schema"]
                .as_object()
                .map(|schema| Self::JsonSchema(Value::Object(schema.clone())))
                .ok_or_else(|| {
                    Untranslatable::new(
                        "response_format.json_schema.schema",
                        "Missing required parameter: 'response_format.json_schema.schema'.",
                    )
                }),
            _ => Err(Untranslatable::new(
                "response_format.type",
                "Invalid value for 'response_format.type': expected 'text', 'json_object' or 'json_schema'.",
            )),
        }
    }
}
