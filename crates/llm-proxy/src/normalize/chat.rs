//! Chat completion bodies: OpenAI-like ones repaired, foreign ones translated.

use serde_json::{Map, Value, json};

use super::{Changes, NormalizeError, finish_reason, has_text, shape_of};
use crate::formats::chat_stream::Assembled;
use crate::ids::{new_id, unix_now};

/// Brings `value` to a valid `CreateChatCompletionResponse`, recording what it changed.
pub fn normalize(value: &mut Value, model: &str) -> Result<Changes, NormalizeError> {
    let format = detect(value);
    let mut changes = Changes::new(format);
    match format {
        "openai" => {}
        "anthropic" => *value = from_anthropic(value),
        "gemini" => *value = from_gemini(value),
        "cohere-v2" => *value = from_cohere_v2(value),
        "cohere-v1" => *value = from_cohere_v1(value),
        "tgi" => *value = from_tgi(value),
        "ollama" => *value = from_ollama(value),
        "bedrock" => *value = from_bedrock(value),
        _ => return Err(NormalizeError::Unrecognized(shape_of(value))),
    }
    if format != "openai" {
        changes.note(format!("translated from {format}"));
    }
    repair(value, model, &mut changes);
    Ok(changes)
}

fn detect(value: &Value) -> &'static str {
    let has = |key: &str| value.get(key).is_some();
    if value.is_array() && value.get(0).and_then(|v| v.get("generated_text")).is_some() {
        return "tgi";
    }
    if has("choices") {
        "openai"
    } else if value.get("type").and_then(Value::as_str) == Some("message") && has("content") {
        "anthropic"
    } else if has("candidates") || has("promptFeedback") {
        "gemini"
    } else if value.pointer("/output/message").is_some() {
        "bedrock"
    } else if has("done") && (has("message") || has("response")) {
        "ollama"
    } else if value
        .pointer("/message/content")
        .is_some_and(Value::is_array)
        && has("finish_reason")
    {
        "cohere-v2"
    } else if has("generation_id") || (has("text") && has("meta")) {
        "cohere-v1"
    } else if has("generated_text") {
        "tgi"
    } else {
        "unknown"
    }
}

/// Fills and fixes an OpenAI-shaped body in place. Everything it does is noted; a body that
/// needs nothing comes out unchanged with no notes.
fn repair(value: &mut Value, model: &str, changes: &mut Changes) {
    let Some(body) = value.as_object_mut() else {
        return;
    };
    if !has_text(body.get("id")) {
        body.insert("id".into(), json!(new_id("chatcmpl-")));
        changes.note("filled id");
    }
    if body.get("object").and_then(Value::as_str) != Some("chat.completion") {
        body.insert("object".into(), json!("chat.completion"));
        changes.note("set object");
    }
    if !body.get("created").is_some_and(Value::is_u64) {
        let created = body
            .get("created")
            .and_then(Value::as_f64)
            .map_or_else(unix_now, |f| f as u64);
        body.insert("created".into(), json!(created));
        changes.note("filled created");
    }
    if !body.get("model").is_some_and(Value::is_string) {
        body.insert("model".into(), json!(model));
        changes.note("filled model");
    }
    if body
        .get("system_fingerprint")
        .is_some_and(|v| !v.is_string() && !v.is_null())
    {
        body.remove("system_fingerprint");
        changes.note("dropped an invalid system_fingerprint");
    }
    if !body.get("choices").is_some_and(Value::is_array) {
        body.insert("choices".into(), json!([]));
        changes.note("filled choices");
    }
    if let Some(Value::Array(choices)) = body.get_mut("choices") {
        for (i, choice) in choices.iter_mut().enumerate() {
            repair_choice(choice, i, changes);
        }
    }
    repair_usage(body, changes);
}

fn repair_choice(choice: &mut Value, index: usize, changes: &mut Changes) {
    if !choice.is_object() {
        *choice = json!({});
        changes.note("replaced a choice that was not an object");
    }
    let Some(choice) = choice.as_object_mut() else {
        return;
    };
    if !choice.get("index").is_some_and(Value::is_u64) {
        choice.insert("index".into(), json!(index));
        changes.note("filled choices[].index");
    }
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
        repair_message(message, changes);
    }
    if !choice.contains_key("logprobs") {
        choice.insert("logprobs".into(), Value::Null);
        changes.note("filled logprobs");
    }
    let mapped = match choice.get("finish_reason") {
        Some(Value::String(raw)) => {
            let mapped = super::finish_reason(raw);
            (mapped != raw).then(|| {
                changes.note(format!("mapped finish_reason {raw} to {mapped}"));
                mapped
            })
        }
        _ => {
            changes.note("filled finish_reason");
            Some(if has_tool_calls { "tool_calls" } else { "stop" })
        }
    };
    if let Some(mapped) = mapped {
        choice.insert("finish_reason".into(), json!(mapped));
    }
}

fn repair_message(message: &mut Map<String, Value>, changes: &mut Changes) {
    if message.get("role").and_then(Value::as_str) != Some("assistant") {
        message.insert("role".into(), json!("assistant"));
        changes.note("set message.role");
    }
    match message.get("content") {
        Some(Value::String(_) | Value::Null) => {}
        Some(Value::Array(parts)) => {
            let text = join_text_parts(parts);
            message.insert("content".into(), json!(text));
            changes.note("joined content parts into a string");
        }
        None => {
            message.insert("content".into(), Value::Null);
            changes.note("filled message.content");
        }
        Some(other) => {
            let text = other.to_string();
            message.insert("content".into(), json!(text));
            changes.note("turned message.content into a string");
        }
    }
    if !message.contains_key("refusal") {
        message.insert("refusal".into(), Value::Null);
        changes.note("filled message.refusal");
    }
    // vLLM and llama.cpp send nulls where OpenAI omits the field or sends a list.
    for key in ["annotations", "function_call", "tool_calls"] {
        if message.get(key).is_some_and(Value::is_null) {
            message.remove(key);
            changes.note(format!("removed message.{key}: null"));
        }
    }
    if message
        .get("tool_calls")
        .is_some_and(|t| t.as_array().is_some_and(Vec::is_empty))
    {
        message.remove("tool_calls");
        changes.note("removed an empty tool_calls list");
    }
    if let Some(Value::Array(calls)) = message.get_mut("tool_calls") {
        for call in calls.iter_mut() {
            repair_tool_call(call, changes);
        }
    }
    if let Some(reasoning) = message.get("reasoning").filter(|r| r.is_string()).cloned()
        && !message.contains_key("reasoning_content")
    {
        message.insert("reasoning_content".into(), reasoning);
        changes.note("copied reasoning to reasoning_content");
    }
}

fn repair_tool_call(call: &mut Value, changes: &mut Changes) {
    let Some(call) = call.as_object_mut() else {
        return;
    };
    if !has_text(call.get("id")) {
        call.insert("id".into(), json!(new_id("call_")));
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
    match function.get("arguments") {
        Some(Value::String(_)) => {}
        Some(other) => {
            let text = other.to_string();
            function["arguments"] = json!(text);
            changes.note("serialized tool call arguments to a string");
        }
        None => {
            function["arguments"] = json!("{}");
            changes.note("filled tool call arguments");
        }
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

fn join_text_parts(parts: &[Value]) -> String {
    parts
        .iter()
        .filter_map(|p| p.as_str().or_else(|| p.get("text").and_then(Value::as_str)))
        .collect::<Vec<_>>()
        .join("")
}

fn usage(prompt: Option<u64>, completion: Option<u64>) -> Value {
    let (p, c) = (prompt.unwrap_or(0), completion.unwrap_or(0));
    json!({"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c})
}

/// Tool calls in OpenAI's own list shape (`{id?, function: {name, arguments}}`), as Cohere v2
/// and Ollama send them, with ids generated and arguments serialized where needed.
fn function_calls(list: &Value) -> Vec<Value> {
    list.as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            tool_call(
                c.get("id"),
                &c["function"]["name"],
                &c["function"]["arguments"],
            )
        })
        .collect()
}

fn tool_call(id: Option<&Value>, name: &Value, arguments: &Value) -> Value {
    let arguments = match arguments {
        Value::String(s) => s.clone(),
        Value::Null => "{}".to_owned(),
        other => other.to_string(),
    };
    json!({
        "id": id.and_then(Value::as_str).map_or_else(|| new_id("call_"), str::to_owned),
        "type": "function",
        "function": {"name": name.as_str().unwrap_or_default(), "arguments": arguments},
    })
}

fn completion(
    id: Option<&Value>,
    model: Option<&Value>,
    message: Value,
    finish: &str,
    usage: Value,
) -> Value {
    json!({
        "id": id.and_then(Value::as_str).filter(|s| !s.is_empty()).map_or_else(|| new_id("chatcmpl-"), str::to_owned),
        "object": "chat.completion",
        "created": unix_now(),
        "model": model.cloned().unwrap_or(Value::Null),
        "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish}],
        "usage": usage,
    })
}

fn message(content: Option<String>, tool_calls: Vec<Value>, reasoning: Option<String>) -> Value {
    let mut message = json!({"role": "assistant", "content": content, "refusal": null});
    if !tool_calls.is_empty() {
        message["tool_calls"] = Value::Array(tool_calls);
    }
    if let Some(reasoning) = reasoning.filter(|r| !r.is_empty()) {
        message["reasoning_content"] = json!(reasoning);
    }
    message
}

fn from_anthropic(v: &Value) -> Value {
    let blocks = v["content"].as_array().cloned().unwrap_or_default();
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
        .map(|b| tool_call(b.get("id"), &b["name"], &b["input"]))
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
    )
}

fn from_gemini(v: &Value) -> Value {
    let u = &v["usageMetadata"];
    let usage = usage(
        u["promptTokenCount"].as_u64(),
        u["candidatesTokenCount"].as_u64(),
    );
    let id = v.get("responseId");
    let model = v.get("modelVersion");
    let Some(candidate) = v["candidates"].get(0) else {
        let reason = v
            .pointer("/promptFeedback/blockReason")
            .and_then(Value::as_str)
            .unwrap_or("unknown");
        let mut answer = completion(
            id,
            model,
            message(None, vec![], None),
            "content_filter",
            usage,
        );
        answer["choices"][0]["message"]["refusal"] =
            json!(format!("The prompt was blocked ({reason})."));
        return answer;
    };
    let parts = candidate
        .pointer("/content/parts")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let text: String = parts
        .iter()
        .filter(|p| p["thought"] != true)
        .filter_map(|p| p["text"].as_str())
        .collect();
    let thoughts: String = parts
        .iter()
        .filter(|p| p["thought"] == true)
        .filter_map(|p| p["text"].as_str())
        .collect();
    let calls: Vec<Value> = parts
        .iter()
        .filter_map(|p| p.get("functionCall"))
        .map(|f| tool_call(f.get("id"), &f["name"], &f["args"]))
        .collect();
    let finish = if calls.is_empty() {
        finish_reason(candidate["finishReason"].as_str().unwrap_or("STOP"))
    } else {
        "tool_calls"
    };
    let content = (!text.is_empty() || calls.is_empty()).then_some(text);
    completion(
        id,
        model,
        message(content, calls, Some(thoughts)),
        finish,
        usage,
    )
}

fn from_cohere_v2(v: &Value) -> Value {
    let m = &v["message"];
    let text = join_text_parts(
        m["content"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default(),
    );
    let calls: Vec<Value> = function_calls(&m["tool_calls"]);
    let tokens = v
        .pointer("/usage/tokens")
        .or_else(|| v.pointer("/usage/billed_units"))
        .cloned()
        .unwrap_or_default();
    let usage = usage(
        tokens["input_tokens"].as_u64(),
        tokens["output_tokens"].as_u64(),
    );
    let content = (!text.is_empty() || calls.is_empty()).then_some(text);
    completion(
        v.get("id"),
        None,
        message(content, calls, None),
        finish_reason(v["finish_reason"].as_str().unwrap_or("COMPLETE")),
        usage,
    )
}

fn from_cohere_v1(v: &Value) -> Value {
    let tokens = v
        .pointer("/meta/tokens")
        .or_else(|| v.pointer("/meta/billed_units"))
        .cloned()
        .unwrap_or_default();
    let usage = usage(
        tokens["input_tokens"].as_u64(),
        tokens["output_tokens"].as_u64(),
    );
    let calls: Vec<Value> = v["tool_calls"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| tool_call(None, &c["name"], &c["parameters"]))
        .collect();
    let text = v["text"].as_str().map(str::to_owned);
    completion(
        v.get("generation_id"),
        None,
        message(text, calls, None),
        finish_reason(v["finish_reason"].as_str().unwrap_or("COMPLETE")),
        usage,
    )
}

fn from_tgi(v: &Value) -> Value {
    let one = if v.is_array() { &v[0] } else { v };
    let details = &one["details"];
    let usage = usage(
        details["prefill"]
            .as_array()
            .map(|p| p.len() as u64)
            .filter(|n| *n > 0),
        details["generated_tokens"].as_u64(),
    );
    let text = one["generated_text"].as_str().map(str::to_owned);
    completion(
        None,
        None,
        message(text, vec![], None),
        finish_reason(details["finish_reason"].as_str().unwrap_or("stop")),
        usage,
    )
}

fn from_ollama(v: &Value) -> Value {
    let usage = usage(v["prompt_eval_count"].as_u64(), v["eval_count"].as_u64());
    let (text, calls, thinking) = match v.get("message") {
        Some(m) => {
            let calls: Vec<Value> = function_calls(&m["tool_calls"]);
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
    )
}

fn from_bedrock(v: &Value) -> Value {
    let blocks = v
        .pointer("/output/message/content")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let text: String = blocks.iter().filter_map(|b| b["text"].as_str()).collect();
    let calls: Vec<Value> = blocks
        .iter()
        .filter_map(|b| b.get("toolUse"))
        .map(|t| tool_call(t.get("toolUseId"), &t["name"], &t["input"]))
        .collect();
    let usage = usage(
        v.pointer("/usage/inputTokens").and_then(Value::as_u64),
        v.pointer("/usage/outputTokens").and_then(Value::as_u64),
    );
    let content = (!text.is_empty() || calls.is_empty()).then_some(text);
    completion(
        None,
        None,
        message(content, calls, None),
        finish_reason(v["stopReason"].as_str().unwrap_or("end_turn")),
        usage,
    )
}

/// One chat completion from an assembled stream: for a client that did not ask to stream from
/// a target that streamed anyway.
pub fn completion_from_stream(stream: Assembled, model: &str) -> Value {
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
        "id": id.unwrap_or_else(|| new_id("chatcmpl-")),
        "object": "chat.completion",
        "created": unix_now(),
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
    repair(&mut answer, model, &mut changes);
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
