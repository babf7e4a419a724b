//! A Responses API request read into the chat request for the target, with the fields the
//! Response object echoes and the input items a stored response keeps.

use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::object::{Echo, ReasoningEcho, TextEcho, ToolNames, fields, namespaced_name};
use super::{BUILT_IN_TOOLS, item_id};
use crate::config::TargetApi;
use crate::formats::chat::Untranslatable;

/// A Responses request as the proxy reads it; everything else is in `extra`.
#[derive(Debug, Deserialize)]
pub struct ResponsesRequest {
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub input: Option<Value>,
    #[serde(default)]
    pub instructions: Option<String>,
    #[serde(default)]
    pub tools: Option<Vec<Value>>,
    #[serde(default)]
    pub tool_choice: Option<Value>,
    #[serde(default)]
    pub parallel_tool_calls: Option<bool>,
    #[serde(default)]
    pub text: Option<Map<String, Value>>,
    #[serde(default)]
    pub reasoning: Option<Map<String, Value>>,
    #[serde(default)]
    pub max_output_tokens: Option<u64>,
    #[serde(default)]
    pub temperature: Option<f64>,
    #[serde(default)]
    pub top_p: Option<f64>,
    #[serde(default)]
    pub metadata: Option<Map<String, Value>>,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub prompt_cache_key: Option<String>,
    #[serde(default)]
    pub safety_identifier: Option<String>,
    #[serde(default)]
    pub store: Option<bool>,
    #[serde(default)]
    pub previous_response_id: Option<String>,
    #[serde(default)]
    pub include: Option<Vec<String>>,
    #[serde(default)]
    pub stream: Option<bool>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ResponsesRequest {
    pub fn parse(body: &[u8]) -> Result<Self, Untranslatable> {
        serde_json::from_slice(body).map_err(|e| Untranslatable {
            param: None,
            message: format!("The request is not a valid Responses API request: {e}"),
        })
    }
}

/// The chat request a Responses request becomes, and what the answer is written back with.
#[derive(Debug)]
pub struct ChatForm {
    pub body: Value,
    /// Hints with no place in a chat request, for the log.
    pub dropped: Vec<String>,
    /// The Response object's fields that echo the request.
    pub echo: Echo,
    /// How the chat functions offered map back to the request's tools (custom tools' calls
    /// go back as `custom_tool_call` items, namespaced functions' with their namespace).
    pub tools: ToolNames,
    /// Every input item the answer follows (a stored predecessor's first), with ids: what a
    /// stored response keeps and `input_items` lists.
    pub input_items: Vec<Value>,
    /// Characters of the prompt, to estimate tokens when the target reports none.
    pub prompt_chars: usize,
    pub store: bool,
}

/// Reads a Responses request into the chat request for a target of `api`. `history` is what
/// a stored predecessor (`previous_response_id`) holds: its input items and its output.
/// `suffix` makes the ids of input items that come without one. `Err`: a 400 naming what
/// cannot be carried.
pub fn chat_request(
    request: &ResponsesRequest,
    history: Vec<Value>,
    api: TargetApi,
    suffix: &str,
) -> Result<ChatForm, Untranslatable> {
    let Some(model) = request.model.as_deref().filter(|m| !m.is_empty()) else {
        return Err(Untranslatable::new(
            "model",
            "Missing required parameter: 'model'.",
        ));
    };
    let mut dropped = Vec::new();
    let mut items = history;
    let first_new = items.len();
    match &request.input {
        None | Some(Value::Null) => {}
        Some(Value::String(text)) => items.push(json!({"type": "message", "role": "user",
            "content": [{"type": "input_text", "text": text}]})),
        Some(Value::Array(list)) => items.extend(list.iter().cloned()),
        Some(_) => {
            return Err(Untranslatable::new(
                "input",
                "'input' must be a string or an array of input items.",
            ));
        }
    }
    for (i, item) in items.iter_mut().enumerate().skip(first_new) {
        settle_item(item, suffix, i);
    }

    let mut tools = ToolNames::default();
    let mut chat_tools = Vec::new();
    for (i, tool) in request.tools.iter().flatten().enumerate() {
        offer_tool(i, tool, &mut chat_tools, &mut tools, &mut dropped)?;
    }
    let mut messages = Vec::new();
    if let Some(instructions) = request.instructions.as_deref().filter(|i| !i.is_empty()) {
        messages.push(json!({"role": "system", "content": instructions}));
    }
    let mut reader = ItemReader {
        api,
        messages,
        pending_reasoning: String::new(),
        dropped: &mut dropped,
    };
    for (i, item) in items.iter().enumerate() {
        reader.item(i, item)?;
    }
    let messages = reader.messages;
    // The texts' lengths: enough for an estimate, and no second serialization.
    let prompt_chars = messages.iter().map(text_chars).sum();

    let mut chat = Map::new();
    chat.insert("model".into(), json!(model));
    chat.insert("messages".into(), Value::Array(messages));
    let offered = !chat_tools.is_empty();
    if offered {
        chat.insert("tools".into(), Value::Array(chat_tools));
    }
    if let Some(choice) = &request.tool_choice
        && offered
    {
        chat.insert("tool_choice".into(), tool_choice(choice, &mut dropped)?);
    }
    if let Some(parallel) = request.parallel_tool_calls
        && offered
    {
        chat.insert("parallel_tool_calls".into(), json!(parallel));
    }
    if let Some(text) = &request.text {
        if let Some(format) = response_format(text.get("format"))? {
            chat.insert("response_format".into(), format);
        }
        if text.get("verbosity").is_some_and(|v| !v.is_null()) {
            note(&mut dropped, "text.verbosity");
        }
    }
    if let Some(reasoning) = &request.reasoning {
        if let Some(effort) = reasoning.get("effort").and_then(Value::as_str) {
            chat.insert("reasoning_effort".into(), json!(effort));
        }
        if reasoning.get("summary").is_some_and(|v| !v.is_null()) {
            note(&mut dropped, "reasoning.summary");
        }
    }
    if let Some(max) = request.max_output_tokens {
        chat.insert("max_completion_tokens".into(), json!(max));
    }
    for (name, value) in [
        ("temperature", request.temperature.map(Value::from)),
        ("top_p", request.top_p.map(Value::from)),
        ("user", request.user.clone().map(Value::from)),
        (
            "prompt_cache_key",
            request.prompt_cache_key.clone().map(Value::from),
        ),
        (
            "safety_identifier",
            request.safety_identifier.clone().map(Value::from),
        ),
    ] {
        if let Some(value) = value {
            chat.insert(name.into(), value);
        }
    }
    for included in request.include.iter().flatten() {
        // Encrypted reasoning is OpenAI's own; a chat target has none to give.
        note(&mut dropped, &format!("include: {included}"));
    }
    if request.stream == Some(true) {
        chat.insert("stream".into(), json!(true));
        // The usage `response.completed` carries.
        chat.insert("stream_options".into(), json!({"include_usage": true}));
    }
    extra_fields(&request.extra, &mut chat, &mut dropped)?;

    Ok(ChatForm {
        body: Value::Object(chat),
        dropped,
        echo: echo(request),
        tools,
        input_items: items,
        prompt_chars,
        store: request.store != Some(false),
    })
}

/// The fields with no chat equivalent: settled here, never passed on blindly.
fn extra_fields(
    extra: &Map<String, Value>,
    chat: &mut Map<String, Value>,
    dropped: &mut Vec<String>,
) -> Result<(), Untranslatable> {
    for (name, value) in extra {
        if value.is_null() {
            continue;
        }
        match name.as_str() {
            "background" if value == &Value::Bool(true) => {
                return Err(Untranslatable::new(
                    "background",
                    "Background responses are not available through this proxy: send the request without 'background'.",
                ));
            }
            "conversation" | "prompt" => {
                return Err(Untranslatable::new(
                    name.clone(),
                    format!(
                        "'{name}' refers to an object kept by OpenAI, which this proxy's target does not have. Send the conversation in 'input' (or continue with 'previous_response_id')."
                    ),
                ));
            }
            "service_tier" => {
                chat.insert(name.clone(), value.clone());
            }
            // Defaults, and what only changes how OpenAI streams.
            "background" | "stream_options" => {}
            "truncation" if value == "disabled" => {}
            "top_logprobs" if value.as_u64() == Some(0) => {}
            // Whatever else a client adds (Codex adds fields from release to release): dropped
            // and noted, never refused.
            _ => note(dropped, name),
        }
    }
    Ok(())
}

/// The request's fields as a Response object echoes them, OpenAI's defaults where absent.
fn echo(request: &ResponsesRequest) -> Echo {
    let given = |value: Option<&Value>| value.filter(|v| !v.is_null()).cloned();
    let extra = |name: &str, default: Value| given(request.extra.get(name)).unwrap_or(default);
    let (text, reasoning) = (request.text.as_ref(), request.reasoning.as_ref());
    Echo {
        background: false,
        instructions: request.instructions.clone(),
        max_output_tokens: request.max_output_tokens,
        max_tool_calls: extra("max_tool_calls", Value::Null),
        metadata: request.metadata.clone().unwrap_or_default(),
        parallel_tool_calls: request.parallel_tool_calls.unwrap_or(true),
        previous_response_id: request.previous_response_id.clone(),
        prompt_cache_key: request.prompt_cache_key.clone(),
        reasoning: ReasoningEcho {
            effort: given(reasoning.and_then(|r| r.get("effort"))).unwrap_or_default(),
            summary: given(reasoning.and_then(|r| r.get("summary"))).unwrap_or_default(),
        },
        safety_identifier: request.safety_identifier.clone(),
        service_tier: extra("service_tier", "default".into()),
        store: request.store.unwrap_or(true),
        temperature: request.temperature.unwrap_or(1.0),
        text: TextEcho {
            format: given(text.and_then(|t| t.get("format")))
                .unwrap_or_else(|| fields([("type", "text".into())])),
            verbosity: given(text.and_then(|t| t.get("verbosity")))
                .unwrap_or_else(|| "medium".into()),
        },
        tool_choice: request.tool_choice.clone().unwrap_or_else(|| "auto".into()),
        tools: request.tools.iter().flatten().map(echoed_tool).collect(),
        top_logprobs: extra("top_logprobs", 0.into()),
        top_p: request.top_p.unwrap_or(1.0),
        truncation: extra("truncation", "disabled".into()),
        user: request.user.clone(),
    }
}

/// A tool as a Response echoes it: a function's optional fields filled as applied.
fn echoed_tool(tool: &Value) -> Value {
    let mut tool = tool.clone();
    if tool["type"] == "function"
        && let Value::Object(object) = &mut tool
    {
        object.entry("description").or_insert(Value::Null);
        object.entry("parameters").or_insert(Value::Null);
        // The proxy enforces no schema itself: strict only when the client asked.
        object.entry("strict").or_insert(Value::Bool(false));
    }
    tool
}

/// An input item as it is kept: its `type` and `id` given, a message's text content as parts.
fn settle_item(item: &mut Value, suffix: &str, index: usize) {
    let Value::Object(object) = item else {
        return;
    };
    if !object.contains_key("type") && object.contains_key("role") {
        object.insert("type".into(), json!("message"));
    }
    let kind = object["type"].as_str().unwrap_or_default().to_owned();
    if kind == "message"
        && let Some(Value::String(text)) = object.get("content")
    {
        let part = if object["role"] == "assistant" {
            json!({"type": "output_text", "text": text, "annotations": []})
        } else {
            json!({"type": "input_text", "text": text})
        };
        object.insert("content".into(), json!([part]));
    }
    if !object.contains_key("id") {
        let prefix = match kind.as_str() {
            "message" => "msg",
            "function_call" => "fc",
            "function_call_output" => "fco",
            "custom_tool_call" => "ctc",
            "custom_tool_call_output" => "ctco",
            "reasoning" => "rs",
            _ => "item",
        };
        object.insert("id".into(), json!(item_id(prefix, suffix, 50 + index)));
    }
}

/// Turns input items into chat messages, in order.
struct ItemReader<'a> {
    api: TargetApi,
    messages: Vec<Value>,
    /// Reasoning read from `reasoning` items, for the next assistant message.
    pending_reasoning: String,
    dropped: &'a mut Vec<String>,
}

impl ItemReader<'_> {
    fn item(&mut self, i: usize, item: &Value) -> Result<(), Untranslatable> {
        let kind = item["type"].as_str().unwrap_or_default();
        match kind {
            "message" => self.message(i, item),
            "function_call" | "custom_tool_call" => {
                let call_id = required_str(item, "call_id", i)?;
                let name = match item["namespace"].as_str() {
                    Some(namespace) => namespaced_name(namespace, required_str(item, "name", i)?),
                    None => required_str(item, "name", i)?.to_owned(),
                };
                let arguments = if kind == "custom_tool_call" {
                    json!({"input": item["input"].as_str().unwrap_or_default()}).to_string()
                } else {
                    item["arguments"].as_str().unwrap_or("{}").to_owned()
                };
                let call = json!({"id": call_id, "type": "function",
                    "function": {"name": name, "arguments": arguments}});
                let assistant = self.assistant();
                if let Some(calls) = assistant["tool_calls"].as_array_mut() {
                    calls.push(call);
                } else {
                    assistant["tool_calls"] = json!([call]);
                }
                Ok(())
            }
            "function_call_output" | "custom_tool_call_output" => {
                let call_id = required_str(item, "call_id", i)?;
                let content = match &item["output"] {
                    Value::String(text) => text.clone(),
                    Value::Array(parts) => {
                        let mut texts = Vec::new();
                        for part in parts {
                            match part["text"].as_str() {
                                Some(text) => texts.push(text),
                                None => note(self.dropped, "non-text tool output parts"),
                            }
                        }
                        texts.join("\n")
                    }
                    Value::Null => String::new(),
                    other => other.to_string(),
                };
                self.messages
                    .push(json!({"role": "tool", "tool_call_id": call_id, "content": content}));
                Ok(())
            }
            "reasoning" => {
                let texts = |key: &str| -> Vec<String> {
                    item[key]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|p| p["text"].as_str().map(str::to_owned))
                        .collect()
                };
                let mut text = texts("content");
                if text.is_empty() {
                    text = texts("summary");
                }
                if text.is_empty() {
                    // Encrypted reasoning alone: OpenAI's to read, nobody else's.
                    note(self.dropped, "encrypted reasoning items");
                } else if self.api.is_openai() {
                    // OpenAI's chat completions take no reasoning back.
                    note(self.dropped, "reasoning items");
                } else {
                    self.pending_reasoning.push_str(&text.join("\n"));
                }
                Ok(())
            }
            "item_reference" => Err(Untranslatable::new(
                format!("input[{i}]"),
                format!(
                    "input[{i}]: item references are not available through this proxy; send the item itself, or continue with 'previous_response_id'."
                ),
            )),
            "" => Err(Untranslatable::new(
                format!("input[{i}]"),
                format!("input[{i}]: an input item needs a 'type' (or a 'role' for a message)."),
            )),
            // Calls of OpenAI's built-in tools and the like: nothing a chat target can read.
            other => {
                note(self.dropped, &format!("{other} items"));
                Ok(())
            }
        }
    }

    fn message(&mut self, i: usize, item: &Value) -> Result<(), Untranslatable> {
        let role = item["role"].as_str().unwrap_or_default();
        let parts = item["content"].as_array().map(Vec::as_slice).unwrap_or(&[]);
        match role {
            "user" => {
                let parts = parts
                    .iter()
                    .enumerate()
                    .map(|(j, part)| self.user_part(i, j, part))
                    .collect::<Result<Vec<_>, _>>()?;
                // Text alone goes as a string, which every server that speaks chat takes.
                let content = if parts.iter().all(|p| p["type"] == "text") {
                    json!(text_of(&parts))
                } else {
                    Value::Array(parts)
                };
                self.messages
                    .push(json!({"role": "user", "content": content}));
            }
            "system" | "developer" => {
                // `system` everywhere: the many servers that speak chat completions know it,
                // not all know `developer`.
                self.messages
                    .push(json!({"role": "system", "content": text_of(parts)}));
            }
            "assistant" => {
                let text = text_of(parts);
                let assistant = self.assistant_new();
                if !text.is_empty() {
                    assistant["content"] = json!(text);
                }
            }
            other => {
                return Err(Untranslatable::new(
                    format!("input[{i}].role"),
                    format!(
                        "input[{i}].role: expected 'user', 'assistant', 'system' or 'developer', not '{other}'."
                    ),
                ));
            }
        }
        Ok(())
    }

    fn user_part(&mut self, i: usize, j: usize, part: &Value) -> Result<Value, Untranslatable> {
        let param = || format!("input[{i}].content[{j}]");
        match part["type"].as_str().unwrap_or_default() {
            "input_text" | "output_text" | "text" => {
                Ok(json!({"type": "text", "text": part["text"].as_str().unwrap_or_default()}))
            }
            "input_image" => {
                let Some(url) = part["image_url"].as_str() else {
                    return Err(Untranslatable::new(
                        param(),
                        format!(
                            "{}: images are taken as a data: or https: URL in 'image_url'; files kept by OpenAI ('file_id') are not available through this proxy.",
                            param()
                        ),
                    ));
                };
                let mut image = json!({"url": url});
                if let Some(detail) = part["detail"].as_str()
                    && ["low", "high", "auto"].contains(&detail)
                {
                    image["detail"] = json!(detail);
                }
                Ok(json!({"type": "image_url", "image_url": image}))
            }
            "input_file" if part["file_data"].is_string() => {
                let mut file = json!({"file_data": part["file_data"]});
                if let Some(name) = part["filename"].as_str() {
                    file["filename"] = json!(name);
                }
                Ok(json!({"type": "file", "file": file}))
            }
            other => Err(Untranslatable::new(
                param(),
                format!(
                    "{}: content of type '{other}' cannot be sent to a chat completions target.",
                    param()
                ),
            )),
        }
    }

    /// The assistant message to add a tool call to: the last message when it is the
    /// assistant's (a text answer and its calls are one chat message), else a new one.
    fn assistant(&mut self) -> &mut Value {
        let last_is_assistant = self
            .messages
            .last()
            .is_some_and(|m| m["role"] == "assistant")
            && self.pending_reasoning.is_empty();
        if !last_is_assistant {
            return self.assistant_new();
        }
        let last = self.messages.len() - 1;
        &mut self.messages[last]
    }

    fn assistant_new(&mut self) -> &mut Value {
        let mut message = json!({"role": "assistant", "content": null});
        if !self.pending_reasoning.is_empty() {
            message["reasoning_content"] = json!(std::mem::take(&mut self.pending_reasoning));
        }
        self.messages.push(message);
        let last = self.messages.len() - 1;
        &mut self.messages[last]
    }
}

/// Characters of a chat message's text: its content and its calls' arguments.
fn text_chars(message: &Value) -> usize {
    let content = match &message["content"] {
        Value::String(text) => text.len(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p["text"].as_str())
            .map(str::len)
            .sum(),
        _ => 0,
    };
    let calls: usize = message["tool_calls"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|call| call["function"]["arguments"].as_str())
        .map(str::len)
        .sum();
    content + calls
}

/// The texts of content parts, joined.
fn text_of(parts: &[Value]) -> String {
    parts
        .iter()
        .filter_map(|part| part["text"].as_str().or_else(|| part["refusal"].as_str()))
        .collect::<Vec<_>>()
        .join("")
}

fn required_str<'a>(item: &'a Value, key: &str, i: usize) -> Result<&'a str, Untranslatable> {
    item[key].as_str().ok_or_else(|| {
        Untranslatable::new(
            format!("input[{i}].{key}"),
            format!("Missing required parameter: 'input[{i}].{key}'."),
        )
    })
}

/// A Responses tool as the chat tools it is offered as: a function as it is; a custom tool as
/// a function with one string argument, `input`; a namespace's functions each under a name
/// that keeps the namespace. Web search is left out (noted): Codex declares it by default, and
/// the model answers without it. Other tools OpenAI runs itself are refused.
fn offer_tool(
    i: usize,
    tool: &Value,
    chat_tools: &mut Vec<Value>,
    names: &mut ToolNames,
    dropped: &mut Vec<String>,
) -> Result<(), Untranslatable> {
    let kind = tool["type"].as_str().unwrap_or_default();
    let name = tool["name"].as_str().unwrap_or_default();
    match kind {
        "function" => chat_tools.push(function_tool(name, tool)),
        "custom" => {
            let mut description = tool["description"].as_str().unwrap_or_default().to_owned();
            let format = &tool["format"];
            if format["type"] == "grammar"
                && let Some(definition) = format["definition"].as_str()
            {
                let syntax = format["syntax"].as_str().unwrap_or("lark");
                description.push_str(&format!(
                    "\n\nThe input is free text matching this {syntax} grammar:\n{definition}"
                ));
            }
            names.custom.push(name.to_owned());
            chat_tools.push(json!({"type": "function", "function": {
                "name": name,
                "description": description.trim_start(),
                "parameters": {
                    "type": "object",
                    "properties": {"input": {"type": "string", "description": "The tool's input, as free text."}},
                    "required": ["input"],
                    "additionalProperties": false,
                },
            }}));
        }
        "namespace" => {
            for inner in tool["tools"].as_array().into_iter().flatten() {
                let inner_name = inner["name"].as_str().unwrap_or_default();
                if inner["type"] != "function" {
                    note(dropped, &format!("{name} tools other than functions"));
                    continue;
                }
                let flat = namespaced_name(name, inner_name);
                chat_tools.push(function_tool(&flat, inner));
                names
                    .namespaced
                    .push((flat, name.to_owned(), inner_name.to_owned()));
            }
        }
        "web_search" | "web_search_preview" | "web_search_preview_2025_03_11" => {
            note(dropped, &format!("tools: {kind}"));
        }
        _ => {
            let what = if BUILT_IN_TOOLS.contains(&kind) {
                format!("The built-in tool '{kind}'")
            } else {
                format!("The tool type '{kind}'")
            };
            return Err(Untranslatable::new(
                format!("tools[{i}].type"),
                format!(
                    "{what} is run by OpenAI's own servers, and this proxy answers the Responses API through chat completions, which have no such tool. Leave it out, or set TARGET_API=responses for a target that has the Responses API."
                ),
            ));
        }
    }
    Ok(())
}

/// A function tool, flat in the Responses API, as chat's nested one named `name`.
fn function_tool(name: &str, tool: &Value) -> Value {
    let mut function = json!({
        "name": name,
        "parameters": tool.get("parameters").filter(|p| !p.is_null()).cloned()
            .unwrap_or_else(|| json!({"type": "object", "properties": {}})),
    });
    if let Some(description) = tool["description"].as_str() {
        function["description"] = json!(description);
    }
    if let Some(strict) = tool["strict"].as_bool() {
        function["strict"] = json!(strict);
    }
    json!({"type": "function", "function": function})
}

fn tool_choice(choice: &Value, dropped: &mut Vec<String>) -> Result<Value, Untranslatable> {
    match choice {
        Value::String(_) => Ok(choice.clone()),
        Value::Object(object) => match object.get("type").and_then(Value::as_str) {
            Some("function" | "custom") => {
                let name = object
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                Ok(json!({"type": "function", "function": {"name": name}}))
            }
            Some("allowed_tools") => {
                note(dropped, "tool_choice.allowed_tools");
                Ok(object.get("mode").cloned().unwrap_or_else(|| json!("auto")))
            }
            other => Err(Untranslatable::new(
                "tool_choice",
                format!(
                    "tool_choice of type '{}' names a tool OpenAI runs itself, which is not available through this proxy.",
                    other.unwrap_or_default()
                ),
            )),
        },
        _ => Err(Untranslatable::new(
            "tool_choice",
            "'tool_choice' must be a string or an object.",
        )),
    }
}

/// `text.format` as chat's `response_format` (`None` for plain text).
fn response_format(format: Option<&Value>) -> Result<Option<Value>, Untranslatable> {
    let Some(format) = format.filter(|f| !f.is_null()) else {
        return Ok(None);
    };
    match format["type"].as_str() {
        Some("text") => Ok(None),
        Some("json_object") => Ok(Some(json!({"type": "json_object"}))),
        Some("json_schema") => {
            let mut schema = Map::new();
            for key in ["name", "schema", "strict", "description"] {
                if let Some(value) = format.get(key).filter(|v| !v.is_null()) {
                    schema.insert(key.into(), value.clone());
                }
            }
            Ok(Some(json!({"type": "json_schema", "json_schema": schema})))
        }
        other => Err(Untranslatable::new(
            "text.format.type",
            format!(
                "text.format.type must be 'text', 'json_object' or 'json_schema', not {}.",
                other.map_or_else(|| "missing".to_owned(), |o| format!("'{o}'"))
            ),
        )),
    }
}

/// Notes a hint left out, once.
fn note(dropped: &mut Vec<String>, what: &str) {
    if !dropped.iter().any(|d| d == what) {
        dropped.push(what.to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(body: Value) -> ChatForm {
        let request = ResponsesRequest::parse(body.to_string().as_bytes()).unwrap();
        chat_request(&request, Vec::new(), TargetApi::OpenAi, "abc").unwrap()
    }

    #[test]
    fn a_string_input_and_instructions_become_system_and_user_messages() {
        let form = read(json!({"model": "m", "input": "Hi", "instructions": "Be brief."}));
        assert_eq!(
            form.body["messages"],
            json!([{"role": "system", "content": "Be brief."},
                   {"role": "user", "content": "Hi"}])
        );
        assert_eq!(form.input_items[0]["content"][0]["type"], "input_text");
        assert!(
            form.input_items[0]["id"]
                .as_str()
                .unwrap()
                .starts_with("msg_abc")
        );
    }

    #[test]
    fn calls_and_their_outputs_pair_up_as_one_assistant_message_and_tool_messages() {
        let form = read(json!({"model": "m", "tools": [
                {"type": "function", "name": "shell", "parameters": {"type": "object"}},
                {"type": "custom", "name": "apply_patch", "format": {"type": "grammar", "syntax": "lark", "definition": "start: x"}}],
            "input": [
                {"role": "user", "content": "go"},
                {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "On it."}]},
                {"type": "function_call", "call_id": "c1", "name": "shell", "arguments": "{\"command\":[\"ls\"]}"},
                {"type": "custom_tool_call", "call_id": "c2", "name": "apply_patch", "input": "*** Begin Patch"},
                {"type": "function_call_output", "call_id": "c1", "output": "a.txt"},
                {"type": "custom_tool_call_output", "call_id": "c2", "output": [{"type": "input_text", "text": "Done"}]}]}));
        let messages = form.body["messages"].as_array().unwrap();
        assert_eq!(messages.len(), 4, "{messages:#?}");
        assert_eq!(messages[1]["content"], "On it.");
        let calls = messages[1]["tool_calls"].as_array().unwrap();
        assert_eq!(calls[0]["id"], "c1");
        assert_eq!(
            calls[1]["function"]["arguments"],
            json!({"input": "*** Begin Patch"}).to_string()
        );
        assert_eq!(
            messages[2],
            json!({"role": "tool", "tool_call_id": "c1", "content": "a.txt"})
        );
        assert_eq!(messages[3]["content"], "Done");
        assert_eq!(form.tools.custom, ["apply_patch"]);
        let custom = &form.body["tools"][1]["function"];
        assert_eq!(custom["parameters"]["required"], json!(["input"]));
        assert!(custom["description"].as_str().unwrap().contains("start: x"));
    }

    #[test]
    fn namespaced_functions_are_offered_under_names_that_keep_the_namespace_and_web_search_is_noted()
     {
        let form = read(json!({"model": "m", "tools": [
                {"type": "namespace", "name": "agents", "tools": [{"type": "function", "name": "spawn", "parameters": {"type": "object"}}]},
                {"type": "web_search", "external_web_access": false}],
            "input": [{"type": "function_call", "call_id": "c", "namespace": "agents", "name": "spawn", "arguments": "{}"},
                {"type": "function_call_output", "call_id": "c", "output": "ok"}]}));
        assert_eq!(form.body["tools"][0]["function"]["name"], "agents__spawn");
        assert_eq!(form.body["tools"].as_array().unwrap().len(), 1);
        assert_eq!(
            form.body["messages"][0]["tool_calls"][0]["function"]["name"],
            "agents__spawn"
        );
        assert_eq!(form.tools.split("agents__spawn"), (Some("agents"), "spawn"));
        assert_eq!(form.dropped, ["tools: web_search"]);
    }

    #[test]
    fn built_in_tools_are_refused_naming_the_tool() {
        let request = ResponsesRequest::parse(
            json!({"model": "m", "input": "x", "tools": [{"type": "file_search"}]})
                .to_string()
                .as_bytes(),
        )
        .unwrap();
        let error = chat_request(&request, Vec::new(), TargetApi::OpenAi, "a").unwrap_err();
        assert_eq!(error.param.as_deref(), Some("tools[0].type"));
        assert!(error.message.contains("'file_search'"), "{}", error.message);
    }

    #[test]
    fn text_format_reasoning_and_limits_map_to_their_chat_fields() {
        let form = read(json!({"model": "m", "input": "x", "stream": true,
            "text": {"format": {"type": "json_schema", "name": "n", "schema": {"type": "object"}, "strict": true}, "verbosity": "low"},
            "reasoning": {"effort": "high", "summary": "auto"}, "max_output_tokens": 99,
            "include": ["reasoning.encrypted_content"], "store": false, "prompt_cache_key": "k"}));
        let chat = &form.body;
        assert_eq!(
            chat["response_format"],
            json!({"type": "json_schema",
            "json_schema": {"name": "n", "schema": {"type": "object"}, "strict": true}})
        );
        assert_eq!(chat["reasoning_effort"], "high");
        assert_eq!(chat["max_completion_tokens"], 99);
        assert_eq!(chat["stream_options"], json!({"include_usage": true}));
        assert_eq!(chat["prompt_cache_key"], "k");
        assert!(chat.get("store").is_none());
        assert!(!form.store);
        assert_eq!(
            form.dropped,
            [
                "text.verbosity",
                "reasoning.summary",
                "include: reasoning.encrypted_content"
            ]
        );
    }

    #[test]
    fn reasoning_items_go_to_targets_that_take_reasoning_and_are_noted_for_openai() {
        let body = json!({"model": "m", "input": [
            {"role": "user", "content": "q"},
            {"type": "reasoning", "summary": [{"type": "summary_text", "text": "think"}]},
            {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c", "output": "r"}]});
        let request = ResponsesRequest::parse(body.to_string().as_bytes()).unwrap();
        let ollama = chat_request(&request, Vec::new(), TargetApi::Ollama, "a").unwrap();
        assert_eq!(ollama.body["messages"][1]["reasoning_content"], "think");
        let openai = chat_request(&request, Vec::new(), TargetApi::OpenAi, "a").unwrap();
        assert!(
            openai.body["messages"][1]
                .get("reasoning_content")
                .is_none()
        );
        assert_eq!(openai.dropped, ["reasoning items"]);
    }
}
