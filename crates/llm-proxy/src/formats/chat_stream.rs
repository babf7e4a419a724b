//! A chat completion stream put back together: the message its events carry, in one place for
//! the request log (what the client saw) and for a client that did not ask to stream.
//!
//! The log writer does this for every event of every stream, so it is written for the common
//! event first: a callgrind profile of streams with the log on (100 events each) showed building a
//! JSON tree per event costing about 18,000 instructions, more than the proxy spent serving
//! the event. A plain event (text in `choices[0].delta`, no tool calls, usage or error) is read
//! by a typed, borrowing parse instead; any other goes the general way, which decides the same
//! things, and a test holds the two to agreement.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

use super::openai::error_message;
use super::raw::{Obj, as_str, is_null, present};
use super::usage::{Usage, usage_of};

/// A stream put back together: the message the client saw, as one object.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Assembled {
    /// `role`, `content`, `finish_reason`, and `reasoning_content` and `tool_calls` when any.
    pub message: Value,
    /// The first non-empty `id` and `model` of the events.
    pub id: Option<String>,
    pub model: Option<String>,
    pub usage: Option<Usage>,
    /// The usage object as the stream gave it, details included.
    pub usage_object: Option<Value>,
    pub chunks: u32,
    pub error: Option<String>,
    /// Characters of text and reasoning, for estimating tokens when the target gave none.
    pub text_len: usize,
}

impl Assembled {
    /// Passes every text of the message and the error through `redact` (the target's
    /// credential, which must not reach the log even when the target echoes it).
    pub fn redact(&mut self, redact: impl Fn(&str) -> Cow<'_, str>) {
        fn walk(value: &mut Value, redact: &dyn Fn(&str) -> Cow<'_, str>) {
            match value {
                Value::String(text) => {
                    if let Cow::Owned(clean) = redact(text) {
                        *text = clean;
                    }
                }
                Value::Array(items) => items.iter_mut().for_each(|v| walk(v, redact)),
                Value::Object(map) => map.values_mut().for_each(|v| walk(v, redact)),
                _ => {}
            }
        }
        walk(&mut self.message, &redact);
        if let Some(error) = &mut self.error
            && let Cow::Owned(clean) = redact(error)
        {
            *error = clean;
        }
    }
}

/// Rebuilds the message from `chat.completion.chunk` (or completion) events: content, reasoning
/// and tool calls concatenated by index, the finish reason, the usage chunk and any error event.
pub fn assemble_stream(body: &[u8]) -> Assembled {
    assemble(body, true)
}

/// [`assemble_stream`] with every event read the general way: what the fast reading is held to.
#[cfg(test)]
pub fn assemble_stream_generally(body: &[u8]) -> Assembled {
    assemble(body, false)
}

fn assemble(body: &[u8], fast: bool) -> Assembled {
    // Valid UTF-8 nearly always, which the standard validator checks faster than the lossy
    // conversion walks it.
    let text =
        std::str::from_utf8(body).map_or_else(|_| String::from_utf8_lossy(body), Cow::Borrowed);
    let mut parts = Assembler::default();
    for data in text
        .lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .map(str::trim)
    {
        if data == "[DONE]" {
            continue;
        }
        if fast && let Some(plain) = plain_event(data) {
            parts.add_plain(plain);
            continue;
        }
        let Ok(event) = serde_json::from_str::<Value>(data) else {
            continue;
        };
        parts.add(&event);
    }
    parts.into_assembled()
}

/// What the events have said so far. Fed event by event, by [`assemble_stream`] from a
/// stream's bytes, or by the transcoder from what it reads and writes (no second parse).
#[derive(Debug, Default)]
pub struct Assembler {
    chunks: u32,
    id: Option<String>,
    model: Option<String>,
    content: String,
    reasoning: String,
    tool_calls: Vec<Map<String, Value>>,
    finish_reason: Value,
    usage: Option<Usage>,
    usage_object: Option<Value>,
    error: Option<String>,
    /// A Responses API stream's final Response (a target that speaks it, passed through).
    response: Option<Value>,
}

impl Assembler {
    /// A plain text chunk the transcoder passed as it was, from its own typed reading.
    pub fn plain(
        &mut self,
        id: &str,
        model: &str,
        text: Option<&str>,
        finish_reason: Option<&str>,
    ) {
        self.chunks += 1;
        self.name(Some(id), Some(model));
        if let Some(piece) = text {
            self.content.push_str(piece);
        }
        if let Some(reason) = finish_reason {
            self.finish_reason = Value::String(reason.to_owned());
        }
    }

    /// An error event that ends the stream.
    pub fn failed(&mut self, message: &str) {
        self.chunks += 1;
        self.error = Some(message.to_owned());
    }

    fn name(&mut self, id: Option<&str>, model: Option<&str>) {
        let first = |kept: &mut Option<String>, seen: Option<&str>| {
            if kept.is_none()
                && let Some(seen) = seen.filter(|s| !s.is_empty())
            {
                *kept = Some(seen.to_owned());
            }
        };
        first(&mut self.id, id);
        first(&mut self.model, model);
    }

    /// One plain event, read the typed way.
    fn add_plain(&mut self, plain: PlainEvent<'_>) {
        self.chunks += 1;
        self.name(plain.id.as_deref(), plain.model.as_deref());
        if let Some(piece) = plain.text {
            self.content.push_str(&piece);
        }
        if let Some(piece) = plain.reasoning {
            self.reasoning.push_str(&piece);
        }
        if let Some(reason) = plain.finish_reason {
            self.finish_reason = reason;
        }
    }

    /// One event, read the general way.
    pub fn add(&mut self, event: &Value) {
        self.chunks += 1;
        if let Some("response.completed" | "response.incomplete" | "response.failed") =
            event.get("type").and_then(Value::as_str)
        {
            self.response = event.get("response").cloned();
            return;
        }
        self.name(
            event.get("id").and_then(Value::as_str),
            event.get("model").and_then(Value::as_str),
        );
        if let Some(message) = error_message(event) {
            self.error = Some(message);
        }
        if let Some(usage) = usage_of(event) {
            self.usage = Some(usage);
            self.usage_object = event.get("usage").cloned();
        }
        let Some(choice) = event.pointer("/choices/0") else {
            return;
        };
        let delta = choice.get("delta").unwrap_or(choice);
        if let Some(piece) = delta
            .get("content")
            .or_else(|| delta.get("text"))
            .and_then(Value::as_str)
        {
            self.content.push_str(piece);
        }
        if let Some(piece) = delta.get("reasoning_content").and_then(Value::as_str) {
            self.reasoning.push_str(piece);
        }
        for call in delta
            .get("tool_calls")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let index = call.get("index").and_then(Value::as_u64).unwrap_or(0) as usize;
            if self.tool_calls.len() <= index {
                self.tool_calls.resize_with(index + 1, Map::new);
            }
            merge_tool_call(&mut self.tool_calls[index], call);
        }
        if let Some(reason) = choice.get("finish_reason").filter(|r| !r.is_null()) {
            self.finish_reason = reason.clone();
        }
    }

    /// What the stream said, once it is over.
    pub fn into_assembled(self) -> Assembled {
        if let Some(response) = self.response {
            return Assembled {
                id: response["id"].as_str().map(str::to_owned),
                model: response["model"].as_str().map(str::to_owned),
                usage: usage_of(&response),
                usage_object: response.get("usage").filter(|u| u.is_object()).cloned(),
                chunks: self.chunks,
                error: response
                    .pointer("/error/message")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                text_len: 0,
                message: response,
            };
        }
        let text_len = self.content.chars().count() + self.reasoning.chars().count();
        let mut message = json!({
            "role": "assistant",
            "content": self.content,
            "finish_reason": self.finish_reason,
        });
        if !self.reasoning.is_empty() {
            message["reasoning_content"] = json!(self.reasoning);
        }
        if !self.tool_calls.is_empty() {
            message["tool_calls"] =
                Value::Array(self.tool_calls.into_iter().map(Value::Object).collect());
        }
        Assembled {
            message,
            id: self.id,
            model: self.model,
            usage: self.usage,
            usage_object: self.usage_object,
            chunks: self.chunks,
            error: self.error,
            text_len,
        }
    }
}

fn merge_tool_call(into: &mut Map<String, Value>, delta: &Value) {
    for key in ["id", "type"] {
        if let Some(value) = delta.get(key).filter(|v| !v.is_null()) {
            into.insert(key.to_owned(), value.clone());
        }
    }
    let Some(function) = delta.get("function") else {
        return;
    };
    let target = into
        .entry("function")
        .or_insert_with(|| json!({"name": "", "arguments": ""}));
    for key in ["name", "arguments"] {
        if let Some(piece) = function.get(key).and_then(Value::as_str) {
            let existing = target[key].as_str().unwrap_or_default().to_owned();
            target[key] = json!(existing + piece);
        }
    }
}

/// The fields of an event that the general reading looks at, each as its raw JSON when
/// present (`null` included).
#[derive(Deserialize)]
struct Event<'a> {
    #[serde(default, borrow, deserialize_with = "present")]
    id: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    model: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    error: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    usage: Option<&'a RawValue>,
    #[serde(borrow)]
    choices: Vec<Obj<Choice<'a>>>,
}

#[derive(Deserialize)]
struct Choice<'a> {
    #[serde(borrow)]
    delta: Obj<Delta<'a>>,
    #[serde(default, borrow, deserialize_with = "present")]
    finish_reason: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Delta<'a> {
    #[serde(default, borrow, deserialize_with = "present")]
    content: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    text: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    reasoning_content: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    tool_calls: Option<&'a RawValue>,
}

/// What a plain event adds.
#[derive(Default)]
pub struct PlainEvent<'a> {
    pub id: Option<Cow<'a, str>>,
    pub model: Option<Cow<'a, str>>,
    pub text: Option<Cow<'a, str>>,
    pub reasoning: Option<Cow<'a, str>>,
    pub finish_reason: Option<Value>,
}

/// A chat stream written in a client's own API, fed chunk by chunk by the relay that reads
/// the target's (or the placeholder's) chat stream.
pub trait ChatStreamWriter {
    /// Whether the client's stream has ended: nothing more is written.
    fn ended(&self) -> bool;
    /// The model the target names; kept only until the stream has begun.
    fn name_model(&mut self, model: &str);
    /// The client stream's opening events, written once.
    fn begin(&mut self, out: &mut Vec<u8>);
    fn write_reasoning(&mut self, text: &str, out: &mut Vec<u8>);
    fn write_text(&mut self, text: &str, out: &mut Vec<u8>);
    /// One piece of a tool call, as a chat delta has it (`index`, `id`, `function`).
    fn write_tool_call(&mut self, call: &Value, out: &mut Vec<u8>);
    fn keep_usage(&mut self, usage: &Value);
    /// The choice that carries the finish reason.
    fn keep_finish(&mut self, choice: &Value);
    /// The chat stream's end (`[DONE]`, or its body's end): the client's stream ended too.
    fn finish(&mut self, out: &mut Vec<u8>);
    /// The chat stream broke off.
    fn error(&mut self, message: &str, out: &mut Vec<u8>);
    /// The target has been silent for the keep-alive interval.
    fn keep_alive(&mut self, out: &mut Vec<u8>);

    /// Any chunk, as a JSON tree.
    fn chunk(&mut self, chunk: &Value, out: &mut Vec<u8>) {
        if self.ended() {
            return;
        }
        if let Some(message) = chunk.pointer("/error/message").and_then(Value::as_str) {
            self.error(message, out);
            return;
        }
        if let Some(model) = chunk["model"].as_str().filter(|m| !m.is_empty()) {
            self.name_model(model);
        }
        self.begin(out);
        if chunk["usage"].is_object() {
            self.keep_usage(&chunk["usage"]);
        }
        let Some(choice) = chunk.pointer("/choices/0") else {
            return;
        };
        let delta = &choice["delta"];
        if let Some(reasoning) = delta["reasoning_content"]
            .as_str()
            .or_else(|| delta["reasoning"].as_str())
            .filter(|t| !t.is_empty())
        {
            self.write_reasoning(reasoning, out);
        }
        if let Some(text) = delta["content"].as_str().filter(|t| !t.is_empty()) {
            self.write_text(text, out);
        }
        for call in delta["tool_calls"].as_array().into_iter().flatten() {
            self.write_tool_call(call, out);
        }
        if choice["finish_reason"].is_string() {
            self.keep_finish(choice);
        }
    }

    /// A plain chunk (text or reasoning, no tool calls, no finish), read the typed way: the
    /// bulk of a stream, written without a JSON tree. `false` when it is not one of these, for
    /// [`Self::chunk`] to read.
    fn plain(&mut self, plain: &PlainEvent<'_>, out: &mut Vec<u8>) -> bool {
        if self.ended() || plain.finish_reason.is_some() {
            return false;
        }
        if let Some(model) = plain.model.as_deref().filter(|m| !m.is_empty()) {
            self.name_model(model);
        }
        self.begin(out);
        if let Some(reasoning) = plain.reasoning.as_deref().filter(|t| !t.is_empty()) {
            self.write_reasoning(reasoning, out);
        }
        if let Some(text) = plain.text.as_deref().filter(|t| !t.is_empty()) {
            self.write_text(text, out);
        }
        true
    }
}

/// The event read without a JSON tree, or `None` when it is not plain: an error, a usage, tool
/// calls, a choice without a delta, or anything not of these shapes.
pub fn plain_event(data: &str) -> Option<PlainEvent<'_>> {
    let Obj(event) = serde_json::from_str::<Obj<Event<'_>>>(data).ok()?;
    let plain = event.error.is_none()
        && event.usage.is_none_or(is_null)
        && event
            .choices
            .iter()
            .all(|c| c.delta.tool_calls.is_none_or(is_null));
    if !plain {
        return None;
    }
    let mut plain = PlainEvent {
        id: event.id.and_then(as_str),
        model: event.model.and_then(as_str),
        ..PlainEvent::default()
    };
    if let Some(choice) = event.choices.first() {
        let delta = &choice.delta;
        plain.finish_reason = match choice.finish_reason {
            Some(raw) if !is_null(raw) => Some(serde_json::from_str(raw.get()).ok()?),
            _ => None,
        };
        // `content` when present, whatever it holds; `text` only when it is absent.
        plain.text = delta.content.or(delta.text).and_then(as_str);
        plain.reasoning = delta.reasoning_content.and_then(as_str);
    }
    Some(plain)
}

#[cfg(test)]
mod tests {
    use super::*;

    const RECORDED: &str = include_str!("../../tests/fixtures/openai/chat-completion-stream.sse");

    fn agree(body: &str) {
        let fast = assemble_stream(body.as_bytes());
        let general = assemble_stream_generally(body.as_bytes());
        assert_eq!(
            (
                &fast.message,
                (&fast.id, &fast.model),
                fast.usage,
                fast.chunks,
                &fast.error,
                fast.text_len
            ),
            (
                &general.message,
                (&general.id, &general.model),
                general.usage,
                general.chunks,
                &general.error,
                general.text_len
            ),
            "{body}"
        );
    }

    #[test]
    fn plain_events_take_the_typed_reading() {
        let event = r#"{"id":"c","choices":[{"index":0,"delta":{"content":"Hi \"there\""},"finish_reason":null}]}"#;
        let plain = plain_event(event).expect("a plain event");
        assert_eq!(plain.text.as_deref(), Some("Hi \"there\""));
        for not_plain in [
            r#"{"choices":[],"usage":{"prompt_tokens":1}}"#,
            r#"{"error":{"message":"boom"}}"#,
            r#"{"choices":[{"delta":{"tool_calls":[{"index":0}]}}]}"#,
            r#"{"choices":[{"text":"completion style"}]}"#,
            r#"[{"choices":[]}]"#,
        ] {
            assert!(plain_event(not_plain).is_none(), "{not_plain}");
        }
    }

    #[test]
    fn the_typed_reading_agrees_with_the_general_one() {
        agree(RECORDED);
        let chunk = serde_json::from_str::<Value>(
            RECORDED
                .lines()
                .filter_map(|l| l.strip_prefix("data: "))
                .nth(1)
                .unwrap(),
        )
        .unwrap();
        // The recorded chunk with each field of its first choice, and of its delta, replaced
        // by values of every kind: whichever way each event is read, the record is the same.
        let kinds = [
            json!(null),
            json!(true),
            json!(7),
            json!(-1.5),
            json!(""),
            json!("stop"),
            json!("tex\"t\\u00e9"),
            json!([]),
            json!([{"index": 0, "function": {"arguments": "{}"}}]),
            json!({}),
            json!({"message": "boom"}),
            json!({"prompt_tokens": 3, "completion_tokens": 4}),
        ];
        let paths = [
            "/id",
            "/model",
            "/choices",
            "/choices/0",
            "/choices/0/delta",
            "/choices/0/finish_reason",
            "/choices/0/delta/content",
            "/choices/0/delta/text",
            "/choices/0/delta/reasoning_content",
            "/choices/0/delta/tool_calls",
            "/usage",
            "/error",
        ];
        for path in paths {
            for kind in &kinds {
                let mut event = chunk.clone();
                let (parent, key) = path.rsplit_once('/').unwrap();
                if let Some(Value::Object(map)) = event.pointer_mut(parent) {
                    map.insert(key.to_owned(), kind.clone());
                } else if let Some(Value::Array(items)) = event.pointer_mut(parent) {
                    items[0] = kind.clone();
                }
                agree(&format!(
                    "data: {chunk}\n\ndata: {event}\n\ndata: {chunk}\n\n"
                ));
                // And without the field at all.
                if let Some(Value::Object(map)) = event.pointer_mut(parent) {
                    map.remove(key);
                }
                agree(&format!("data: {event}\n\n"));
            }
        }
        // `text` counts only where `content` is absent; reasoning apart.
        agree(concat!(
            "data: {\"choices\":[{\"delta\":{\"text\":\"a\"}}]}\n\n",
            "data: {\"choices\":[{\"delta\":{\"content\":null,\"text\":\"b\"}}]}\n\n",
            "data: {\"choices\":[{\"delta\":{\"content\":\"c\",\"text\":\"d\"}}]}\n\n",
            "data: {\"choices\":[{\"delta\":{\"reasoning_content\":\"r\"}}]}\n\n",
        ));
        // Events that are not objects, and duplicate keys (the typed reading refuses them).
        agree(
            "data: [1,2]\n\ndata: \"x\"\n\ndata: 3\n\ndata: {\"choices\":[{\"delta\":{\"content\":\"a\",\"content\":\"b\"}}]}\n\n",
        );
    }

    #[test]
    fn streams_are_assembled_with_tool_calls_and_usage() {
        let body = concat!(
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"}}]}\n\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo\"}}]}\n\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"get\",\"arguments\":\"{\\\"a\\\"\"}}]}}]}\n\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\":1}\"}}]}}]}\n\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\n",
            "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":7,\"total_tokens\":12}}\n\n",
            "data: [DONE]\n\n",
        );
        agree(body);
        let assembled = assemble_stream(body.as_bytes());
        assert_eq!(assembled.chunks, 7);
        assert_eq!(assembled.message["content"], "Hello");
        assert_eq!(assembled.message["finish_reason"], "tool_calls");
        assert_eq!(assembled.message["tool_calls"][0]["id"], "call_1");
        assert_eq!(
            assembled.message["tool_calls"][0]["function"]["arguments"],
            "{\"a\":1}"
        );
        assert_eq!(
            assembled.usage,
            Some(Usage {
                prompt_tokens: 5,
                completion_tokens: 7,
                total_tokens: 12
            })
        );
    }
}
