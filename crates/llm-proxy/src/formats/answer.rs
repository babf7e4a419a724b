//! The canonical answer every format's reader produces: OpenAI chat completion bodies, built
//! from their parts, and the events of a stream, which the transcoder writes as chunks.

use std::borrow::Cow;

use serde_json::{Value, json};

use crate::ids::{new_id, unix_now};

/// The id and time an answer is given where the target gives none, made once per request at
/// the edge: translation itself reads no clock and draws no random numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamp {
    /// `chatcmpl-…`.
    pub id: String,
    /// Unix seconds.
    pub created: u64,
}

impl Stamp {
    /// A fresh id and the time now: for the request handlers, where I/O belongs.
    pub fn now() -> Self {
        Self {
            id: new_id("chatcmpl-"),
            created: unix_now(),
        }
    }

    /// The answer's own random part, for the ids of what it holds.
    pub fn suffix(&self) -> &str {
        self.id.strip_prefix("chatcmpl-").unwrap_or(&self.id)
    }

    /// The id of the answer's `k`-th tool call where the target gives none.
    pub fn call_id(&self, k: usize) -> String {
        format!("call_{}_{k}", self.suffix())
    }
}

/// A target's error, read from its own envelope: what OpenAI's envelope is then made from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForeignError {
    /// The shape it came in, for the log: `anthropic`, `google`, `vllm`, `openai-like`, `plain`.
    pub format: &'static str,
    pub message: String,
    /// The target's own error type or status name.
    pub kind: Option<String>,
    pub param: Option<String>,
    pub code: Option<String>,
}

impl ForeignError {
    pub fn new(format: &'static str, message: &str, kind: Option<&str>) -> Self {
        Self {
            format,
            message: message.to_owned(),
            kind: kind.map(str::to_owned),
            param: None,
            code: None,
        }
    }
}

/// What one event of a target's stream says, in the canonical terms.
#[derive(Debug, PartialEq)]
pub enum Event<'a> {
    /// The answer's id, when the target names it.
    Id(&'a str),
    Model(&'a str),
    /// The answer has begun: the role chunk goes out if it has not.
    Role,
    Text(&'a str),
    Reasoning(&'a str),
    /// The prompt was refused before any answer (the target's reason).
    Blocked(&'a str),
    /// A new tool call. `key` is how later argument fragments refer to it; `None` when they
    /// never do (the whole call comes at once).
    ToolStart {
        key: Option<u64>,
        id: Option<&'a str>,
        name: &'a str,
        arguments: Cow<'a, str>,
    },
    ToolArguments {
        key: u64,
        fragment: &'a str,
    },
    /// Token counts so far; a count left out keeps its earlier value.
    Usage {
        prompt: Option<u64>,
        completion: Option<u64>,
    },
    /// The target's own stop reason, exact.
    Finish(&'a str),
    /// The stop reason of a format that reports a plain stop after tool calls too: it becomes
    /// `tool_calls` once calls were streamed.
    PlainFinish(&'a str),
    /// The answer is complete.
    End,
    Error(&'a str),
}

/// Maps every finish reason spelling seen in the wild to OpenAI's.
pub fn finish_reason(raw: &str) -> &'static str {
    match raw.to_ascii_lowercase().as_str() {
        "stop" | "eos" | "eos_token" | "end_turn" | "complete" | "stop_sequence" | "end"
        | "finished" | "pause_turn" => "stop",
        "length" | "max_tokens" | "model_length" | "max_output_tokens" => "length",
        "tool_calls" | "tool_use" | "tool_call" | "function_call" | "tool" => "tool_calls",
        "content_filter"
        | "safety"
        | "content_filtered"
        | "refusal"
        | "recitation"
        | "blocklist"
        | "prohibited_content"
        | "spii"
        | "guardrail_intervened"
        | "image_safety" => "content_filter",
        _ => "stop",
    }
}

pub fn usage(prompt: Option<u64>, completion: Option<u64>) -> Value {
    let (p, c) = (prompt.unwrap_or(0), completion.unwrap_or(0));
    json!({"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c})
}

/// Tool calls in OpenAI's own list shape (`{id?, function: {name, arguments}}`), as Cohere v2
/// and Ollama send them, with ids generated and arguments serialized where needed.
pub fn function_calls(list: &Value, stamp: &Stamp) -> Vec<Value> {
    list.as_array()
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(k, c)| {
            tool_call(
                c.get("id"),
                &c["function"]["name"],
                &c["function"]["arguments"],
                stamp.call_id(k),
            )
        })
        .collect()
}

/// A tool call; `fallback_id` when the target gave it none.
pub fn tool_call(
    id: Option<&Value>,
    name: &Value,
    arguments: &Value,
    fallback_id: String,
) -> Value {
    let arguments = match arguments {
        Value::String(s) => s.clone(),
        Value::Null => "{}".to_owned(),
        other => other.to_string(),
    };
    json!({
        "id": id.and_then(Value::as_str).map_or(fallback_id, str::to_owned),
        "type": "function",
        "function": {"name": name.as_str().unwrap_or_default(), "arguments": arguments},
    })
}

pub fn completion(
    id: Option<&Value>,
    model: Option<&Value>,
    message: Value,
    finish: &str,
    usage: Value,
    stamp: &Stamp,
) -> Value {
    json!({
        "id": id.and_then(Value::as_str).filter(|s| !s.is_empty()).unwrap_or(&stamp.id),
        "object": "chat.completion",
        "created": stamp.created,
        "model": model.cloned().unwrap_or(Value::Null),
        "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish}],
        "usage": usage,
    })
}

pub fn message(
    content: Option<String>,
    tool_calls: Vec<Value>,
    reasoning: Option<String>,
) -> Value {
    let mut message = json!({"role": "assistant", "content": content, "refusal": null});
    if !tool_calls.is_empty() {
        message["tool_calls"] = Value::Array(tool_calls);
    }
    if let Some(reasoning) = reasoning.filter(|r| !r.is_empty()) {
        message["reasoning_content"] = json!(reasoning);
    }
    message
}

pub fn join_text_parts(parts: &[Value]) -> String {
    parts
        .iter()
        .filter_map(|p| p.as_str().or_else(|| p.get("text").and_then(Value::as_str)))
        .collect::<Vec<_>>()
        .join("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finish_reasons_are_mapped() {
        for (raw, expected) in [
            ("eos_token", "stop"),
            ("end_turn", "stop"),
            ("STOP", "stop"),
            ("COMPLETE", "stop"),
            ("stop_sequence", "stop"),
            ("MAX_TOKENS", "length"),
            ("max_tokens", "length"),
            ("length", "length"),
            ("tool_use", "tool_calls"),
            ("TOOL_CALL", "tool_calls"),
            ("function_call", "tool_calls"),
            ("SAFETY", "content_filter"),
            ("content_filtered", "content_filter"),
            ("refusal", "content_filter"),
        ] {
            assert_eq!(finish_reason(raw), expected, "{raw}");
        }
    }
}
