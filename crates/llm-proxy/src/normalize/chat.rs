//! Chat completion bodies: OpenAI-like ones repaired, foreign ones translated.

use serde_json::{Map, Value, json};

use super::repair::{self, Part};
use super::{Changes, NormalizeError, RequestContext, has_text, shape_of};
use crate::formats::answer::{Stamp, message};
use crate::formats::chat_stream::Assembled;
use crate::formats::{Format, anthropic, bedrock, cohere, gemini, ollama, tgi};

/// Brings `value` to a valid `CreateChatCompletionResponse`, recording what it changed.
pub fn normalize(value: &mut Value, context: &RequestContext) -> Result<Changes, NormalizeError> {
    let stamp = &context.stamp;
    let format =
        Format::detect(None, value).ok_or_else(|| NormalizeError::Unrecognized(shape_of(value)))?;
    let mut changes = Changes::new(format.name());
    match format {
        Format::OpenAi => {}
        Format::Anthropic => *value = anthropic::answer(value, stamp),
        Format::Gemini => *value = gemini::answer(value, stamp),
        Format::CohereV2 => *value = cohere::answer_v2(value, stamp),
        Format::CohereV1 => *value = cohere::answer_v1(value, stamp),
        Format::Tgi => *value = tgi::answer(value, stamp),
        Format::Ollama => *value = ollama::answer(value, stamp),
        Format::Bedrock => *value = bedrock::answer(value, stamp),
    }
    if format != Format::OpenAi {
        changes.note(format!("translated from {}", format.name()));
    }
    repair(value, &context.model, stamp, &mut changes);
    Ok(changes)
}

/// Fills and fixes an OpenAI-shaped body in place. Everything it does is noted; a body that
/// needs nothing comes out unchanged with no notes.
fn repair(value: &mut Value, model: &str, stamp: &Stamp, changes: &mut Changes) {
    let Some(body) = value.as_object_mut() else {
        return;
    };
    if !has_text(body.get("id")) {
        body.insert("id".into(), json!(stamp.id));
        changes.note("filled id");
    }
    repair::set_object(body, "chat.completion", changes);
    if !body.get("created").is_some_and(Value::is_u64) {
        let created = body
            .get("created")
            .and_then(Value::as_f64)
            .map_or(stamp.created, |f| f as u64);
        body.insert("created".into(), json!(created));
        changes.note("filled created");
    }
    if !body.get("model").is_some_and(Value::is_string) {
        body.insert("model".into(), json!(model));
        changes.note("filled model");
    }
    repair::drop_invalid_fingerprint(body, changes);
    repair::fill_choices(body, changes);
    if let Some(Value::Array(choices)) = body.get_mut("choices") {
        for (i, choice) in choices.iter_mut().enumerate() {
            repair_choice(choice, i, stamp, changes);
        }
    }
    repair_usage(body, changes);
}

fn repair_choice(choice: &mut Value, index: usize, stamp: &Stamp, changes: &mut Changes) {
    if !choice.is_object() {
        *choice = json!({});
        changes.note("replaced a choice that was not an object");
    }
    let Some(choice) = choice.as_object_mut() else {
        return;
    };
    repair::fill_index(choice, index, changes);
    if !choice.get("message").is_some_and(Value::is_object) {
        let text = choice.remove("text").or_else(|| {
            choice
                .remove("delta")
                .and_then(|d| d.get("content").cloned())
        });
        choice.insert(
            "message".into(),
            json!({"role": "assistant", "content": text.unwrap_or(Value::Null)}),
        );
        changes.note("built choices[].message from text");
    }
    let has_tool_calls = choice
        .get("message")
        .and_then(|m| m.get("tool_calls"))
        .is_some_and(|t| t.as_array().is_some_and(|a| !a.is_empty()));
    if let Some(message) = choice.get_mut("message").and_then(Value::as_object_mut) {
        repair_message(message, stamp, changes);
    }
    if !choice.contains_key("logprobs") {
        choice.insert("logprobs".into(), Value::Null);
        changes.note("filled logprobs");
    }
    if !repair::map_finish_reason(choice, changes)
        && !choice.get("finish_reason").is_some_and(Value::is_string)
    {
        let filled = if has_tool_calls { "tool_calls" } else { "stop" };
        choice.insert("finish_reason".into(), json!(filled));
        changes.note("filled finish_reason");
    }
}

fn repair_message(message: &mut Map<String, Value>, stamp: &Stamp, changes: &mut Changes) {
    if message.get("role").and_then(Value::as_str) != Some("assistant") {
        message.insert("role".into(), json!("assistant"));
        changes.note("set message.role");
    }
    if !message.contains_key("content") {
        message.insert("content".into(), Value::Null);
        changes.note("filled message.content");
    }
    repair::content_to_text(message, Part::Message, changes);
    if !message.contains_key("refusal") {
        message.insert("refusal".into(), Value::Null);
        changes.note("filled message.refusal");
    }
    repair::drop_null_fields(message, Part::Message, changes);
    if message
        .get("tool_calls")
        .is_some_and(|t| t.as_array().is_some_and(Vec::is_empty))
    {
        message.remove("tool_calls");
        changes.note("removed an empty tool_calls list");
    }
    if let Some(Value::Array(calls)) = message.get_mut("tool_calls") {
        for (k, call) in calls.iter_mut().enumerate() {
            repair_tool_call(call, stamp.call_id(k), changes);
        }
    }
    repair::copy_reasoning(message, changes);
}

fn repair_tool_call(call: &mut Value, fallback_id: String, changes: &mut Changes) {
    let Some(call) = call.as_object_mut() else {
        return;
    };
    if !has_text(call.get("id")) {
        call.insert("id".into(), json!(fallback_id));
        changes.note("generated a tool call id");
    }
    if call.get("type").and_then(Value::as_str) != Some("function") {
        call.insert("type".into(), json!("function"));
        changes.note("set tool call type");
    }
    let function = call.entry("function").or_insert_with(|| json!({}));
    if !function.is_object() {
        *function = json!({});
    }
    if !function.get("name").is_some_and(Value::is_string) {
        function["name"] = json!("");
        changes.note("filled a tool call name");
    }
    if let Some(function) = function.as_object_mut()
        && !repair::arguments_to_text(function, changes)
        && !function.get("arguments").is_some_and(Value::is_string)
    {
        function.insert("arguments".into(), json!("{}"));
        changes.note("filled tool call arguments");
    }
}

fn repair_usage(body: &mut Map<String, Value>, changes: &mut Changes) {
    match body.get_mut("usage") {
        Some(usage) if !usage.is_null() => super::repair_usage(usage, changes),
        _ => {
            body.insert(
                "usage".into(),
                json!({"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}),
            );
            changes.note("usage unknown: filled zeros");
        }
    }
}

/// One chat completion from an assembled stream: for a client that did not ask to stream from
/// a target that streamed anyway.
pub fn completion_from_stream(stream: Assembled, context: &RequestContext) -> Value {
    let model = context.model.as_str();
    let stamp = &context.stamp;
    let Assembled {
        message: mut streamed,
        id,
        model: stream_model,
        usage_object,
        ..
    } = stream;
    let mut calls: Vec<Value> = match streamed["tool_calls"].take() {
        Value::Array(calls) => calls,
        _ => Vec::new(),
    };
    for call in &mut calls {
        // The first delta of a call carries its id and type; a target may leave them out.
        for (key, default) in [
            ("id", json!("")),
            ("type", json!("function")),
            ("function", json!({"name": "", "arguments": ""})),
        ] {
            if call.get(key).is_none() {
                call[key] = default;
            }
        }
    }
    let has_calls = !calls.is_empty();
    let content = match streamed["content"].take() {
        Value::String(text) if !text.is_empty() || !has_calls => Some(text),
        _ if !has_calls => Some(String::new()),
        _ => None,
    };
    let reasoning = streamed["reasoning_content"].as_str().map(str::to_owned);
    let finish = match streamed["finish_reason"].as_str() {
        Some(reason) => reason.to_owned(),
        None if has_calls => "tool_calls".to_owned(),
        None => "stop".to_owned(),
    };
    let mut answer = json!({
        "id": id.unwrap_or_else(|| stamp.id.clone()),
        "object": "chat.completion",
        "created": stamp.created,
        "model": stream_model.unwrap_or_else(|| model.to_owned()),
        "choices": [{
            "index": 0,
            "message": message(content, calls, reasoning),
            "logprobs": null,
            "finish_reason": finish,
        }],
        "usage": usage_object.unwrap_or_else(|| json!({"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0})),
    });
    let mut changes = Changes::new("openai");
    repair(&mut answer, model, stamp, &mut changes);
    answer
}

/// The chunks of a stream for one chat completion: for a client that asked to stream from a
/// target that answered with one body.
pub fn chunks_from_completion(completion: &Value, include_usage: bool) -> Vec<Value> {
    let base = |choices: Value| {
        json!({
            "id": completion["id"], "object": "chat.completion.chunk", "created": completion["created"],
            "model": completion["model"], "system_fingerprint": completion.get("system_fingerprint").cloned().unwrap_or(Value::Null),
            "choices": choices,
        })
    };
    let message = &completion["choices"][0]["message"];
    let mut chunks = vec![base(
        json!([{"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": null, "finish_reason": null}]),
    )];
    if let Some(reasoning) = message["reasoning_content"].as_str() {
        chunks.push(base(json!([{"index": 0, "delta": {"reasoning_content": reasoning}, "logprobs": null, "finish_reason": null}])));
    }
    if let Some(text) = message["content"].as_str().filter(|t| !t.is_empty()) {
        chunks.push(base(json!([{"index": 0, "delta": {"content": text}, "logprobs": null, "finish_reason": null}])));
    }
    for (index, call) in message["tool_calls"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let mut delta_call = call.clone();
        delta_call["index"] = json!(index);
        chunks.push(base(json!([{"index": 0, "delta": {"tool_calls": [delta_call]}, "logprobs": null, "finish_reason": null}])));
    }
    let finish = completion["choices"][0]["finish_reason"].clone();
    chunks.push(base(
        json!([{"index": 0, "delta": {}, "logprobs": null, "finish_reason": finish}]),
    ));
    if include_usage {
        let mut last = base(json!([]));
        last["usage"] = completion["usage"].clone();
        chunks.push(last);
    }
    chunks
}
