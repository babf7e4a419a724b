//! Ollama's native API as a target: an OpenAI chat request written as a `POST /api/chat`
//! request, and its answers, NDJSON stream lines and errors read back in the canonical terms.

use crate::formats::answer::{
    Event, ForeignError, Stamp, completion, finish_reason, function_calls, message, usage,
};
use serde::Serialize;
use std::borrow::Cow;

use serde_json::{Map, Value, json};

use super::chat::{
    ChatRequest, Content, Message, Part, ResponseFormat, Role, Tool, ToolCall, ToolChoice,
    Translated, Untranslatable, arguments_object, check_function_tool, data_url, drop_or_refuse,
    function_role, image_needs_data, note_message_extras, text_of, unsupported_part,
};

/// Where chat requests go, after the server's root URL.
pub const CHAT_PATH: &str = "/api/chat";
/// Where the model list is.
pub const TAGS_PATH: &str = "/api/tags";
const API: &str = "an Ollama target (TARGET_API=ollama)";

/// `chat` as an `/api/chat` request, or the parameter it cannot express.
pub fn request(chat: ChatRequest) -> Result<Translated, Untranslatable> {
    let mut dropped = Vec::new();
    let mut extra = chat.extra;
    let mut options = Map::new();
    let mut set = |name: &str, value: Option<Value>| {
        if let Some(value) = value.filter(|v| !v.is_null()) {
            options.insert(name.to_owned(), value);
        }
    };
    set("temperature", chat.temperature.map(Value::from));
    set("top_p", chat.top_p.map(Value::from));
    set("top_k", extra.remove("top_k"));
    set(
        "num_predict",
        chat.max_completion_tokens
            .or(chat.max_tokens)
            .map(Value::from),
    );
    set("stop", chat.stop.map(|stop| Value::from(stop.into_vec())));
    set("seed", extra.remove("seed"));
    set("presence_penalty", extra.remove("presence_penalty"));
    set("frequency_penalty", extra.remove("frequency_penalty"));
    let format = match extra.remove("response_format") {
        None => None,
        Some(format) => match ResponseFormat::read(&format)? {
            ResponseFormat::Text => None,
            ResponseFormat::JsonObject => Some(json!("json")),
            ResponseFormat::JsonSchema(schema) => Some(schema),
        },
    };
    let think = chat
        .reasoning_effort
        .map(|effort| match effort.as_str() {
            "none" | "minimal" => Ok(false),
            "low" | "medium" | "high" => Ok(true),
            other => Err(Untranslatable::new(
                "reasoning_effort",
                format!("Invalid value for 'reasoning_effort': '{other}'."),
            )),
        })
        .transpose()?;
    drop_or_refuse(&extra, API, &mut dropped)?;
    if chat.user.is_some() {
        dropped.push("user".to_owned());
    }
    if chat.parallel_tool_calls.is_some() {
        dropped.push("parallel_tool_calls".to_owned());
    }
    let tools = match chat.tool_choice {
        Some(ToolChoice::Mode(mode)) if mode == "none" => None,
        Some(ToolChoice::Mode(mode)) if mode == "auto" => chat.tools,
        None => chat.tools,
        Some(_) => {
            return Err(Untranslatable::new(
                "tool_choice",
                format!(
                    "Only 'auto' and 'none' tool_choice can be sent to {API}: it cannot force a tool call."
                ),
            ));
        }
    };
    let request = ChatBody {
        model: chat.model,
        messages: conversation(chat.messages, &mut dropped)?,
        // Ollama streams unless told not to.
        stream: chat.stream == Some(true),
        tools: tools.map(translate_tools).transpose()?,
        format,
        options,
        think,
    };
    let body = serde_json::to_vec(&request).map_err(|e| Untranslatable::unreadable(&e))?;
    Ok(Translated {
        path: CHAT_PATH.to_owned(),
        body,
        dropped,
    })
}

#[derive(Serialize)]
struct ChatBody {
    model: String,
    messages: Vec<OllamaMessage>,
    stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    tools: Option<Vec<Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    format: Option<Value>,
    #[serde(skip_serializing_if = "Map::is_empty")]
    options: Map<String, Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    think: Option<bool>,
}

#[derive(Serialize)]
struct OllamaMessage {
    role: &'static str,
    content: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    images: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_name: Option<String>,
}

impl OllamaMessage {
    fn new(role: &'static str, content: String) -> Self {
        Self {
            role,
            content,
            images: Vec::new(),
            tool_calls: Vec::new(),
            tool_name: None,
        }
    }
}

/// The messages, one for one. Tool results carry the name of the function they answer, as
/// Ollama's tool calls have no ids.
fn conversation(
    messages: Vec<Message>,
    dropped: &mut Vec<String>,
) -> Result<Vec<OllamaMessage>, Untranslatable> {
    // Every call so far: its id and function name.
    let mut calls: Vec<(String, String)> = Vec::new();
    messages
        .into_iter()
        .enumerate()
        .map(|(i, message)| {
            note_message_extras(i, &message, dropped);
            match message.role {
                Role::System | Role::Developer => {
                    let text = text_of(i, message.content.as_ref(), "A system message", API)?;
                    Ok(OllamaMessage::new("system", text))
                }
                Role::User => user_message(i, message.content),
                Role::Assistant => {
                    let text = text_of(i, message.content.as_ref(), "An assistant message", API)?;
                    let mut out = OllamaMessage::new("assistant", text);
                    for (k, call) in message.tool_calls.into_iter().flatten().enumerate() {
                        out.tool_calls.push(tool_call(i, k, &call)?);
                        calls.push((call.id, call.function.name));
                    }
                    Ok(out)
                }
                Role::Tool => {
                    let text = text_of(i, message.content.as_ref(), "A tool result", API)?;
                    let mut out = OllamaMessage::new("tool", text);
                    out.tool_name = message.tool_call_id.as_deref().and_then(|id| {
                        calls
                            .iter()
                            .rfind(|(call, _)| call == id)
                            .map(|(_, name)| name.clone())
                    });
                    Ok(out)
                }
                Role::Function => Err(function_role(i, API)),
            }
        })
        .collect()
}

fn user_message(i: usize, content: Option<Content>) -> Result<OllamaMessage, Untranslatable> {
    let mut out = OllamaMessage::new("user", String::new());
    match content {
        None => {}
        Some(Content::Text(text)) => out.content = text,
        Some(Content::Parts(parts)) => {
            for (j, part) in parts.into_iter().enumerate() {
                match part {
                    Part::Text { text } => out.content.push_str(&text),
                    Part::ImageUrl { image_url } => {
                        let (_, data) =
                            data_url(&image_url.url).ok_or_else(|| image_needs_data(i, j, API))?;
                        out.images.push(data.to_owned());
                    }
                    Part::Other(other) => return Err(unsupported_part(i, j, &other, API)),
                }
            }
        }
    }
    Ok(out)
}

fn tool_call(i: usize, k: usize, call: &ToolCall) -> Result<Value, Untranslatable> {
    let arguments = arguments_object(i, k, call, API)?;
    Ok(json!({"function": {"name": call.function.name, "arguments": arguments}}))
}

fn translate_tools(tools: Vec<Tool>) -> Result<Vec<Value>, Untranslatable> {
    tools
        .into_iter()
        .enumerate()
        .map(|(i, tool)| {
            check_function_tool(i, &tool, API)?;
            let function = tool.function;
            let mut out = json!({"name": function.name});
            if let Some(description) = function.description {
                out["description"] = Value::String(description);
            }
            out["parameters"] = function
                .parameters
                .unwrap_or_else(|| json!({"type": "object", "properties": {}}));
            Ok(json!({"type": "function", "function": out}))
        })
        .collect()
}

/// An `/api/chat` (or `/api/generate`) answer as a chat completion.
pub fn answer(v: &Value, stamp: &Stamp) -> Value {
    let usage = usage(v["prompt_eval_count"].as_u64(), v["eval_count"].as_u64());
    let (text, calls, thinking) = match v.get("message") {
        Some(m) => {
            let calls: Vec<Value> = function_calls(&m["tool_calls"], stamp);
            (
                m["content"].as_str().map(str::to_owned),
                calls,
                m["thinking"].as_str().map(str::to_owned),
            )
        }
        None => (
            v["response"].as_str().map(str::to_owned),
            vec![],
            v["thinking"].as_str().map(str::to_owned),
        ),
    };
    let finish = if calls.is_empty() {
        finish_reason(v["done_reason"].as_str().unwrap_or("stop"))
    } else {
        "tool_calls"
    };
    completion(
        None,
        v.get("model"),
        message(text, calls, thinking),
        finish,
        usage,
        stamp,
    )
}

/// One line of an `/api/chat` (or `/api/generate`) NDJSON stream, in the canonical terms.
pub fn stream_event<'a>(value: &'a Value, emit: &mut impl FnMut(Event<'a>)) {
    if let Some(message) = value["error"].as_str() {
        emit(Event::Error(message));
        return;
    }
    if let Some(model) = value["model"].as_str() {
        emit(Event::Model(model));
    }
    let message = &value["message"];
    if let Some(thinking) = message["thinking"]
        .as_str()
        .or_else(|| value["thinking"].as_str())
    {
        emit(Event::Reasoning(thinking));
    }
    emit(Event::Text(
        message["content"]
            .as_str()
            .or_else(|| value["response"].as_str())
            .unwrap_or_default(),
    ));
    for call in message["tool_calls"].as_array().into_iter().flatten() {
        let function = &call["function"];
        emit(Event::ToolStart {
            key: None,
            id: call["id"].as_str(),
            name: function["name"].as_str().unwrap_or_default(),
            arguments: match &function["arguments"] {
                Value::String(text) => Cow::Borrowed(text.as_str()),
                other => Cow::Owned(other.to_string()),
            },
        });
    }
    if value["done"] == true {
        emit(Event::Usage {
            prompt: value["prompt_eval_count"].as_u64(),
            completion: value["eval_count"].as_u64(),
        });
        emit(Event::PlainFinish(
            value["done_reason"].as_str().unwrap_or("stop"),
        ));
        emit(Event::End);
    }
}

/// An error as Ollama (and TGI, with its `error_type`) sends it: `{"error": "..."}`.
pub fn error(value: &Value) -> Option<ForeignError> {
    Some(ForeignError::new(
        "plain",
        value.get("error")?.as_str()?,
        value["error_type"].as_str(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn translate(request: Value) -> Result<(Value, Vec<String>), Untranslatable> {
        let chat: ChatRequest = serde_json::from_value(request).unwrap();
        let translated = super::request(chat)?;
        assert_eq!(translated.path, CHAT_PATH);
        Ok((
            serde_json::from_slice(&translated.body).unwrap(),
            translated.dropped,
        ))
    }

    #[test]
    fn a_whole_answer_is_asked_for_with_stream_false_and_sampling_goes_in_options() {
        let (out, dropped) = translate(json!({"model": "llama3.2", "messages": [
            {"role": "developer", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
            "temperature": 0.2, "top_p": 0.9, "max_completion_tokens": 50, "stop": "END", "seed": 3,
            "reasoning_effort": "low", "user": "u-1", "response_format": {"type": "json_object"}}))
        .unwrap();
        assert_eq!(
            out,
            json!({"model": "llama3.2", "stream": false, "think": true, "format": "json",
                   "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
                   "options": {"temperature": 0.2, "top_p": 0.9, "num_predict": 50, "stop": ["END"], "seed": 3}})
        );
        assert_eq!(dropped, vec!["user".to_owned()]);
        let (out, _) = translate(json!({"model": "m", "stream": true, "messages": [{"role": "user", "content": "x"}],
            "response_format": {"type": "json_schema", "json_schema": {"name": "s", "schema": {"type": "object"}}}}))
        .unwrap();
        assert_eq!(out["stream"], true);
        assert_eq!(out["format"], json!({"type": "object"}));
    }

    #[test]
    fn tool_calls_carry_argument_objects_and_tool_results_the_function_name() {
        let (out, _) = translate(json!({"model": "m", "messages": [
            {"role": "user", "content": [{"type": "text", "text": "Weather? "},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "15C"}],
            "tools": [{"type": "function", "function": {"name": "weather"}}], "tool_choice": "auto"}))
        .unwrap();
        assert_eq!(
            out["messages"],
            json!([{"role": "user", "content": "Weather? ", "images": ["iVBORw0KGgo="]},
                   {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "weather", "arguments": {"city": "Paris"}}}]},
                   {"role": "tool", "content": "15C", "tool_name": "weather"}])
        );
        assert_eq!(
            out["tools"],
            json!([{"type": "function", "function": {"name": "weather", "parameters": {"type": "object", "properties": {}}}}])
        );
        let (out, _) = translate(json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
            "tools": [{"type": "function", "function": {"name": "weather"}}], "tool_choice": "none"}))
        .unwrap();
        assert!(out.get("tools").is_none());
    }

    #[test]
    fn what_ollama_cannot_express_is_refused_naming_the_parameter() {
        let user = json!([{"role": "user", "content": "x"}]);
        for (field, value) in [
            ("n", json!(2)),
            ("logprobs", json!(true)),
            ("logit_bias", json!({"50256": -100})),
            ("tool_choice", json!("required")),
            (
                "tool_choice",
                json!({"type": "function", "function": {"name": "f"}}),
            ),
            ("frobnicate", json!(1)),
        ] {
            let mut request = json!({"model": "m", "messages": user});
            request[field] = value;
            let err = translate(request).unwrap_err();
            assert_eq!(err.param.as_deref(), Some(field));
            assert!(err.message.contains("TARGET_API=ollama"), "{}", err.message);
        }
        let err = translate(
            json!({"model": "m", "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}}]}]}),
        )
        .unwrap_err();
        assert_eq!(
            err.param.as_deref(),
            Some("messages[0].content[0].image_url.url")
        );
    }
}
