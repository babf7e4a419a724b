//! AWS Bedrock's Converse API: its answers read as OpenAI's.

use serde_json::Value;

use crate::formats::answer::{Stamp, completion, finish_reason, message, tool_call, usage};

/// A Converse answer as a chat completion.
pub fn answer(v: &Value, stamp: &Stamp) -> Value {
    let blocks = v
        .pointer("/output/message/content")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let text: String = blocks.iter().filter_map(|b| b["text"].as_str()).collect();
    let calls: Vec<Value> = blocks
        .iter()
        .filter_map(|b| b.get("toolUse"))
        .enumerate()
        .map(|(k, t)| {
            tool_call(
                t.get("toolUseId"),
                &t["name"],
                &t["input"],
                stamp.call_id(k),
            )
        })
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
        stamp,
    )
}
