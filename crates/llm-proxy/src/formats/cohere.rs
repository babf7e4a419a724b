//! Cohere's chat API, v1 and v2: its answers and streams read as OpenAI's.

use std::borrow::Cow;

use serde_json::Value;

use crate::formats::answer::{
    Event, Stamp, completion, finish_reason, function_calls, join_text_parts, message, tool_call,
    usage,
};

/// A v2 chat answer as a chat completion.
pub fn answer_v2(v: &Value, stamp: &Stamp) -> Value {
    let m = &v["message"];
    let text = join_text_parts(
        m["content"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default(),
    );
    let calls: Vec<Value> = function_calls(&m["tool_calls"], stamp);
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
        stamp,
    )
}

pub fn answer_v1(v: &Value, stamp: &Stamp) -> Value {
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
        .enumerate()
        .map(|(k, c)| tool_call(None, &c["name"], &c["parameters"], stamp.call_id(k)))
        .collect();
    let text = v["text"].as_str().map(str::to_owned);
    completion(
        v.get("generation_id"),
        None,
        message(text, calls, None),
        finish_reason(v["finish_reason"].as_str().unwrap_or("COMPLETE")),
        usage,
        stamp,
    )
}

/// One event of a v2 chat stream, in the canonical terms.
pub fn stream_event_v2<'a>(value: &'a Value, emit: &mut impl FnMut(Event<'a>)) {
    let delta = &value["delta"];
    match value["type"].as_str().unwrap_or_default() {
        "message-start" => {
            if let Some(id) = value["id"].as_str() {
                emit(Event::Id(id));
            }
            emit(Event::Role);
        }
        "content-delta" => emit(Event::Text(
            delta
                .pointer("/message/content/text")
                .and_then(Value::as_str)
                .unwrap_or_default(),
        )),
        "tool-call-start" => {
            let call = &delta["message"]["tool_calls"];
            emit(Event::ToolStart {
                key: value["index"].as_u64(),
                id: call["id"].as_str(),
                name: call["function"]["name"].as_str().unwrap_or_default(),
                arguments: Cow::Borrowed(
                    call["function"]["arguments"].as_str().unwrap_or_default(),
                ),
            });
        }
        "tool-call-delta" => emit(Event::ToolArguments {
            key: value["index"].as_u64().unwrap_or(0),
            fragment: delta
                .pointer("/message/tool_calls/function/arguments")
                .and_then(Value::as_str)
                .unwrap_or_default(),
        }),
        "message-end" => {
            let tokens = delta
                .pointer("/usage/tokens")
                .or_else(|| delta.pointer("/usage/billed_units"));
            emit(Event::Usage {
                prompt: tokens.and_then(|t| t["input_tokens"].as_u64()),
                completion: tokens.and_then(|t| t["output_tokens"].as_u64()),
            });
            emit(Event::PlainFinish(
                delta["finish_reason"].as_str().unwrap_or("COMPLETE"),
            ));
            emit(Event::End);
        }
        _ => {}
    }
}

/// One event of a v1 chat stream, in the canonical terms.
pub fn stream_event_v1<'a>(value: &'a Value, emit: &mut impl FnMut(Event<'a>)) {
    match value["event_type"].as_str().unwrap_or_default() {
        "text-generation" => emit(Event::Text(value["text"].as_str().unwrap_or_default())),
        "stream-end" => {
            let tokens = value.pointer("/response/meta/tokens");
            emit(Event::Usage {
                prompt: tokens.and_then(|t| t["input_tokens"].as_u64()),
                completion: tokens.and_then(|t| t["output_tokens"].as_u64()),
            });
            emit(Event::Finish(
                value["finish_reason"].as_str().unwrap_or("COMPLETE"),
            ));
            emit(Event::End);
        }
        _ => {}
    }
}
