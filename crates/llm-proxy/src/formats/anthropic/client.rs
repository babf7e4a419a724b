//! Anthropic's Messages API as clients speak it (Claude Code, the Anthropic SDKs): a Messages
//! request read into the canonical chat request, and a chat completion or chat stream written
//! back as a Messages answer or its event stream.

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::config::TargetApi;
use crate::formats::chat::Untranslatable;
use crate::formats::usage::estimate_tokens;

/// Thinking budgets up to which a `reasoning_effort` is chosen: OpenAI's three steps against
/// Anthropic's token budgets (1,024 is Anthropic's smallest).
const EFFORT_BUDGETS: [(u64, &str); 2] = [(4096, "low"), (16_384, "medium")];

/// A Messages request as the proxy reads it; everything else is in `extra`.
#[derive(Debug, Deserialize)]
pub struct MessagesRequest {
    pub model: String,
    pub max_tokens: u64,
    pub messages: Vec<InMessage>,
    #[serde(default)]
    pub system: Option<Value>,
    #[serde(default)]
    pub tools: Option<Vec<Map<String, Value>>>,
    #[serde(default)]
    pub tool_choice: Option<Map<String, Value>>,
    #[serde(default)]
    pub stop_sequences: Option<Vec<String>>,
    #[serde(default)]
    pub temperature: Option<f64>,
    #[serde(default)]
    pub top_p: Option<f64>,
    #[serde(default)]
    pub top_k: Option<u64>,
    #[serde(default)]
    pub metadata: Option<Map<String, Value>>,
    #[serde(default)]
    pub thinking: Option<Map<String, Value>>,
    #[serde(default)]
    pub stream: Option<bool>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Deserialize)]
pub struct InMessage {
    pub role: String,
    pub content: Value,
}

/// The chat request a Messages request becomes, and what had no place in it (for the log).
#[derive(Debug)]
pub struct ChatForm {
    pub body: Value,
    /// Estimated prompt tokens, for `message_start` before the target reports them.
    pub prompt_estimate: u64,
    pub dropped: Vec<String>,
    /// The request's stop sequences, to name the one that ended an answer.
    pub stop_sequences: Vec<String>,
}

/// Reads a Messages request body as the chat request for a target of `api` (`Err`: a 400
/// naming what cannot be carried).
pub fn chat_request(body: &[u8], api: TargetApi) -> Result<ChatForm, Untranslatable> {
    let request: MessagesRequest = serde_json::from_slice(body).map_err(|e| Untranslatable {
        param: None,
        message: format!("The request is not a valid Messages API request: {e}"),
    })?;
    let mut dropped = Vec::new();
    // Fields that tune Anthropic's own service (cache_control, context_management,
    // output_config...) have nothing to do on a chat target, and Claude Code adds new ones
    // behind betas from release to release: dropped and noted, never refused.
    dropped.extend(request.extra.keys().cloned());
    let mut messages = Vec::new();
    let mut chars = 0;
    if let Some(system) = &request.system {
        let text = system_text(system)?;
        chars += text.len();
        messages.push(json!({"role": "system", "content": text}));
    }
    for (i, message) in request.messages.iter().enumerate() {
        chars += text_chars(&message.content);
        match message.role.as_str() {
            "user" => user_messages(i, &message.content, &mut messages)?,
            "assistant" => {
                messages.push(assistant_message(i, &message.content, api, &mut dropped)?);
            }
            "system" => {
                messages.push(json!({"role": "system", "content": system_text(&message.content)?}))
            }
            other => {
                return Err(Untranslatable::new(
                    format!("messages.{i}.role"),
                    format!(
                        "messages.{i}.role: Input should be 'user' or 'assistant', not '{other}'"
                    ),
                ));
            }
        }
    }
    let mut chat = json!({
        "model": request.model,
        "messages": messages,
        "max_tokens": request.max_tokens,
    });
    if let Some(tools) = &request.tools {
        chars += tools
            .iter()
            .map(|t| Value::Object(t.clone()).to_string().len())
            .sum::<usize>();
        chat["tools"] = Value::Array(
            tools
                .iter()
                .enumerate()
                .map(|(i, tool)| function_tool(i, tool))
                .collect::<Result<_, _>>()?,
        );
    }
    if let Some(choice) = &request.tool_choice {
        let (choice, parallel) = tool_choice(choice)?;
        chat["tool_choice"] = choice;
        if parallel == Some(false) {
            chat["parallel_tool_calls"] = Value::Bool(false);
        }
    }
    if let Some(stop) = &request.stop_sequences {
        chat["stop"] = json!(stop);
    }
    for (name, value) in [
        ("temperature", request.temperature.map(Value::from)),
        ("top_p", request.top_p.map(Value::from)),
    ] {
        if let Some(value) = value {
            chat[name] = value;
        }
    }
    if let Some(top_k) = request.top_k {
        // Only the translated APIs have a top_k; OpenAI's chat completions do not.
        if api.is_openai() {
            dropped.push("top_k".to_owned());
        } else {
            chat["top_k"] = json!(top_k);
        }
    }
    if let Some(user) = request
        .metadata
        .as_ref()
        .and_then(|m| m.get("user_id"))
        .and_then(Value::as_str)
    {
        chat["user"] = json!(user);
    }
    match request.thinking.as_ref().map(|t| (t, reasoning_effort(t))) {
        Some((_, Some(effort))) => chat["reasoning_effort"] = json!(effort),
        Some((thinking, None))
            if thinking.get("type").and_then(Value::as_str) != Some("disabled") =>
        {
            dropped.push("thinking".to_owned());
        }
        _ => {}
    }
    if request.stream == Some(true) {
        chat["stream"] = Value::Bool(true);
        // The answer's usage ends the Messages stream (`message_delta`).
        chat["stream_options"] = json!({"include_usage": true});
    }
    Ok(ChatForm {
        body: chat,
        prompt_estimate: estimate_tokens(chars),
        dropped,
        stop_sequences: request.stop_sequences.unwrap_or_default(),
    })
}

/// The characters of a message's text, images and other data left out: what the estimate for
/// `message_start` counts.
fn text_chars(content: &Value) -> usize {
    match content {
        Value::String(text) => text.len(),
        Value::Array(blocks) => blocks
            .iter()
            .map(|block| match block["type"].as_str() {
                Some("image" | "document") => 0,
                Some("tool_result") => text_chars(&block["content"]),
                Some("tool_use") => block["input"].to_string().len(),
                _ => ["text", "thinking"]
                    .iter()
                    .filter_map(|key| block[*key].as_str())
                    .map(str::len)
                    .sum(),
            })
            .sum(),
        _ => 0,
    }
}

/// `thinking` as OpenAI's `reasoning_effort`: a budget up to 4,096 tokens is `low`, up to
/// 16,384 `medium`, more `high`. `adaptive` (Claude Code's default, for any model it does not
/// know) leaves the choice to the model: nothing is sent, as most chat models refuse the field.
fn reasoning_effort(thinking: &Map<String, Value>) -> Option<&'static str> {
    match thinking.get("type").and_then(Value::as_str)? {
        "enabled" => {
            let budget = thinking.get("budget_tokens").and_then(Value::as_u64)?;
            Some(
                EFFORT_BUDGETS
                    .iter()
                    .find(|(limit, _)| budget <= *limit)
                    .map_or("high", |(_, effort)| *effort),
            )
        }
        _ => None,
    }
}

/// A system prompt (a string or text blocks) as one text; blocks are joined by blank lines.
fn system_text(system: &Value) -> Result<String, Untranslatable> {
    match system {
        Value::String(text) => Ok(text.clone()),
        Value::Array(blocks) => blocks
            .iter()
            .enumerate()
            .map(|(j, block)| {
                block["text"].as_str().map(str::to_owned).ok_or_else(|| {
                    Untranslatable::new(
                        format!("system.{j}"),
                        format!("system.{j}: only text blocks can be sent to a chat target"),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(|texts| texts.join("\n\n")),
        _ => Err(Untranslatable::new(
            "system",
            "system: Input should be a valid string or a list of text blocks",
        )),
    }
}

/// A user turn: its tool results become `tool` messages first (chat wants them right after
/// the calls), then the rest one user message.
fn user_messages(i: usize, content: &Value, out: &mut Vec<Value>) -> Result<(), Untranslatable> {
    let blocks = match content {
        Value::String(text) => {
            out.push(json!({"role": "user", "content": text}));
            return Ok(());
        }
        Value::Array(blocks) => blocks,
        _ => return Err(not_blocks(i)),
    };
    let mut parts = Vec::new();
    for (j, block) in blocks.iter().enumerate() {
        match block["type"].as_str().unwrap_or_default() {
            "tool_result" => out.push(tool_message(i, j, block)?),
            "text" => parts.push(json!({"type": "text", "text": text_field(i, j, block)?})),
            "image" => parts.push(image_part(i, j, &block["source"])?),
            "document" => parts.push(json!({"type": "text", "text": document_text(i, j, block)?})),
            other => return Err(unsupported_block(i, j, other)),
        }
    }
    if !parts.is_empty() {
        out.push(json!({"role": "user", "content": parts}));
    }
    Ok(())
}

/// An assistant turn. Its thinking goes back as reasoning to the APIs that read it (Anthropic,
/// Gemini, Ollama, through their translations); chat completions has no field for it (some
/// servers refuse one), so there it is dropped and noted.
fn assistant_message(
    i: usize,
    content: &Value,
    api: TargetApi,
    dropped: &mut Vec<String>,
) -> Result<Value, Untranslatable> {
    let blocks = match content {
        Value::String(text) => return Ok(json!({"role": "assistant", "content": text})),
        Value::Array(blocks) => blocks,
        _ => return Err(not_blocks(i)),
    };
    let mut text = String::new();
    let mut reasoning = String::new();
    let mut calls = Vec::new();
    for (j, block) in blocks.iter().enumerate() {
        match block["type"].as_str().unwrap_or_default() {
            "text" => text.push_str(text_field(i, j, block)?),
            "thinking" => reasoning.push_str(block["thinking"].as_str().unwrap_or_default()),
            "redacted_thinking" => {
                dropped.push(format!("messages.{i}.content.{j} (redacted_thinking)"))
            }
            "tool_use" => {
                let id = block["id"].as_str().unwrap_or_default();
                let name = block["name"].as_str().unwrap_or_default();
                let arguments = block
                    .get("input")
                    .map_or_else(|| "{}".to_owned(), Value::to_string);
                calls.push(json!({"id": id, "type": "function", "function": {"name": name, "arguments": arguments}}));
            }
            other => return Err(unsupported_block(i, j, other)),
        }
    }
    let mut message = json!({"role": "assistant", "content": if text.is_empty() && !calls.is_empty() { Value::Null } else { Value::String(text) }});
    if !calls.is_empty() {
        message["tool_calls"] = Value::Array(calls);
    }
    if !reasoning.is_empty() {
        if api.is_openai() {
            dropped.push(format!("messages.{i} thinking"));
        } else {
            message["reasoning_content"] = Value::String(reasoning);
        }
    }
    Ok(message)
}

fn tool_message(i: usize, j: usize, block: &Value) -> Result<Value, Untranslatable> {
    let id = block["tool_use_id"].as_str().ok_or_else(|| {
        Untranslatable::new(
            format!("messages.{i}.content.{j}.tool_use_id"),
            format!("messages.{i}.content.{j}.tool_use_id: Field required"),
        )
    })?;
    let mut text = match &block["content"] {
        Value::Null => String::new(),
        Value::String(text) => text.clone(),
        Value::Array(parts) => {
            let mut texts = Vec::new();
            for (k, part) in parts.iter().enumerate() {
                match part["type"].as_str().unwrap_or_default() {
                    "text" => texts.push(part["text"].as_str().unwrap_or_default().to_owned()),
                    "document" => texts.push(document_text(i, j, part)?),
                    other => {
                        return Err(Untranslatable::new(
                            format!("messages.{i}.content.{j}.content.{k}.type"),
                            format!(
                                "A tool result's '{other}' content cannot be sent to a chat target: only text."
                            ),
                        ));
                    }
                }
            }
            texts.join("\n")
        }
        _ => return Err(not_blocks(i)),
    };
    if block["is_error"] == true {
        // Chat has no error flag on a tool result: the model reads it in the text.
        text.insert_str(0, "Error: ");
    }
    Ok(json!({"role": "tool", "tool_call_id": id, "content": text}))
}

fn text_field(i: usize, j: usize, block: &Value) -> Result<&str, Untranslatable> {
    block["text"].as_str().ok_or_else(|| {
        Untranslatable::new(
            format!("messages.{i}.content.{j}.text"),
            format!("messages.{i}.content.{j}.text: Field required"),
        )
    })
}

fn image_part(i: usize, j: usize, source: &Value) -> Result<Value, Untranslatable> {
    let url = match source["type"].as_str() {
        Some("base64") => format!(
            "data:{};base64,{}",
            source["media_type"].as_str().unwrap_or("image/png"),
            source["data"].as_str().unwrap_or_default()
        ),
        Some("url") => source["url"].as_str().unwrap_or_default().to_owned(),
        _ => {
            return Err(Untranslatable::new(
                format!("messages.{i}.content.{j}.source"),
                "An image must come as base64 data or a URL to be sent to a chat target.",
            ));
        }
    };
    Ok(json!({"type": "image_url", "image_url": {"url": url}}))
}

/// A plain-text document's text (with its title); PDFs and other files have no chat form.
fn document_text(i: usize, j: usize, block: &Value) -> Result<String, Untranslatable> {
    let source = &block["source"];
    let data = match (source["type"].as_str(), source["media_type"].as_str()) {
        (Some("text"), _) => source["data"].as_str().unwrap_or_default(),
        (_, media) => {
            return Err(Untranslatable::new(
                format!("messages.{i}.content.{j}.source"),
                format!(
                    "A {} document cannot be sent to a chat target: only plain-text documents can (set TARGET_API=anthropic for a target that reads them).",
                    media.unwrap_or("non-text")
                ),
            ));
        }
    };
    Ok(match block["title"].as_str() {
        Some(title) => format!("{title}\n\n{data}"),
        None => data.to_owned(),
    })
}

fn function_tool(i: usize, tool: &Map<String, Value>) -> Result<Value, Untranslatable> {
    let name = tool.get("name").and_then(Value::as_str).unwrap_or_default();
    if let Some(kind) = tool
        .get("type")
        .and_then(Value::as_str)
        .filter(|kind| *kind != "custom")
    {
        return Err(Untranslatable::new(
            format!("tools.{i}"),
            format!(
                "The server tool '{name}' ({kind}) runs on Anthropic's platform and cannot be offered to a chat target (set TARGET_API=anthropic to pass it through)."
            ),
        ));
    }
    let mut function = json!({
        "name": name,
        "parameters": tool.get("input_schema").cloned().unwrap_or_else(|| json!({"type": "object", "properties": {}})),
    });
    if let Some(description) = tool.get("description") {
        function["description"] = description.clone();
    }
    Ok(json!({"type": "function", "function": function}))
}

/// `tool_choice`, and `parallel_tool_calls` from its `disable_parallel_tool_use`.
fn tool_choice(choice: &Map<String, Value>) -> Result<(Value, Option<bool>), Untranslatable> {
    let parallel = choice
        .get("disable_parallel_tool_use")
        .and_then(Value::as_bool)
        .map(|disable| !disable);
    let mapped = match choice.get("type").and_then(Value::as_str) {
        Some("auto") => json!("auto"),
        Some("any") => json!("required"),
        Some("none") => json!("none"),
        Some("tool") => {
            let name = choice
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default();
            json!({"type": "function", "function": {"name": name}})
        }
        _ => {
            return Err(Untranslatable::new(
                "tool_choice.type",
                "tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none'",
            ));
        }
    };
    Ok((mapped, parallel))
}

fn not_blocks(i: usize) -> Untranslatable {
    Untranslatable::new(
        format!("messages.{i}.content"),
        format!("messages.{i}.content: Input should be a valid string or a list of content blocks"),
    )
}

fn unsupported_block(i: usize, j: usize, kind: &str) -> Untranslatable {
    Untranslatable::new(
        format!("messages.{i}.content.{j}.type"),
        format!("A '{kind}' content block cannot be sent to a chat target."),
    )
}

/// A chat completion as a Messages answer. `stop_sequences` are the request's, to name the one
/// that ended the answer when the target says (vLLM's `stop_reason`).
pub fn message_from_completion(
    completion: &Value,
    stop_sequences: &[String],
) -> (Value, Vec<String>) {
    let mut notes = Vec::new();
    let choice = &completion["choices"][0];
    let message = &choice["message"];
    let mut content = Vec::new();
    if let Some(thinking) = message["reasoning_content"]
        .as_str()
        .filter(|t| !t.is_empty())
    {
        content.push(json!({"type": "thinking", "thinking": thinking, "signature": ""}));
    }
    if let Some(text) = message["content"].as_str().filter(|t| !t.is_empty()) {
        content.push(json!({"type": "text", "text": text}));
    }
    let id = completion["id"].as_str().unwrap_or_default();
    // The chat answer's own id, as Anthropic spells a message's.
    let suffix = id.strip_prefix("chatcmpl-").unwrap_or(id);
    for (k, call) in message["tool_calls"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let arguments = call["function"]["arguments"].as_str().unwrap_or("{}");
        let fallback = || format!("toolu_{suffix}_{k}");
        let input = tool_input(arguments);
        if input.is_string() {
            notes.push(format!(
                "tool call {k}: arguments not a JSON object, given as text"
            ));
        }
        content.push(json!({
            "type": "tool_use",
            "id": tool_use_id(call["id"].as_str().unwrap_or_default(), fallback),
            "name": call["function"]["name"],
            "input": input,
        }));
    }
    let (stop_reason, stop_sequence) = stop_of(choice, stop_sequences);
    let message = json!({
        "id": format!("msg_{suffix}"),
        "type": "message",
        "role": "assistant",
        "model": completion["model"],
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": stop_sequence,
        "usage": usage(&completion["usage"]),
    });
    (message, notes)
}

/// A tool call id as Anthropic spells them (`toolu_…`), `fallback` for none; ids come back
/// unchanged in tool results, so the chat target sees its calls answered under the same name.
pub fn tool_use_id(id: &str, fallback: impl FnOnce() -> String) -> String {
    if id.starts_with("toolu_") {
        id.to_owned()
    } else if id.is_empty() {
        fallback()
    } else {
        format!("toolu_{id}")
    }
}

/// A tool call's arguments as the `input` object; arguments that are not a JSON object come
/// as the raw string, for the client to see what the model wrote.
pub fn tool_input(arguments: &str) -> Value {
    match serde_json::from_str::<Value>(arguments) {
        Ok(object @ Value::Object(_)) => object,
        _ if arguments.trim().is_empty() => json!({}),
        _ => Value::String(arguments.to_owned()),
    }
}

/// The stop reason, and the stop sequence that ended the answer when the target names it.
pub fn stop_of(choice: &Value, stop_sequences: &[String]) -> (&'static str, Value) {
    match choice["finish_reason"].as_str().unwrap_or("stop") {
        "length" => ("max_tokens", Value::Null),
        "tool_calls" | "function_call" => ("tool_use", Value::Null),
        "content_filter" => ("refusal", Value::Null),
        _ => match choice["stop_reason"]
            .as_str()
            .filter(|matched| stop_sequences.iter().any(|s| s == matched))
        {
            Some(matched) => ("stop_sequence", json!(matched)),
            None => ("end_turn", Value::Null),
        },
    }
}

/// Chat usage as Messages usage: cached prompt tokens are reported apart, as Anthropic does.
pub fn usage(usage: &Value) -> Value {
    let prompt = usage["prompt_tokens"].as_u64().unwrap_or(0);
    let cached = usage
        .pointer("/prompt_tokens_details/cached_tokens")
        .and_then(Value::as_u64)
        .unwrap_or(0)
        .min(prompt);
    json!({
        "input_tokens": prompt - cached,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": cached,
        "output_tokens": usage["completion_tokens"].as_u64().unwrap_or(0),
    })
}
