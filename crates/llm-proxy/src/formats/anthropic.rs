//! Anthropic's Messages API: an OpenAI chat request written as a `POST /messages` request.
//! (Its answers and streams are read by `normalize` today.)

use serde::Serialize;
use serde_json::{Map, Value, json};

use super::chat::{
    ChatRequest, Content, Message, Part, Role, Stop, Tool, ToolCall, ToolChoice, Untranslatable,
};

/// Where chat requests go, after the endpoint's `/v1`.
pub const MESSAGES_PATH: &str = "/messages";
/// `max_tokens` when the client sets none: Anthropic requires one, OpenAI does not.
pub const DEFAULT_MAX_TOKENS: u64 = 4096;
/// Thinking budgets for OpenAI's `reasoning_effort`; Anthropic's minimum is 1,024.
const THINKING_BUDGETS: [(&str, u64); 3] = [("low", 1024), ("medium", 4096), ("high", 16_384)];
const API: &str = "an Anthropic target (TARGET_API=anthropic)";

/// The translated request, and the harmless hints that had no place in it (for the log).
#[derive(Debug)]
pub struct Translated {
    /// Where it goes, after the endpoint's `/v1`.
    pub path: &'static str,
    pub body: Vec<u8>,
    pub dropped: Vec<String>,
}

/// `chat` as a Messages API request body, or the parameter it cannot express.
pub fn request(chat: ChatRequest) -> Result<Translated, Untranslatable> {
    let mut dropped = Vec::new();
    let passed = check_parameters(&chat.extra, &mut dropped)?;
    let (system, messages) = conversation(chat.messages, &mut dropped)?;
    let tools = chat
        .tools
        .map(|tools| translate_tools(tools, &mut dropped))
        .transpose()?;
    let mut tool_choice = chat.tool_choice.map(translate_tool_choice).transpose()?;
    if chat.parallel_tool_calls == Some(false) && tools.is_some() {
        let choice = tool_choice.get_or_insert_with(|| json!({"type": "auto"}));
        if choice["type"] != "none" {
            choice["disable_parallel_tool_use"] = Value::Bool(true);
        }
    } else if chat.parallel_tool_calls.is_some() {
        dropped.push("parallel_tool_calls".to_owned());
    }
    if let Some(temperature) = chat.temperature
        && !(0.0..=1.0).contains(&temperature)
    {
        return Err(Untranslatable::new(
            "temperature",
            format!("temperature {temperature} cannot be sent to {API}: it takes 0 to 1."),
        ));
    }
    let asked = chat.max_completion_tokens.or(chat.max_tokens);
    let (max_tokens, thinking) = thinking(chat.reasoning_effort.as_deref(), asked)?;
    let request = MessagesRequest {
        model: chat.model,
        max_tokens,
        system,
        messages,
        stop_sequences: chat.stop.map(Stop::into_vec),
        stream: chat.stream,
        temperature: chat.temperature,
        top_p: chat.top_p,
        tools,
        tool_choice,
        thinking,
        metadata: chat.user.map(|user| json!({"user_id": user})),
        passed,
    };
    let body = serde_json::to_vec(&request).map_err(|e| Untranslatable::unreadable(&e))?;
    Ok(Translated {
        path: MESSAGES_PATH,
        body,
        dropped,
    })
}

#[derive(Serialize)]
struct MessagesRequest {
    model: String,
    max_tokens: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    system: Option<String>,
    messages: Vec<Turn>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stop_sequences: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tools: Option<Vec<Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    thinking: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<Value>,
    /// Anthropic's own parameters a client sent (`top_k`).
    #[serde(flatten)]
    passed: Map<String, Value>,
}

#[derive(Serialize)]
struct Turn {
    role: &'static str,
    content: Vec<Value>,
}

/// OpenAI parameters with no Anthropic equivalent, and the values that make that harmless.
fn harmless(name: &str, value: &Value) -> Option<bool> {
    let is_default = match name {
        "n" => value.as_u64() == Some(1),
        "logprobs" => value == &Value::Bool(false),
        "presence_penalty" | "frequency_penalty" => value.as_f64() == Some(0.0),
        "logit_bias" => value.as_object().is_some_and(Map::is_empty),
        "response_format" => value["type"] == "text",
        "modalities" => value == &json!(["text"]),
        // Hints for OpenAI's own platform: nothing to do elsewhere.
        "store" | "metadata" | "service_tier" | "stream_options" | "safety_identifier"
        | "prompt_cache_key" => true,
        "top_logprobs" | "seed" | "audio" | "prediction" | "web_search_options" | "functions"
        | "function_call" | "verbosity" => false,
        _ => return None,
    };
    Some(is_default || value.is_null())
}

/// Checks the parameters without a typed field: Anthropic's own (`top_k`) are passed, OpenAI
/// hints are dropped (and noted), and anything it cannot express is refused.
fn check_parameters(
    extra: &Map<String, Value>,
    dropped: &mut Vec<String>,
) -> Result<Map<String, Value>, Untranslatable> {
    let mut passed = Map::new();
    for (name, value) in extra {
        match (name.as_str(), harmless(name, value)) {
            ("top_k", _) => {
                passed.insert(name.clone(), value.clone());
            }
            (_, Some(true)) => {
                if !value.is_null() && name != "stream_options" {
                    dropped.push(name.clone());
                }
            }
            (_, Some(false)) => {
                return Err(Untranslatable::new(
                    name.clone(),
                    format!(
                        "'{name}' with this value cannot be sent to {API}: its Messages API has no equivalent."
                    ),
                ));
            }
            (_, None) => {
                return Err(Untranslatable::new(
                    name.clone(),
                    format!(
                        "Unrecognized request argument supplied: '{name}' (it cannot be sent to {API})."
                    ),
                ));
            }
        }
    }
    Ok(passed)
}

/// The system prompt and the turns. Consecutive messages of one role become one turn, so tool
/// results from several `tool` messages land together, first, in the user turn after the calls.
fn conversation(
    messages: Vec<Message>,
    dropped: &mut Vec<String>,
) -> Result<(Option<String>, Vec<Turn>), Untranslatable> {
    let mut system: Vec<String> = Vec::new();
    let mut turns: Vec<Turn> = Vec::new();
    for (i, message) in messages.into_iter().enumerate() {
        for (key, value) in &message.extra {
            let empty = value.is_null() || value.as_array().is_some_and(Vec::is_empty);
            if !empty {
                dropped.push(format!("messages[{i}].{key}"));
            }
        }
        let (role, blocks) = match message.role {
            Role::System | Role::Developer => {
                let text = message
                    .content
                    .as_ref()
                    .and_then(Content::text)
                    .ok_or_else(|| {
                        Untranslatable::new(
                            format!("messages[{i}].content"),
                            format!("A system message must be text to be sent to {API}."),
                        )
                    })?;
                system.push(text);
                continue;
            }
            Role::User => ("user", user_blocks(i, message.content)?),
            Role::Assistant => ("assistant", assistant_blocks(i, message)?),
            Role::Tool => ("user", vec![tool_result(i, message)?]),
            Role::Function => {
                return Err(Untranslatable::new(
                    format!("messages[{i}].role"),
                    format!("The deprecated 'function' role cannot be sent to {API}; use tools."),
                ));
            }
        };
        match turns.last_mut() {
            Some(last) if last.role == role => last.content.extend(blocks),
            _ => turns.push(Turn {
                role,
                content: blocks,
            }),
        }
    }
    let system = (!system.is_empty()).then(|| system.join("\n\n"));
    Ok((system, turns))
}

fn user_blocks(i: usize, content: Option<Content>) -> Result<Vec<Value>, Untranslatable> {
    match content {
        None => Ok(Vec::new()),
        Some(Content::Text(text)) => Ok(text_block(text).into_iter().collect()),
        Some(Content::Parts(parts)) => {
            let mut blocks = Vec::with_capacity(parts.len());
            for (j, part) in parts.into_iter().enumerate() {
                match part {
                    Part::Text { text } => blocks.extend(text_block(text)),
                    Part::ImageUrl { image_url } => blocks.push(image(i, j, &image_url.url)?),
                    Part::Other(other) => return Err(unsupported_part(i, j, &other)),
                }
            }
            Ok(blocks)
        }
    }
}

/// Anthropic refuses empty text blocks; an empty text says nothing, so it goes.
fn text_block(text: String) -> Option<Value> {
    (!text.is_empty()).then(|| json!({"type": "text", "text": text}))
}

fn image(i: usize, j: usize, url: &str) -> Result<Value, Untranslatable> {
    if let Some(data_url) = url.strip_prefix("data:") {
        if let Some((media_type, data)) = data_url.split_once(";base64,") {
            return Ok(
                json!({"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}),
            );
        }
    } else if url.starts_with("https://") || url.starts_with("http://") {
        return Ok(json!({"type": "image", "source": {"type": "url", "url": url}}));
    }
    Err(Untranslatable::new(
        format!("messages[{i}].content[{j}].image_url.url"),
        format!("An image must be an http(s) URL or a base64 data URL to be sent to {API}."),
    ))
}

fn unsupported_part(i: usize, j: usize, part: &Value) -> Untranslatable {
    let kind = part["type"].as_str().unwrap_or("unknown");
    Untranslatable::new(
        format!("messages[{i}].content[{j}].type"),
        format!("Content of type '{kind}' cannot be sent to {API}."),
    )
}

fn assistant_blocks(i: usize, message: Message) -> Result<Vec<Value>, Untranslatable> {
    let mut blocks = match message.content {
        None => Vec::new(),
        Some(content) => {
            let text = content.text().ok_or_else(|| {
                Untranslatable::new(
                    format!("messages[{i}].content"),
                    format!("An assistant message must be text to be sent to {API}."),
                )
            })?;
            text_block(text).into_iter().collect()
        }
    };
    for (k, call) in message.tool_calls.into_iter().flatten().enumerate() {
        blocks.push(tool_use(i, k, call)?);
    }
    Ok(blocks)
}

fn tool_use(i: usize, k: usize, call: ToolCall) -> Result<Value, Untranslatable> {
    let arguments = call.function.arguments.trim();
    let input: Value = if arguments.is_empty() {
        json!({})
    } else {
        serde_json::from_str(arguments).map_err(|_| arguments_error(i, k))?
    };
    if !input.is_object() {
        return Err(arguments_error(i, k));
    }
    Ok(json!({"type": "tool_use", "id": call.id, "name": call.function.name, "input": input}))
}

fn arguments_error(i: usize, k: usize) -> Untranslatable {
    Untranslatable::new(
        format!("messages[{i}].tool_calls[{k}].function.arguments"),
        format!("Tool call arguments must be a JSON object to be sent to {API}."),
    )
}

fn tool_result(i: usize, message: Message) -> Result<Value, Untranslatable> {
    let id = message.tool_call_id.ok_or_else(|| {
        Untranslatable::new(
            format!("messages[{i}].tool_call_id"),
            "A tool message needs the tool_call_id of the call it answers.",
        )
    })?;
    let content = match message.content {
        None => String::new(),
        Some(content) => content.text().ok_or_else(|| {
            Untranslatable::new(
                format!("messages[{i}].content"),
                format!("A tool result must be text to be sent to {API}."),
            )
        })?,
    };
    Ok(json!({"type": "tool_result", "tool_use_id": id, "content": content}))
}

fn translate_tools(
    tools: Vec<Tool>,
    dropped: &mut Vec<String>,
) -> Result<Vec<Value>, Untranslatable> {
    tools
        .into_iter()
        .enumerate()
        .map(|(i, tool)| {
            if tool.extra.get("type").is_some_and(|t| t != "function") {
                return Err(Untranslatable::new(
                    format!("tools[{i}].type"),
                    format!("Only function tools can be sent to {API}."),
                ));
            }
            let function = tool.function;
            if function.extra.contains_key("strict") {
                dropped.push(format!("tools[{i}].function.strict"));
            }
            let schema = function
                .parameters
                .unwrap_or_else(|| json!({"type": "object", "properties": {}}));
            let mut out = json!({"name": function.name, "input_schema": schema});
            if let Some(description) = function.description {
                out["description"] = Value::String(description);
            }
            Ok(out)
        })
        .collect()
}

fn translate_tool_choice(choice: ToolChoice) -> Result<Value, Untranslatable> {
    match choice {
        ToolChoice::Mode(mode) => match mode.as_str() {
            "none" => Ok(json!({"type": "none"})),
            "auto" => Ok(json!({"type": "auto"})),
            "required" => Ok(json!({"type": "any"})),
            other => Err(Untranslatable::new(
                "tool_choice",
                format!("Invalid value for 'tool_choice': '{other}'."),
            )),
        },
        ToolChoice::Named { function } => Ok(json!({"type": "tool", "name": function.name})),
    }
}

/// `max_tokens` and the thinking block for `reasoning_effort`. The budget must stay under
/// `max_tokens`: without one from the client, the budget is added to the default.
fn thinking(
    effort: Option<&str>,
    asked: Option<u64>,
) -> Result<(u64, Option<Value>), Untranslatable> {
    let Some(effort) = effort.filter(|e| !matches!(*e, "none" | "minimal")) else {
        return Ok((asked.unwrap_or(DEFAULT_MAX_TOKENS), None));
    };
    let Some((_, budget)) = THINKING_BUDGETS.iter().find(|(name, _)| *name == effort) else {
        return Err(Untranslatable::new(
            "reasoning_effort",
            format!("Invalid value for 'reasoning_effort': '{effort}'."),
        ));
    };
    let (max_tokens, budget) = match asked {
        None => (DEFAULT_MAX_TOKENS + budget, *budget),
        Some(max) if max > *budget => (max, *budget),
        Some(max) if max > 1024 => (max, max - 1),
        Some(_) => {
            return Err(Untranslatable::new(
                "max_completion_tokens",
                format!(
                    "reasoning_effort needs more than 1024 max tokens on {API} (its smallest thinking budget)."
                ),
            ));
        }
    };
    Ok((
        max_tokens,
        Some(json!({"type": "enabled", "budget_tokens": budget})),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn translate(request: Value) -> Result<(Value, Vec<String>), Untranslatable> {
        let chat: ChatRequest = serde_json::from_value(request).unwrap();
        let translated = super::request(chat)?;
        Ok((
            serde_json::from_slice(&translated.body).unwrap(),
            translated.dropped,
        ))
    }

    #[test]
    fn system_and_developer_messages_become_the_system_prompt() {
        let (out, _) = translate(json!({"model": "claude", "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "developer", "content": [{"type": "text", "text": "Use metric units."}]},
            {"role": "user", "content": "Hi"}]}))
        .unwrap();
        assert_eq!(out["system"], "Be brief.\n\nUse metric units.");
        assert_eq!(
            out["messages"],
            json!([{"role": "user", "content": [{"type": "text", "text": "Hi"}]}])
        );
        assert_eq!(out["max_tokens"], DEFAULT_MAX_TOKENS);
    }

    #[test]
    fn tool_calls_and_results_become_tool_use_and_one_user_turn_of_results() {
        let (out, _) = translate(json!({"model": "claude", "messages": [
            {"role": "user", "content": "Weather in Paris and Rome?"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}},
                {"id": "call_2", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Rome\"}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "15C"},
            {"role": "tool", "tool_call_id": "call_2", "content": "20C"},
            {"role": "user", "content": "Thanks"}],
            "tools": [{"type": "function", "function": {"name": "weather", "description": "Weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],
            "tool_choice": {"type": "function", "function": {"name": "weather"}}}))
        .unwrap();
        let messages = out["messages"].as_array().unwrap();
        assert_eq!(messages.len(), 3);
        assert_eq!(
            messages[1]["content"][1],
            json!({"type": "tool_use", "id": "call_2", "name": "weather", "input": {"city": "Rome"}})
        );
        assert_eq!(messages[2]["role"], "user");
        assert_eq!(
            messages[2]["content"][0],
            json!({"type": "tool_result", "tool_use_id": "call_1", "content": "15C"})
        );
        assert_eq!(messages[2]["content"][1]["tool_use_id"], "call_2");
        assert_eq!(
            messages[2]["content"][2],
            json!({"type": "text", "text": "Thanks"})
        );
        assert_eq!(
            out["tools"][0]["input_schema"]["properties"]["city"]["type"],
            "string"
        );
        assert_eq!(
            out["tool_choice"],
            json!({"type": "tool", "name": "weather"})
        );
    }

    #[test]
    fn tool_choice_modes_and_parallel_calls_map() {
        let tools = json!([{"type": "function", "function": {"name": "f"}}]);
        for (choice, expected) in [("none", "none"), ("auto", "auto"), ("required", "any")] {
            let (out, _) = translate(json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "tools": tools, "tool_choice": choice})).unwrap();
            assert_eq!(out["tool_choice"]["type"], expected);
        }
        let (out, _) = translate(json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "tools": tools, "parallel_tool_calls": false})).unwrap();
        assert_eq!(
            out["tool_choice"],
            json!({"type": "auto", "disable_parallel_tool_use": true})
        );
        assert_eq!(
            out["tools"][0]["input_schema"],
            json!({"type": "object", "properties": {}})
        );
    }

    #[test]
    fn images_become_base64_or_url_sources() {
        let (out, _) = translate(json!({"model": "m", "messages": [{"role": "user", "content": [
            {"type": "text", "text": "What is this?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg", "detail": "high"}}]}]}))
        .unwrap();
        let content = &out["messages"][0]["content"];
        assert_eq!(
            content[1]["source"],
            json!({"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="})
        );
        assert_eq!(
            content[2]["source"],
            json!({"type": "url", "url": "https://example.com/cat.jpg"})
        );
    }

    #[test]
    fn sampling_stop_tokens_user_and_effort_map() {
        let (out, dropped) = translate(json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
            "stop": "END", "max_completion_tokens": 8000, "temperature": 0.5, "top_p": 0.9, "top_k": 5,
            "user": "u-1", "store": true, "reasoning_effort": "medium", "stream": true,
            "stream_options": {"include_usage": true}}))
        .unwrap();
        assert_eq!(out["stop_sequences"], json!(["END"]));
        assert_eq!(out["max_tokens"], 8000);
        assert_eq!(
            out["thinking"],
            json!({"type": "enabled", "budget_tokens": 4096})
        );
        assert_eq!(out["metadata"], json!({"user_id": "u-1"}));
        assert_eq!(out["top_k"], 5);
        assert_eq!(out["stream"], true);
        assert!(out.get("store").is_none() && out.get("stream_options").is_none());
        assert_eq!(dropped, vec!["store".to_owned()]);
        let (out, _) = translate(json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "reasoning_effort": "high"})).unwrap();
        assert_eq!(out["max_tokens"], DEFAULT_MAX_TOKENS + 16_384);
    }

    #[test]
    fn what_anthropic_cannot_express_is_refused_naming_the_parameter() {
        let user = json!([{"role": "user", "content": "x"}]);
        for (field, value) in [
            ("n", json!(2)),
            ("logprobs", json!(true)),
            ("logit_bias", json!({"50256": -100})),
            ("seed", json!(7)),
            ("response_format", json!({"type": "json_object"})),
            ("presence_penalty", json!(0.5)),
            ("frobnicate", json!(1)),
        ] {
            let mut request = json!({"model": "m", "messages": user});
            request[field] = value;
            let err = translate(request).unwrap_err();
            assert_eq!(err.param.as_deref(), Some(field));
            assert!(
                err.message.contains("TARGET_API=anthropic"),
                "{}",
                err.message
            );
        }
        let err =
            translate(json!({"model": "m", "messages": user, "temperature": 1.5})).unwrap_err();
        assert_eq!(err.param.as_deref(), Some("temperature"));
        let err = translate(json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "x", "format": "wav"}}]}]})).unwrap_err();
        assert_eq!(err.param.as_deref(), Some("messages[0].content[0].type"));
        let err = translate(json!({"model": "m", "messages": [{"role": "assistant", "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "[1]"}}]}]})).unwrap_err();
        assert_eq!(
            err.param.as_deref(),
            Some("messages[0].tool_calls[0].function.arguments")
        );
        // Defaults mean nothing to drop or refuse.
        assert!(translate(json!({"model": "m", "messages": user, "n": 1, "logprobs": false, "presence_penalty": 0, "response_format": {"type": "text"}})).is_ok());
    }
}
