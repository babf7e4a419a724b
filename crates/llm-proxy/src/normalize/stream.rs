//! Streams: OpenAI chunks repaired event by event, foreign streams (Anthropic SSE, Gemini
//! `alt=sse`, Ollama NDJSON, TGI `generate_stream`, Cohere) transcoded into
//! `chat.completion.chunk` events with one id, the role first, text, tool calls, the finish
//! reason, a usage chunk when the client asked for it, and `data: [DONE]`.
//!
//! The transcoder sees one whole event at a time (the relay finds the boundaries), so what it
//! emits does not depend on how the network split the bytes.

use std::borrow::Cow;
use std::collections::HashMap;

use serde_json::{Value, json};

use super::repair::{self, Part};
use super::{Changes, RequestContext, already_valid, finish_reason};
use crate::formats::answer::{Event, Stamp};
use crate::formats::chat_stream::{Assembled, Assembler};
use crate::formats::openai::ErrorBody;
use crate::formats::sse::{self, Framing};
use crate::formats::{Format, anthropic, cohere, gemini, ollama, tgi};

/// What to send for one input event.
#[derive(Debug, PartialEq, Eq)]
pub enum Output {
    /// The event was already valid OpenAI: send the target's bytes.
    Unchanged,
    /// Send these bytes instead (possibly nothing).
    Replace(Vec<u8>),
}

pub struct Transcoder {
    framing: Framing,
    format: Option<Format>,
    /// The format `TARGET_API` promises, taken instead of detecting one by shape.
    promised: Option<Format>,
    /// Where ids come from when the target gives none.
    stamp: Stamp,
    include_usage: bool,
    id: String,
    created: u64,
    model: String,
    role_sent: bool,
    finish_sent: bool,
    /// `[DONE]` (or an error event) has been sent: nothing may follow.
    terminated: bool,
    usage: Option<Value>,
    /// Foreign content block or call index to the OpenAI tool call index.
    tool_index: HashMap<u64, u64>,
    next_tool: u64,
    /// Whether repairing the last OpenAI chunk changed it (notes are deduplicated, so they
    /// cannot tell a second change of the same kind).
    repaired_last: bool,
    changes: Changes,
    /// The answer as the client receives it, for the call log.
    assembler: Assembler,
    /// [`Self::render_text_tail`], kept until the id or model changes.
    text_tail: Vec<u8>,
    /// Whether plain OpenAI chunks may take the fast check (off only in tests that hold it to
    /// the full repair).
    fast_path: bool,
}

impl Transcoder {
    pub fn new(framing: Framing, context: &RequestContext) -> Self {
        Self {
            framing,
            format: None,
            promised: context.answer_format,
            stamp: context.stamp.clone(),
            include_usage: context.include_usage,
            id: context.stamp.id.clone(),
            created: context.stamp.created,
            model: context.model.clone(),
            role_sent: false,
            finish_sent: false,
            terminated: false,
            usage: None,
            tool_index: HashMap::new(),
            next_tool: 0,
            repaired_last: false,
            changes: Changes::new("openai"),
            assembler: Assembler::default(),
            text_tail: Vec::new(),
            fast_path: true,
        }
    }

    /// The same transcoder with every event taking the full repair, for tests that compare
    /// the two.
    #[cfg(test)]
    pub(super) fn without_fast_path(mut self) -> Self {
        self.fast_path = false;
        self
    }

    pub fn framing(&self) -> Framing {
        self.framing
    }

    /// What was changed, once the stream is over; `None` when nothing was.
    pub fn changes(&self) -> Option<Changes> {
        (!self.changes.is_empty()).then(|| self.changes.clone())
    }

    /// The answer the client was sent, put together from every event so far; taken once.
    pub fn conclusion(&mut self) -> Assembled {
        std::mem::take(&mut self.assembler).into_assembled()
    }

    /// The relay ended the stream with its own error event.
    pub fn failed(&mut self, message: &str) {
        self.assembler.failed(message);
    }

    /// Whether the stream has ended properly (`[DONE]` sent) or with an error event.
    pub fn terminated(&self) -> bool {
        self.terminated
    }

    /// One complete event, as framed on the wire.
    pub fn event(&mut self, raw: &[u8]) -> Output {
        if self.terminated {
            return Output::Replace(Vec::new());
        }
        if self.fast_path
            && self.format == Some(Format::OpenAi)
            && self.framing == Framing::Sse
            && let Some(chunk) = already_valid::plain_chunk(raw)
        {
            self.keep_plain(chunk);
            return Output::Unchanged;
        }
        let text = String::from_utf8_lossy(raw);
        let (name, data) = match self.framing {
            Framing::Sse => parse_sse(&text),
            Framing::Ndjson => (None, Some(Cow::Borrowed(text.trim()))),
        };
        let Some(data) = data.filter(|d| !d.is_empty()) else {
            // Comments, keep-alives and blank lines pass as they are on SSE; on NDJSON they go.
            return if self.framing == Framing::Sse && self.format == Some(Format::OpenAi) {
                Output::Unchanged
            } else {
                Output::Replace(Vec::new())
            };
        };
        if data == "[DONE]" {
            let owes_usage =
                self.include_usage && self.usage.is_none() && self.format == Some(Format::OpenAi);
            if self.framing == Framing::Sse
                && self.format.is_none_or(|f| f == Format::OpenAi)
                && !owes_usage
            {
                self.terminated = true;
                return Output::Unchanged;
            }
            return Output::Replace(self.closing());
        }
        if self.format == Some(Format::Anthropic)
            && let Some(text) = anthropic::text_delta(&data)
        {
            let mut out = Vec::new();
            self.push_text(&text, &mut out);
            return Output::Replace(out);
        }
        let Ok(value) = serde_json::from_str::<Value>(&data) else {
            self.changes.note("dropped an event that was not JSON");
            return Output::Replace(Vec::new());
        };
        if self.format.is_none() {
            let format = self.promised.unwrap_or_else(|| detect(name, &value));
            self.format = Some(format);
            self.changes.format = format.name();
            if format != Format::OpenAi {
                self.changes
                    .note(format!("transcoded a {} stream", format.name()));
            }
            if self.framing == Framing::Ndjson && format == Format::OpenAi {
                self.changes.note("reframed NDJSON as server-sent events");
            }
        }
        let mut out = Vec::new();
        match self.format.unwrap_or(Format::OpenAi) {
            Format::OpenAi | Format::Bedrock => return self.openai(value),
            Format::Anthropic => {
                let mut apply = |event| self.apply(event, &mut out);
                anthropic::stream_event(name, &value, &mut apply);
            }
            Format::Gemini => gemini::stream_event(&value, &mut |e| self.apply(e, &mut out)),
            Format::Ollama => ollama::stream_event(&value, &mut |e| self.apply(e, &mut out)),
            Format::Tgi => tgi::stream_event(&value, &mut |e| self.apply(e, &mut out)),
            Format::CohereV2 => cohere::stream_event_v2(&value, &mut |e| self.apply(e, &mut out)),
            Format::CohereV1 => cohere::stream_event_v1(&value, &mut |e| self.apply(e, &mut out)),
        }
        Output::Replace(out)
    }

    /// At a clean end of the target's stream: what to send to close it properly, or `None`
    /// when it ended too early to be complete (the caller reports the cut).
    pub fn finish(&mut self) -> Option<Vec<u8>> {
        if self.terminated {
            return Some(Vec::new());
        }
        if !self.finish_sent {
            return None;
        }
        if self.format == Some(Format::OpenAi) {
            self.changes.note("added the missing data: [DONE]");
        }
        Some(self.closing())
    }

    /// The usage chunk (when asked for) and `[DONE]`.
    fn closing(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        if !self.finish_sent && self.format != Some(Format::OpenAi) {
            self.push_finish("stop", &mut out);
        }
        // A foreign stream's usage, or an OpenAI-like target that ignored include_usage.
        let openai_owes = self.format == Some(Format::OpenAi) && self.usage.is_none();
        if self.include_usage && (self.format != Some(Format::OpenAi) || openai_owes) {
            if openai_owes {
                self.changes
                    .note("added the usage chunk the client asked for (counts unknown: zeros)");
            }
            let usage = self.usage.take().unwrap_or_else(
                || json!({"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}),
            );
            let mut chunk = self.chunk_with(json!([]));
            chunk["usage"] = usage;
            self.emit(&mut out, &chunk);
        }
        out.extend_from_slice(sse::DONE);
        self.terminated = true;
        out
    }

    /// Writes a chunk for the client and adds it to the assembled answer.
    fn emit(&mut self, out: &mut Vec<u8>, chunk: &Value) {
        sse::push_event(out, chunk);
        self.assembler.add(chunk);
    }

    fn chunk_with(&self, choices: Value) -> Value {
        json!({"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
               "system_fingerprint": null, "choices": choices})
    }

    /// The first chunk of every stream: the role, with empty content.
    fn push_role(&mut self, out: &mut Vec<u8>) {
        if !self.role_sent {
            self.role_sent = true;
            let role = self.chunk_with(json!([{"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": null, "finish_reason": null}]));
            self.emit(out, &role);
        }
    }

    fn push_delta(&mut self, delta: Value, out: &mut Vec<u8>) {
        self.push_role(out);
        let chunk = self.chunk_with(
            json!([{"index": 0, "delta": delta, "logprobs": null, "finish_reason": null}]),
        );
        self.emit(out, &chunk);
    }

    /// A text chunk, written without building it: the bulk of a translated stream. The bytes
    /// are those [`Self::push_delta`] writes (a test holds them equal).
    fn push_text(&mut self, text: &str, out: &mut Vec<u8>) {
        if text.is_empty() {
            return;
        }
        self.push_role(out);
        if self.text_tail.is_empty() {
            self.text_tail = self.render_text_tail();
        }
        out.extend_from_slice(br#"data: {"choices":[{"delta":{"content":"#);
        // Serializing a string into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, text);
        out.extend_from_slice(&self.text_tail);
        self.assembler
            .plain(&self.id, &self.model, Some(text), None);
    }

    /// What follows a text chunk's content: the same for every chunk of one id and model.
    fn render_text_tail(&self) -> Vec<u8> {
        let mut tail = Vec::with_capacity(160 + self.id.len() + self.model.len());
        tail.extend_from_slice(br#"},"finish_reason":null,"index":0,"logprobs":null}],"created":"#);
        tail.extend_from_slice(self.created.to_string().as_bytes());
        tail.extend_from_slice(br#","id":"#);
        let _ = serde_json::to_writer(&mut tail, &self.id);
        tail.extend_from_slice(br#","model":"#);
        let _ = serde_json::to_writer(&mut tail, &self.model);
        tail.extend_from_slice(br#","object":"chat.completion.chunk","system_fingerprint":null}"#);
        tail.extend_from_slice(b"\n\n");
        tail
    }

    fn push_finish(&mut self, reason: &str, out: &mut Vec<u8>) {
        if self.finish_sent {
            return;
        }
        self.push_role(out);
        self.finish_sent = true;
        let chunk = self.chunk_with(
            json!([{"index": 0, "delta": {}, "logprobs": null, "finish_reason": reason}]),
        );
        self.emit(out, &chunk);
    }

    /// The finish chunk for the target's own stop reason: `tool_calls` once tool calls were
    /// streamed, as OpenAI reports them whatever the target called its stop.
    fn push_target_finish(&mut self, target_reason: &str, out: &mut Vec<u8>) {
        let reason = if self.next_tool > 0 {
            "tool_calls"
        } else {
            finish_reason(target_reason)
        };
        self.push_finish(reason, out);
    }

    fn push_error(&mut self, message: &str, kind: &str, out: &mut Vec<u8>) {
        out.extend_from_slice(&ErrorBody::new(message.to_owned(), kind, None, None).to_sse_event());
        self.assembler.failed(message);
        self.terminated = true;
        self.changes.note("translated an error event");
    }

    /// A new tool call: id and name, then argument fragments under the same index.
    fn push_tool_start(
        &mut self,
        key: u64,
        id: Option<&str>,
        name: &str,
        arguments: &str,
        out: &mut Vec<u8>,
    ) {
        let index = self.next_tool;
        self.next_tool += 1;
        self.tool_index.insert(key, index);
        let id = id.map_or_else(|| self.stamp.call_id(index as usize), str::to_owned);
        self.push_delta(
            json!({"tool_calls": [{"index": index, "id": id, "type": "function", "function": {"name": name, "arguments": arguments}}]}),
            out,
        );
    }

    fn push_tool_arguments(&mut self, key: u64, fragment: &str, out: &mut Vec<u8>) {
        if fragment.is_empty() {
            return;
        }
        let index = self.tool_index.get(&key).copied().unwrap_or(0);
        self.push_delta(
            json!({"tool_calls": [{"index": index, "function": {"arguments": fragment}}]}),
            out,
        );
    }

    fn set_usage(&mut self, prompt: Option<u64>, completion: Option<u64>) {
        let current = self
            .usage
            .clone()
            .unwrap_or_else(|| json!({"prompt_tokens": 0, "completion_tokens": 0}));
        let p = prompt.unwrap_or_else(|| current["prompt_tokens"].as_u64().unwrap_or(0));
        let c = completion.unwrap_or_else(|| current["completion_tokens"].as_u64().unwrap_or(0));
        self.usage =
            Some(json!({"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}));
    }

    /// An OpenAI chunk: passed on as it is unless something needs repair.
    fn openai(&mut self, mut value: Value) -> Output {
        // Any event with an error ends the stream: clients raise on an `error` key, so it must
        // be OpenAI's envelope exactly, and nothing may follow it.
        if value.get("error").is_some_and(|e| !e.is_null()) {
            self.terminated = true;
            let envelope = error_envelope(&value["error"]);
            if envelope == value {
                self.assembler.add(&value);
                return Output::Unchanged;
            }
            self.changes.note("repaired an error event");
            let mut out = Vec::new();
            self.emit(&mut out, &envelope);
            return Output::Replace(out);
        }
        // Azure's first chunk: no id, no object, no choices, only prompt filter results.
        if value["choices"].as_array().is_some_and(Vec::is_empty)
            && value["id"].as_str().is_none_or(str::is_empty)
            && value.get("usage").is_none_or(Value::is_null)
        {
            self.changes
                .note("dropped an empty chunk without an id (Azure prompt filter results)");
            return Output::Replace(Vec::new());
        }
        let before = self.changes.changed.len();
        self.repair_chunk(&mut value);
        if let Some(choices) = value["choices"].as_array()
            && choices.iter().any(|c| c["finish_reason"].is_string())
        {
            self.finish_sent = true;
        }
        self.role_sent = true;
        if self.changes.changed.len() == before && !self.repaired_last {
            self.assembler.add(&value);
            return Output::Unchanged;
        }
        let mut out = Vec::new();
        self.emit(&mut out, &value);
        Output::Replace(out)
    }
}

impl Transcoder {
    /// What `repair_chunk` and `openai` keep from a chunk they leave unchanged.
    fn keep_plain(&mut self, chunk: already_valid::PlainChunk<'_>) {
        self.assembler.plain(
            &chunk.id,
            &chunk.model,
            chunk.text.as_deref(),
            chunk.finish_reason,
        );
        if !self.role_sent {
            if self.id.starts_with("chatcmpl-") {
                self.id = chunk.id.into_owned();
                self.text_tail.clear();
            }
            self.created = chunk.created;
        }
        if self.model != chunk.model {
            self.model = chunk.model.into_owned();
            self.text_tail.clear();
        }
        self.finish_sent |= chunk.finished;
        self.role_sent = true;
        self.repaired_last = false;
    }
}

// `repaired_last` tracks whether the last chunk repair changed anything, separately from the
// notes (which are deduplicated and so cannot tell a second change of the same kind).
impl Transcoder {
    fn repair_chunk(&mut self, value: &mut Value) {
        self.repaired_last = false;
        let Some(chunk) = value.as_object_mut() else {
            return;
        };
        let note = |changes: &mut Changes, repaired: &mut bool, what: &str| {
            changes.note(what);
            *repaired = true;
        };
        let mut repaired = false;
        match chunk.get("id").and_then(Value::as_str) {
            Some(id) if !id.is_empty() => {
                if self.id.starts_with("chatcmpl-") && !self.role_sent {
                    self.id = id.to_owned();
                    self.text_tail.clear();
                }
            }
            _ => {
                chunk.insert("id".into(), json!(self.id));
                note(&mut self.changes, &mut repaired, "filled chunk id");
            }
        }
        repaired |= repair::set_object(chunk, "chat.completion.chunk", &mut self.changes);
        match chunk.get("created").and_then(Value::as_u64) {
            // Chunks the proxy adds (a usage chunk) carry the stream's own time.
            Some(created) if !self.role_sent => self.created = created,
            Some(_) => {}
            None => {
                chunk.insert("created".into(), json!(self.created));
                note(&mut self.changes, &mut repaired, "filled chunk created");
            }
        }
        match chunk.get("model").and_then(Value::as_str) {
            Some(model) if !model.is_empty() => {
                self.model = model.to_owned();
                self.text_tail.clear();
            }
            _ => {
                chunk.insert("model".into(), json!(self.model));
                note(&mut self.changes, &mut repaired, "filled chunk model");
            }
        }
        repaired |= repair::drop_invalid_fingerprint(chunk, &mut self.changes);
        repaired |= repair::fill_choices(chunk, &mut self.changes);
        if let Some(usage) = chunk.get_mut("usage").filter(|u| !u.is_null()) {
            let before = self.changes.changed.len();
            if usage.is_object() {
                super::repair_usage(usage, &mut self.changes);
                self.usage = Some(usage.clone());
            } else {
                *usage = Value::Null;
                self.changes.note("replaced usage that was not an object");
            }
            if self.changes.changed.len() != before {
                repaired = true;
            }
        }
        let Some(Value::Array(choices)) = chunk.get_mut("choices") else {
            return;
        };
        let before = choices.len();
        choices.retain(Value::is_object);
        if choices.len() != before {
            note(
                &mut self.changes,
                &mut repaired,
                "dropped choices that were not objects",
            );
        }
        for (i, choice) in choices.iter_mut().enumerate() {
            let Some(choice) = choice.as_object_mut() else {
                continue;
            };
            repaired |= repair::fill_index(choice, i, &mut self.changes);
            if !choice.get("delta").is_some_and(Value::is_object) {
                let content = choice.remove("text").or_else(|| {
                    choice
                        .get("message")
                        .and_then(|m| m.get("content"))
                        .cloned()
                });
                choice.remove("message");
                choice.insert(
                    "delta".into(),
                    json!({"content": content.unwrap_or(Value::Null)}),
                );
                note(&mut self.changes, &mut repaired, "built delta from text");
            }
            match choice.get("finish_reason") {
                None => {
                    choice.insert("finish_reason".into(), Value::Null);
                    note(
                        &mut self.changes,
                        &mut repaired,
                        "filled finish_reason: null",
                    );
                }
                Some(Value::String(_)) => {
                    repaired |= repair::map_finish_reason(choice, &mut self.changes);
                }
                Some(Value::Null) => {}
                Some(_) => {
                    choice.insert("finish_reason".into(), Value::Null);
                    note(
                        &mut self.changes,
                        &mut repaired,
                        "replaced an invalid finish_reason",
                    );
                }
            }
            if choice
                .get("logprobs")
                .is_some_and(|l| !l.is_null() && !valid_logprobs(l))
            {
                choice.insert("logprobs".into(), Value::Null);
                note(
                    &mut self.changes,
                    &mut repaired,
                    "replaced invalid logprobs with null",
                );
            }
            let Some(delta) = choice.get_mut("delta").and_then(Value::as_object_mut) else {
                continue;
            };
            repaired |= repair::drop_null_fields(delta, Part::Delta, &mut self.changes);
            repaired |= repair::content_to_text(delta, Part::Delta, &mut self.changes);
            repaired |= repair::copy_reasoning(delta, &mut self.changes);
            for what in sanitize_delta(delta) {
                note(&mut self.changes, &mut repaired, what);
            }
            if let Some(Value::Array(calls)) = delta.get_mut("tool_calls") {
                for (j, call) in calls.iter_mut().enumerate() {
                    let Some(call) = call.as_object_mut() else {
                        continue;
                    };
                    if !call.get("index").is_some_and(Value::is_u64) {
                        call.insert("index".into(), json!(j));
                        note(&mut self.changes, &mut repaired, "filled tool call index");
                    }
                    if let Some(function) = call.get_mut("function").and_then(Value::as_object_mut)
                    {
                        repaired |= repair::arguments_to_text(function, &mut self.changes);
                    }
                }
            }
        }
        self.repaired_last = repaired;
    }

    /// One canonical event of a foreign stream, written as the chunks it makes.
    fn apply(&mut self, event: Event<'_>, out: &mut Vec<u8>) {
        match event {
            Event::Id(id) => {
                id.clone_into(&mut self.id);
                self.text_tail.clear();
            }
            Event::Model(model) => {
                if self.model != model {
                    model.clone_into(&mut self.model);
                    self.text_tail.clear();
                }
            }
            Event::Role => self.push_role(out),
            Event::Text(text) => self.push_text(text, out),
            Event::Reasoning(text) => {
                if !text.is_empty() {
                    self.push_delta(json!({"reasoning_content": text}), out);
                }
            }
            Event::Blocked(reason) => {
                self.push_delta(
                    json!({"refusal": format!("The prompt was blocked ({reason}).")}),
                    out,
                );
                self.push_finish("content_filter", out);
            }
            Event::ToolStart {
                key,
                id,
                name,
                arguments,
            } => {
                let key = key.unwrap_or(1_000_000 + self.next_tool);
                self.push_tool_start(key, id, name, &arguments, out);
            }
            Event::ToolArguments { key, fragment } => {
                self.push_tool_arguments(key, fragment, out);
            }
            Event::Usage { prompt, completion } => self.set_usage(prompt, completion),
            Event::Finish(reason) => self.push_finish(finish_reason(reason), out),
            Event::PlainFinish(reason) => self.push_target_finish(reason, out),
            Event::End => {
                let closing = self.closing();
                out.extend(closing);
            }
            Event::Error(message) => self.push_error(message, "server_error", out),
        }
    }
}

/// The format of a stream from its first event. A bare error line is Ollama's; anything else
/// without a known shape is taken as OpenAI's, to be repaired.
fn detect(name: Option<&str>, value: &Value) -> Format {
    match Format::detect(name, value) {
        // Bedrock streams in binary event frames, which never get here.
        Some(Format::Bedrock) | None if value["error"].is_string() => Format::Ollama,
        Some(Format::Bedrock) | None => Format::OpenAi,
        Some(format) => format,
    }
}

/// Makes a delta's fields the types OpenAI's chunk schema allows; returns what it changed.
fn sanitize_delta(delta: &mut serde_json::Map<String, Value>) -> Vec<&'static str> {
    let mut changed = Vec::new();
    if delta
        .get("refusal")
        .is_some_and(|r| !r.is_string() && !r.is_null())
    {
        delta.remove("refusal");
        changed.push("removed an invalid delta refusal");
    }
    let roles = ["developer", "system", "user", "assistant", "tool"];
    if delta
        .get("role")
        .is_some_and(|r| !r.as_str().is_some_and(|r| roles.contains(&r)))
    {
        delta.remove("role");
        changed.push("removed an invalid delta role");
    }
    if delta
        .get("function_call")
        .is_some_and(|f| !valid_function(f))
    {
        delta.remove("function_call");
        changed.push("removed an invalid function_call");
    }
    match delta.get_mut("tool_calls") {
        None | Some(Value::Null) => {}
        Some(Value::Array(calls)) => {
            let before = calls.len();
            calls.retain(Value::is_object);
            if calls.len() != before {
                changed.push("dropped tool calls that were not objects");
            }
            for call in calls.iter_mut().filter_map(Value::as_object_mut) {
                if call.get("id").is_some_and(|id| !id.is_string()) {
                    call.remove("id");
                    changed.push("removed an invalid tool call id");
                }
                if call.get("type").is_some_and(|t| t != "function") {
                    call.insert("type".into(), json!("function"));
                    changed.push("set tool call type");
                }
                if call.get("function").is_some_and(|f| !f.is_object()) {
                    call.remove("function");
                    changed.push("removed an invalid tool call function");
                }
                if let Some(function) = call.get_mut("function").and_then(Value::as_object_mut)
                    && function.get("name").is_some_and(|n| !n.is_string())
                {
                    function.remove("name");
                    changed.push("removed an invalid tool call name");
                }
            }
        }
        Some(_) => {
            delta.remove("tool_calls");
            changed.push("removed tool_calls that were not a list");
        }
    }
    changed
}

fn valid_function(function: &Value) -> bool {
    function
        .as_object()
        .is_some_and(|f| f.values().all(Value::is_string))
}

/// Logprobs in OpenAI's shape (`content` and `refusal`, each a list of token entries or null).
fn valid_logprobs(logprobs: &Value) -> bool {
    #[derive(serde::Deserialize)]
    #[expect(dead_code, reason = "the shape is all that is checked")]
    struct Logprobs {
        content: Option<Vec<Token>>,
        refusal: Option<Vec<Token>>,
    }
    #[derive(serde::Deserialize)]
    #[expect(dead_code, reason = "the shape is all that is checked")]
    struct Token {
        token: String,
        logprob: f64,
        bytes: Option<Vec<u8>>,
        top_logprobs: Vec<TopToken>,
    }
    #[derive(serde::Deserialize)]
    #[expect(dead_code, reason = "the shape is all that is checked")]
    struct TopToken {
        token: String,
        logprob: f64,
        bytes: Option<Vec<u8>>,
    }
    let object = logprobs.as_object();
    object.is_some_and(|o| o.contains_key("content") && o.contains_key("refusal"))
        && serde_json::from_value::<Logprobs>(logprobs.clone()).is_ok()
}

/// OpenAI's error envelope from whatever error value a target sent.
fn error_envelope(error: &Value) -> Value {
    let text = |key: &str| error.get(key).and_then(Value::as_str).map(str::to_owned);
    let message = text("message")
        .or_else(|| error.as_str().map(str::to_owned))
        .unwrap_or_else(|| error.to_string());
    json!({"error": {
        "message": message,
        "type": text("type").unwrap_or_else(|| "server_error".to_owned()),
        "param": text("param"),
        "code": text("code"),
    }})
}

/// The event name and the joined `data:` lines of one SSE block.
fn parse_sse(block: &str) -> (Option<&str>, Option<Cow<'_, str>>) {
    let mut name = None;
    let mut data: Option<Cow<'_, str>> = None;
    for line in block.lines() {
        if let Some(value) = line.strip_prefix("event:") {
            name = Some(value.trim());
        } else if let Some(value) = line.strip_prefix("data:") {
            let value = value.strip_prefix(' ').unwrap_or(value);
            match &mut data {
                Some(existing) => {
                    let existing = existing.to_mut();
                    existing.push('\n');
                    existing.push_str(value);
                }
                None => data = Some(Cow::Borrowed(value)),
            }
        }
    }
    let data = data.map(|data| match data {
        Cow::Borrowed(data) => Cow::Borrowed(data.trim()),
        Cow::Owned(data) => Cow::Owned(data.trim().to_owned()),
    });
    (name, data)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transcoder() -> Transcoder {
        Transcoder::new(
            Framing::Sse,
            &RequestContext {
                model: "m\"odel".to_owned(),
                include_usage: false,
                answer_format: None,
                stamp: Stamp::now(),
            },
        )
    }

    #[test]
    fn a_text_chunk_written_directly_is_the_chunk_built_as_json() {
        for text in [
            "Hello",
            "quote \" slash \\ newline \n tab \t",
            "é ☃ 😀",
            "\u{1}",
        ] {
            let mut direct = transcoder();
            let mut built = transcoder();
            built.id.clone_from(&direct.id);
            built.created = direct.created;
            let (mut a, mut b) = (Vec::new(), Vec::new());
            direct.push_text(text, &mut a);
            built.push_delta(json!({"content": text}), &mut b);
            assert_eq!(String::from_utf8(a).unwrap(), String::from_utf8(b).unwrap());
            // After the model changes, the next chunk names the new one.
            direct.apply(Event::Model("other"), &mut Vec::new());
            built.apply(Event::Model("other"), &mut Vec::new());
            let (mut a, mut b) = (Vec::new(), Vec::new());
            direct.push_text(text, &mut a);
            built.push_delta(json!({"content": text}), &mut b);
            assert_eq!(String::from_utf8(a).unwrap(), String::from_utf8(b).unwrap());
            assert_eq!(
                direct.conclusion().message["content"],
                format!("{text}{text}")
            );
        }
    }

    #[test]
    fn an_anthropic_text_delta_is_read_typed_as_the_general_reading_does() {
        for data in [
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi \"there\"\n"}}"#,
            r#"{"delta":{"text":"é","type":"text_delta"},"type":"content_block_delta","index":3}"#,
        ] {
            let value: Value = serde_json::from_str(data).unwrap();
            let mut general = Vec::new();
            anthropic::stream_event(None, &value, &mut |event| {
                general.push(format!("{event:?}"))
            });
            let typed = anthropic::text_delta(data).unwrap();
            assert_eq!(general, vec![format!("{:?}", Event::Text(&typed))]);
        }
        for other in [
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{"}}"#,
            r#"{"type":"message_delta","delta":{"stop_reason":"end_turn"}}"#,
        ] {
            assert!(anthropic::text_delta(other).is_none(), "{other}");
        }
    }
}
