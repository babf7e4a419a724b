//! Anthropic as a target: an OpenAI chat request written as a `POST /messages` request, and
//! its answers, stream events and errors read back in the canonical terms.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use serde_json::{Map, Value, json};

use crate::formats::answer::{
    Event, ForeignError, Stamp, completion, finish_reason, message, tool_call, usage,
};
use crate::formats::usage::Usage;

use crate::formats::chat::{
    ChatRequest, Content, Message, Part, Role, Stop, Tool, ToolCall, ToolChoice, Translated,
    Untranslatable, arguments_object, check_function_tool, data_url, drop_or_refuse, function_role,
    note_message_extras, text_of, unsupported_part,
};

/// The Messages API version the translation is written for.
pub const VERSION: &str = "2023-06-01";
/// Where chat requests go, after the endpoint's `/v1`.
pub const MESSAGES_PATH: &str = "/messages";
/// `max_tokens` when the client sets none: Anthropic requires one, OpenAI does not.
pub const DEFAULT_MAX_TOKENS: u64 = 4096;
/// Thinking budgets for OpenAI's `reasoning_effort`; Anthropic's minimum is 1,024.
const THINKING_BUDGETS: [(&str, u64); 3] = [("low", 1024), ("medium", 4096), ("high", 16_384)];
const API: &str = "an Anthropic target (TARGET_API=anthropic)";

/// `chat` as a Messages API request body, or the parameter it cannot express.
pub fn request(chat: ChatRequest) -> Result<Translated, Untranslatable> {
    let mut dropped = Vec::new();
    let mut extra = chat.extra;
    // Anthropic's own sampling parameter, which some clients send.
    let passed: Map<String, Value> = extra.remove_entry("top_k").into_iter().collect();
    drop_or_refuse(&extra, API, &mut dropped)?;
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
    let (max_tokens, mut thinking) = thinking(chat.reasoning_effort.as_deref(), asked)?;
    if thinking.is_some() && in_tool_loop(&messages) {
        // Anthropic wants the tool loop's assistant turn to start with its signed thinking,
        // which OpenAI clients never keep: the loop goes on without thinking.
        thinking = None;
        dropped.push("reasoning_effort (inside a tool loop)".to_owned());
    }
    if thinking.is_some() {
        check_thinking_compatible(chat.temperature, chat.top_p, tool_choice.as_ref())?;
    }
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
        path: MESSAGES_PATH.to_owned(),
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

/// Whether the conversation is inside a tool loop: its last assistant turn called tools.
fn in_tool_loop(turns: &[Turn]) -> bool {
    turns
        .iter()
        .rev()
        .find(|turn| turn.role == "assistant")
        .is_some_and(|turn| turn.content.iter().any(|block| block["type"] == "tool_use"))
}

/// What Anthropic refuses beside thinking: a temperature other than 1, a `top_p` under 0.95,
/// and a forced tool.
fn check_thinking_compatible(
    temperature: Option<f64>,
    top_p: Option<f64>,
    tool_choice: Option<&Value>,
) -> Result<(), Untranslatable> {
    let refuse = |param: &str, what: &str| {
        Err(Untranslatable::new(
            param,
            format!(
                "{what} cannot be combined with reasoning_effort on {API}: its thinking allows no other."
            ),
        ))
    };
    if temperature.is_some_and(|t| t != 1.0) {
        return refuse("temperature", "A temperature other than 1");
    }
    if top_p.is_some_and(|p| p < 0.95) {
        return refuse("top_p", "A top_p under 0.95");
    }
    if tool_choice.is_some_and(|c| c["type"] == "any" || c["type"] == "tool") {
        return refuse("tool_choice", "A forced tool choice");
    }
    Ok(())
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
        note_message_extras(i, &message, dropped);
        let (role, blocks) = match message.role {
            Role::System | Role::Developer => {
                system.push(text_of(
                    i,
                    message.content.as_ref(),
                    "A system message",
                    API,
                )?);
                continue;
            }
            Role::User => ("user", user_blocks(i, message.content)?),
            Role::Assistant => ("assistant", assistant_blocks(i, message)?),
            Role::Tool => ("user", vec![tool_result(i, message)?]),
            Role::Function => return Err(function_role(i, API)),
        };
        match turns.last_mut() {
            // A message of nothing but whitespace is no turn at all.
            _ if blocks.is_empty() => {}
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
                    Part::Other(other) => return Err(unsupported_part(i, j, &other, API)),
                }
            }
            Ok(blocks)
        }
    }
}

/// Anthropic refuses text blocks of nothing but whitespace, which say nothing: they go.
fn text_block(text: String) -> Option<Value> {
    (!text.trim().is_empty()).then(|| json!({"type": "text", "text": text}))
}

fn image(i: usize, j: usize, url: &str) -> Result<Value, Untranslatable> {
    if let Some((media_type, data)) = data_url(url) {
        return Ok(
            json!({"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}),
        );
    } else if url.starts_with("https://") || url.starts_with("http://") {
        return Ok(json!({"type": "image", "source": {"type": "url", "url": url}}));
    }
    Err(Untranslatable::new(
        format!("messages[{i}].content[{j}].image_url.url"),
        format!("An image must be an http(s) URL or a base64 data URL to be sent to {API}."),
    ))
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
    let input = arguments_object(i, k, &call, API)?;
    Ok(json!({"type": "tool_use", "id": call.id, "name": call.function.name, "input": input}))
}

fn tool_result(i: usize, message: Message) -> Result<Value, Untranslatable> {
    let id = message.tool_call_id.ok_or_else(|| {
        Untranslatable::new(
            format!("messages[{i}].tool_call_id"),
            "A tool message needs the tool_call_id of the call it answers.",
        )
    })?;
    let content = text_of(i, message.content.as_ref(), "A tool result", API)?;
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
            check_function_tool(i, &tool, API)?;
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

/// A Messages API answer as a chat completion.
pub fn answer(v: &Value, stamp: &Stamp) -> Value {
    let blocks = v["content"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let text: String = blocks
        .iter()
        .filter(|b| b["type"] == "text")
        .filter_map(|b| b["text"].as_str())
        .collect();
    let thinking: String = blocks
        .iter()
        .filter(|b| b["type"] == "thinking")
        .filter_map(|b| b["thinking"].as_str())
        .collect();
    let calls: Vec<Value> = blocks
        .iter()
        .filter(|b| b["type"] == "tool_use")
        .enumerate()
        .map(|(k, b)| tool_call(b.get("id"), &b["name"], &b["input"], stamp.call_id(k)))
        .collect();
    let u = &v["usage"];
    let mut usage = usage(
        Some(
            u["input_tokens"].as_u64().unwrap_or(0)
                + u["cache_read_input_tokens"].as_u64().unwrap_or(0)
                + u["cache_creation_input_tokens"].as_u64().unwrap_or(0),
        ),
        u["output_tokens"].as_u64(),
    );
    if let Some(cached) = u["cache_read_input_tokens"].as_u64() {
        usage["prompt_tokens_details"] = json!({"cached_tokens": cached});
    }
    let finish = finish_reason(v["stop_reason"].as_str().unwrap_or("end_turn"));
    let content = (!text.is_empty() || calls.is_empty()).then_some(text);
    completion(
        v.get("id"),
        v.get("model"),
        message(content, calls, Some(thinking)),
        finish,
        usage,
        stamp,
    )
}

/// A Messages API answer written as a chat completion without building a tree, with its
/// usage; `None` for an answer this typed reading does not cover, which [`answer`] then reads.
/// A test holds the two to the same completion.
pub fn answer_bytes(body: &[u8], stamp: &Stamp) -> Option<(Vec<u8>, Usage)> {
    let answer: Answer<'_> = serde_json::from_slice(body).ok()?;
    if answer.kind != "message" || answer.id.is_empty() {
        return None;
    }
    let mut text = String::new();
    let mut thinking = String::new();
    let mut calls = Vec::new();
    for block in &answer.content {
        match (block.kind, &block.text, &block.thinking) {
            ("text", Some(piece), _) => text.push_str(piece),
            ("thinking", _, Some(piece)) => thinking.push_str(piece),
            ("tool_use", ..) => calls.push(ChatToolCall {
                id: block.id.as_deref()?,
                kind: "function",
                function: ChatFunction {
                    name: block.name.as_deref().unwrap_or_default(),
                    // As the tree reading does: no input, or null, is no arguments.
                    arguments: block
                        .input
                        .map(RawValue::get)
                        .filter(|input| *input != "null")
                        .unwrap_or("{}"),
                },
            }),
            ("text" | "thinking", ..) => return None,
            _ => {}
        }
    }
    let u = &answer.usage;
    let cached = u.cache_read_input_tokens;
    let prompt = u.input_tokens + cached.unwrap_or(0) + u.cache_creation_input_tokens.unwrap_or(0);
    let usage = Usage {
        prompt_tokens: prompt,
        completion_tokens: u.output_tokens,
        total_tokens: prompt + u.output_tokens,
    };
    let has_calls = !calls.is_empty();
    let completion = ChatCompletion {
        id: &answer.id,
        object: "chat.completion",
        created: stamp.created,
        model: &answer.model,
        choices: [ChatChoice {
            index: 0,
            message: ChatMessage {
                role: "assistant",
                content: (!text.is_empty() || !has_calls).then_some(text),
                refusal: None,
                tool_calls: has_calls.then_some(calls),
                reasoning_content: (!thinking.is_empty()).then_some(thinking),
            },
            logprobs: None,
            finish_reason: finish_reason(answer.stop_reason.unwrap_or("end_turn")),
        }],
        usage: ChatUsage {
            prompt_tokens: usage.prompt_tokens,
            completion_tokens: usage.completion_tokens,
            total_tokens: usage.total_tokens,
            prompt_tokens_details: cached.map(|cached_tokens| CachedTokens { cached_tokens }),
        },
    };
    Some((serde_json::to_vec(&completion).ok()?, usage))
}

#[derive(Deserialize)]
struct Answer<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(borrow)]
    model: Cow<'a, str>,
    #[serde(borrow)]
    content: Vec<AnswerBlock<'a>>,
    stop_reason: Option<&'a str>,
    usage: AnswerUsage,
}

/// A content block, with the fields of every kind read here (others are ignored, as [`answer`]
/// ignores them).
#[derive(Deserialize)]
struct AnswerBlock<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    thinking: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    input: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct AnswerUsage {
    input_tokens: u64,
    output_tokens: u64,
    cache_read_input_tokens: Option<u64>,
    cache_creation_input_tokens: Option<u64>,
}

#[derive(Serialize)]
struct ChatCompletion<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: [ChatChoice<'a>; 1],
    usage: ChatUsage,
}

#[derive(Serialize)]
struct ChatChoice<'a> {
    index: u32,
    message: ChatMessage<'a>,
    logprobs: Option<()>,
    finish_reason: &'static str,
}

#[derive(Serialize)]
struct ChatMessage<'a> {
    role: &'static str,
    content: Option<String>,
    refusal: Option<()>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_calls: Option<Vec<ChatToolCall<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_content: Option<String>,
}

#[derive(Serialize)]
struct ChatToolCall<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    function: ChatFunction<'a>,
}

#[derive(Serialize)]
struct ChatFunction<'a> {
    name: &'a str,
    arguments: &'a str,
}

#[derive(Serialize)]
struct ChatUsage {
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    prompt_tokens_details: Option<CachedTokens>,
}

#[derive(Serialize)]
struct CachedTokens {
    cached_tokens: u64,
}

/// The text of a `text_delta` event, read without building a tree: the bulk of a stream.
pub fn text_delta(data: &str) -> Option<Cow<'_, str>> {
    #[derive(Deserialize)]
    struct DeltaEvent<'a> {
        #[serde(rename = "type")]
        kind: &'a str,
        #[serde(borrow)]
        delta: TextDelta<'a>,
    }
    #[derive(Deserialize)]
    struct TextDelta<'a> {
        #[serde(rename = "type")]
        kind: &'a str,
        #[serde(borrow)]
        text: Cow<'a, str>,
    }
    let event: DeltaEvent<'_> = serde_json::from_str(data).ok()?;
    (event.kind == "content_block_delta" && event.delta.kind == "text_delta")
        .then_some(event.delta.text)
}

/// One event of a Messages API stream, in the canonical terms.
pub fn stream_event<'a>(name: Option<&'a str>, value: &'a Value, emit: &mut impl FnMut(Event<'a>)) {
    let kind = value["type"].as_str().or(name).unwrap_or_default();
    match kind {
        "message_start" => {
            let message = &value["message"];
            if let Some(model) = message["model"].as_str() {
                emit(Event::Model(model));
            }
            let u = &message["usage"];
            let prompt = u["input_tokens"].as_u64().unwrap_or(0)
                + u["cache_read_input_tokens"].as_u64().unwrap_or(0)
                + u["cache_creation_input_tokens"].as_u64().unwrap_or(0);
            emit(Event::Usage {
                prompt: Some(prompt),
                completion: u["output_tokens"].as_u64(),
            });
            emit(Event::Role);
        }
        "content_block_start" => {
            let block = &value["content_block"];
            let index = value["index"].as_u64().unwrap_or(0);
            match block["type"].as_str() {
                Some("tool_use") => {
                    let input = &block["input"];
                    let arguments = if input.as_object().is_some_and(|o| !o.is_empty()) {
                        Cow::Owned(input.to_string())
                    } else {
                        Cow::Borrowed("")
                    };
                    emit(Event::ToolStart {
                        key: Some(index),
                        id: block["id"].as_str(),
                        name: block["name"].as_str().unwrap_or_default(),
                        arguments,
                    });
                }
                Some("text") => emit(Event::Text(block["text"].as_str().unwrap_or_default())),
                _ => {}
            }
        }
        "content_block_delta" => {
            let delta = &value["delta"];
            let index = value["index"].as_u64().unwrap_or(0);
            match delta["type"].as_str() {
                Some("text_delta") => emit(Event::Text(delta["text"].as_str().unwrap_or_default())),
                Some("input_json_delta") => emit(Event::ToolArguments {
                    key: index,
                    fragment: delta["partial_json"].as_str().unwrap_or_default(),
                }),
                Some("thinking_delta") => {
                    emit(Event::Reasoning(
                        delta["thinking"].as_str().unwrap_or_default(),
                    ));
                }
                _ => {}
            }
        }
        "message_delta" => {
            if let Some(output) = value
                .pointer("/usage/output_tokens")
                .and_then(Value::as_u64)
            {
                emit(Event::Usage {
                    prompt: None,
                    completion: Some(output),
                });
            }
            if let Some(reason) = value.pointer("/delta/stop_reason").and_then(Value::as_str) {
                emit(Event::Finish(reason));
            }
        }
        "message_stop" => emit(Event::End),
        "error" => emit(Event::Error(
            value
                .pointer("/error/message")
                .and_then(Value::as_str)
                .unwrap_or("the target reported an error"),
        )),
        _ => {}
    }
}

/// An error in the Messages API's envelope: `{"type":"error","error":{"type","message"}}`.
pub fn error(value: &Value) -> Option<ForeignError> {
    if value.get("type").and_then(Value::as_str) != Some("error") {
        return None;
    }
    let e = &value["error"];
    Some(ForeignError::new(
        "anthropic",
        e["message"].as_str()?,
        e["type"].as_str(),
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
    fn thinking_is_left_out_inside_a_tool_loop_and_refuses_what_anthropic_refuses_beside_it() {
        let (out, dropped) = translate(json!({"model": "claude", "reasoning_effort": "low", "messages": [
            {"role": "user", "content": "Weather?"},
            {"role": "assistant", "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "15C"}]}))
        .unwrap();
        assert!(out.get("thinking").is_none());
        assert_eq!(
            dropped,
            vec!["reasoning_effort (inside a tool loop)".to_owned()]
        );
        let user = json!([{"role": "user", "content": "x"}]);
        for (field, value) in [
            ("temperature", json!(0.5)),
            ("top_p", json!(0.5)),
            ("tool_choice", json!("required")),
        ] {
            let mut request = json!({"model": "m", "messages": user, "reasoning_effort": "low",
                "tools": [{"type": "function", "function": {"name": "f"}}]});
            request[field] = value;
            assert_eq!(
                translate(request).unwrap_err().param.as_deref(),
                Some(field)
            );
        }
        let (out, _) = translate(
            json!({"model": "m", "messages": user, "reasoning_effort": "low", "temperature": 1.0}),
        )
        .unwrap();
        assert_eq!(out["thinking"]["type"], "enabled");
    }

    #[test]
    fn whitespace_text_and_messages_of_nothing_else_are_left_out() {
        let (out, _) = translate(json!({"model": "claude", "messages": [
            {"role": "user", "content": [{"type": "text", "text": "Hi"}, {"type": "text", "text": " \n"}]},
            {"role": "assistant", "content": "  "},
            {"role": "user", "content": "Again"}]}))
        .unwrap();
        assert_eq!(
            out["messages"],
            json!([{"role": "user", "content": [{"type": "text", "text": "Hi"}, {"type": "text", "text": "Again"}]}])
        );
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
            "stop": "END", "max_completion_tokens": 8000, "temperature": 1.0, "top_p": 0.95, "top_k": 5,
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
