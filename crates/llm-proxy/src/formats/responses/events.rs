//! A chat completion stream written as a Responses event stream, chunk by chunk:
//! `response.created` and `response.in_progress`, then each output item opened
//! (`output_item.added`), filled by its deltas, closed with its `.done` events and
//! `output_item.done`, one item after another, and the stream ended by `response.completed`
//! (or `response.incomplete`, or `response.failed`) with the whole Response. Every event has
//! the next `sequence_number`.

use std::collections::HashMap;
use std::io::Write as _;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use super::item_id;
use super::object::{
    Skeleton, State, Status, custom_input, fields, message_item, output_text, reasoning_item,
};
use crate::formats::chat_stream::ChatStreamWriter;

/// How a stream ended: the final Response (completed, incomplete or failed) and how many
/// events carried it. Filled by the writer when it ends, for the store and the log.
#[derive(Debug, Clone)]
pub struct Finished {
    pub response: Value,
    pub events: u32,
    /// Characters of text, reasoning and arguments.
    pub chars: usize,
}

/// Where a [`ResponsesStream`] leaves its [`Finished`].
pub type FinishedSlot = Arc<Mutex<Option<Finished>>>;

/// The output item open now.
#[derive(Debug)]
enum Open {
    Message {
        id: String,
        index: usize,
        text: String,
    },
    Reasoning {
        id: String,
        index: usize,
        text: String,
    },
    Call {
        key: u64,
        id: String,
        index: usize,
        call_id: String,
        name: String,
        arguments: String,
        custom: bool,
    },
}

#[derive(Debug)]
pub struct ResponsesStream {
    skeleton: Skeleton,
    model: String,
    sequence: u32,
    started: bool,
    output: Vec<Value>,
    open: Option<Open>,
    /// The chat tool call indexes seen.
    calls: HashMap<u64, ()>,
    finish_reason: Option<String>,
    usage: Option<Value>,
    chars: usize,
    ended: bool,
    finished: FinishedSlot,
}

impl ResponsesStream {
    /// `model` until the target names its own.
    pub fn new(skeleton: Skeleton, model: &str, finished: FinishedSlot) -> Self {
        Self {
            skeleton,
            model: model.to_owned(),
            sequence: 0,
            started: false,
            output: Vec::new(),
            open: None,
            calls: HashMap::new(),
            finish_reason: None,
            usage: None,
            chars: 0,
            ended: false,
            finished,
        }
    }

    fn event(&mut self, out: &mut Vec<u8>, name: &str, mut data: Value) {
        self.write_event(out, name, &mut data);
    }

    fn write_event(&mut self, out: &mut Vec<u8>, name: &str, data: &mut Value) {
        data["type"] = json!(name);
        data["sequence_number"] = json!(self.sequence);
        self.sequence += 1;
        // Writing into a Vec cannot fail.
        let _ = write!(out, "event: {name}\ndata: ");
        // Serializing a JSON tree into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, data);
        out.extend_from_slice(b"\n\n");
    }

    /// An `output_text.delta`, written without building it (a test holds it to the built one).
    fn text_delta(&mut self, out: &mut Vec<u8>, item_id: &str, index: usize, text: &str) {
        out.extend_from_slice(
            b"event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"sequence_number\":",
        );
        // Writing into a Vec cannot fail.
        let _ = write!(out, "{}", self.sequence);
        self.sequence += 1;
        out.extend_from_slice(b",\"item_id\":\"");
        out.extend_from_slice(item_id.as_bytes());
        out.extend_from_slice(b"\",\"output_index\":");
        let _ = write!(out, "{index}");
        out.extend_from_slice(b",\"content_index\":0,\"delta\":");
        let _ = serde_json::to_writer(&mut *out, text);
        out.extend_from_slice(b",\"logprobs\":[]}\n\n");
    }

    fn start(&mut self, out: &mut Vec<u8>) {
        if self.started {
            return;
        }
        self.started = true;
        let state = State {
            status: Status::InProgress,
            model: &self.model,
            output: &[],
            usage: None,
            output_chars: 0,
            error: None,
        };
        for name in ["response.created", "response.in_progress"] {
            Self::response_event(&self.skeleton, &mut self.sequence, out, name, &state);
        }
    }

    /// An event carrying the whole Response, written without building it as a JSON tree.
    fn response_event(
        skeleton: &Skeleton,
        sequence: &mut u32,
        out: &mut Vec<u8>,
        name: &str,
        state: &State<'_>,
    ) {
        // Keys in the order every other event has them (a JSON tree's, sorted). Writing into a
        // Vec cannot fail.
        let _ = write!(out, "event: {name}\ndata: {{\"response\":");
        skeleton.write(state, out);
        let _ = write!(
            out,
            ",\"sequence_number\":{sequence},\"type\":\"{name}\"}}\n\n"
        );
        *sequence += 1;
    }

    fn text(&mut self, text: &str, out: &mut Vec<u8>) {
        if !matches!(self.open, Some(Open::Message { .. })) {
            self.close(out);
            let index = self.output.len();
            let id = item_id("msg", &self.skeleton.suffix, index);
            self.event(
                out,
                "response.output_item.added",
                json!({"output_index": index, "item": {"id": id, "type": "message",
                    "status": "in_progress", "content": [], "role": "assistant"}}),
            );
            self.event(
                out,
                "response.content_part.added",
                fields([
                    ("item_id", id.as_str().into()),
                    ("output_index", index.into()),
                    ("content_index", 0.into()),
                    ("part", output_text("")),
                ]),
            );
            self.open = Some(Open::Message {
                id,
                index,
                text: String::new(),
            });
        }
        self.chars += text.len();
        let Some(Open::Message {
            id,
            index,
            text: all,
        }) = self.open.take()
        else {
            return;
        };
        self.text_delta(out, &id, index, text);
        let mut all = all;
        all.push_str(text);
        self.open = Some(Open::Message {
            id,
            index,
            text: all,
        });
    }

    fn reasoning(&mut self, text: &str, out: &mut Vec<u8>) {
        if !matches!(self.open, Some(Open::Reasoning { .. })) {
            self.close(out);
            let index = self.output.len();
            let id = item_id("rs", &self.skeleton.suffix, index);
            self.event(
                out,
                "response.output_item.added",
                json!({"output_index": index, "item": {"id": id, "type": "reasoning", "summary": [], "content": []}}),
            );
            self.event(
                out,
                "response.content_part.added",
                json!({"item_id": id, "output_index": index, "content_index": 0,
                    "part": {"type": "reasoning_text", "text": ""}}),
            );
            self.open = Some(Open::Reasoning {
                id,
                index,
                text: String::new(),
            });
        }
        self.chars += text.len();
        if let Some(Open::Reasoning {
            id,
            index,
            text: all,
        }) = &mut self.open
        {
            all.push_str(text);
            let data =
                json!({"item_id": id, "output_index": index, "content_index": 0, "delta": text});
            self.event(out, "response.reasoning_text.delta", data);
        }
    }

    /// A tool call's piece: its first opens a call item, the rest add arguments.
    fn tool_call(&mut self, call: &Value, out: &mut Vec<u8>) {
        let key = call["index"].as_u64().unwrap_or(0);
        let fragment = call["function"]["arguments"].as_str().unwrap_or_default();
        if self.calls.contains_key(&key) {
            // Chat streams do not interleave calls: a fragment for a call that is no longer
            // open is one a closed item cannot take.
            if !matches!(&self.open, Some(Open::Call { key: open, .. }) if *open == key) {
                return;
            }
        } else {
            self.close(out);
            self.calls.insert(key, ());
            let index = self.output.len();
            let name = call["function"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let call_id = call["id"].as_str().filter(|id| !id.is_empty()).map_or_else(
                || format!("call_{}{index}", self.skeleton.suffix),
                str::to_owned,
            );
            let custom = self.skeleton.tools.is_custom(&name);
            let (id, item) = if custom {
                let id = item_id("ctc", &self.skeleton.suffix, index);
                let item = json!({"id": id, "type": "custom_tool_call", "status": "in_progress",
                    "call_id": call_id, "name": name, "input": ""});
                (id, item)
            } else {
                let id = item_id("fc", &self.skeleton.suffix, index);
                let mut item = self.skeleton.call_item(index, &call_id, &name, "");
                item["status"] = json!("in_progress");
                (id, item)
            };
            let data = fields([("output_index", index.into()), ("item", item)]);
            self.event(out, "response.output_item.added", data);
            self.open = Some(Open::Call {
                key,
                id,
                index,
                call_id,
                name,
                arguments: String::new(),
                custom,
            });
        }
        if fragment.is_empty() {
            return;
        }
        self.chars += fragment.len();
        let Some(Open::Call {
            id,
            index,
            arguments,
            custom,
            ..
        }) = &mut self.open
        else {
            return;
        };
        arguments.push_str(fragment);
        // A custom tool's input is one JSON string argument: it goes out whole, at the end.
        if !*custom {
            let data = json!({"item_id": id, "output_index": index, "delta": fragment});
            self.event(out, "response.function_call_arguments.delta", data);
        }
    }

    /// Closes the open item: its `.done` events, and its place in the output.
    fn close(&mut self, out: &mut Vec<u8>) {
        let Some(open) = self.open.take() else {
            return;
        };
        let (index, item) = match open {
            Open::Message { id, index, text } => {
                self.event(
                    out,
                    "response.output_text.done",
                    json!({"item_id": id, "output_index": index, "content_index": 0, "text": text, "logprobs": []}),
                );
                self.event(
                    out,
                    "response.content_part.done",
                    fields([
                        ("item_id", id.as_str().into()),
                        ("output_index", index.into()),
                        ("content_index", 0.into()),
                        ("part", output_text(&text)),
                    ]),
                );
                (index, message_item(id, &text, "completed"))
            }
            Open::Reasoning { id, index, text } => {
                self.event(
                    out,
                    "response.reasoning_text.done",
                    json!({"item_id": id, "output_index": index, "content_index": 0, "text": text}),
                );
                self.event(
                    out,
                    "response.content_part.done",
                    json!({"item_id": id, "output_index": index, "content_index": 0,
                        "part": {"type": "reasoning_text", "text": text}}),
                );
                (index, reasoning_item(id, &text))
            }
            Open::Call {
                id,
                index,
                call_id,
                name,
                arguments,
                custom,
                ..
            } => {
                if custom {
                    let input = custom_input(&arguments);
                    self.event(
                        out,
                        "response.custom_tool_call_input.delta",
                        json!({"item_id": id, "output_index": index, "delta": input}),
                    );
                    self.event(
                        out,
                        "response.custom_tool_call_input.done",
                        json!({"item_id": id, "output_index": index, "input": input}),
                    );
                } else {
                    let (_, plain_name) = self.skeleton.tools.split(&name);
                    self.event(
                        out,
                        "response.function_call_arguments.done",
                        json!({"item_id": id, "output_index": index, "name": plain_name, "arguments": arguments}),
                    );
                }
                (
                    index,
                    self.skeleton.call_item(index, &call_id, &name, &arguments),
                )
            }
        };
        let data = fields([("output_index", index.into()), ("item", item.clone())]);
        self.event(out, "response.output_item.done", data);
        self.output.push(item);
    }

    /// Ends the stream with the whole Response at `status`.
    fn end(&mut self, status: Status, error: Option<&str>, out: &mut Vec<u8>) {
        self.start(out);
        self.close(out);
        let state = State {
            status,
            model: &self.model,
            output: &self.output,
            usage: self.usage.as_ref(),
            output_chars: self.chars,
            error,
        };
        let name = match status {
            Status::Completed | Status::InProgress => "response.completed",
            Status::Incomplete(_) => "response.incomplete",
            Status::Failed => "response.failed",
        };
        Self::response_event(&self.skeleton, &mut self.sequence, out, name, &state);
        self.ended = true;
        let finished = Finished {
            response: self.skeleton.response(&state),
            events: self.sequence,
            chars: self.chars,
        };
        *self
            .finished
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(finished);
    }
}

impl ChatStreamWriter for ResponsesStream {
    fn ended(&self) -> bool {
        self.ended
    }

    fn name_model(&mut self, model: &str) {
        if !self.started {
            model.clone_into(&mut self.model);
        }
    }

    fn begin(&mut self, out: &mut Vec<u8>) {
        self.start(out);
    }

    fn write_reasoning(&mut self, text: &str, out: &mut Vec<u8>) {
        self.reasoning(text, out);
    }

    fn write_text(&mut self, text: &str, out: &mut Vec<u8>) {
        self.text(text, out);
    }

    fn write_tool_call(&mut self, call: &Value, out: &mut Vec<u8>) {
        self.tool_call(call, out);
    }

    fn keep_usage(&mut self, usage: &Value) {
        self.usage = Some(usage.clone());
    }

    fn keep_finish(&mut self, choice: &Value) {
        self.finish_reason = choice["finish_reason"].as_str().map(str::to_owned);
    }

    fn finish(&mut self, out: &mut Vec<u8>) {
        if self.ended {
            return;
        }
        let status = Status::of_finish(self.finish_reason.as_deref());
        self.end(status, None, out);
    }

    fn error(&mut self, message: &str, out: &mut Vec<u8>) {
        if self.ended {
            return;
        }
        self.end(Status::Failed, Some(message), out);
    }

    /// Nothing: the Responses API has no keep-alive event, and Codex waits five minutes.
    fn keep_alive(&mut self, _out: &mut Vec<u8>) {}
}

#[cfg(test)]
mod tests {

    use super::*;

    fn writer() -> (ResponsesStream, FinishedSlot) {
        let slot = FinishedSlot::default();
        let skeleton = Skeleton {
            id: "resp_s".into(),
            created_at: 1,
            suffix: "s".into(),
            echo: super::super::Echo::default(),
            tools: super::super::ToolNames {
                custom: vec!["apply_patch".into()],
                namespaced: Vec::new(),
            },
            prompt_chars: 8,
        };
        (ResponsesStream::new(skeleton, "m", slot.clone()), slot)
    }

    fn events(out: &[u8]) -> Vec<Value> {
        std::str::from_utf8(out)
            .unwrap()
            .split("\n\n")
            .filter_map(|e| e.split_once("data: "))
            .map(|(head, data)| {
                let value: Value = serde_json::from_str(data).unwrap();
                assert_eq!(head.strip_prefix("event: ").unwrap().trim(), value["type"]);
                value
            })
            .collect()
    }

    #[test]
    fn text_then_two_calls_make_three_items_each_closed_before_the_next() {
        let (mut w, slot) = writer();
        let mut out = Vec::new();
        for chunk in [
            json!({"model": "gpt-4.1", "choices": [{"delta": {"role": "assistant", "content": "Hi"}}]}),
            json!({"choices": [{"delta": {"tool_calls": [{"index": 0, "id": "c0", "function": {"name": "shell", "arguments": "{\"a\""}}]}}]}),
            json!({"choices": [{"delta": {"tool_calls": [{"index": 0, "function": {"arguments": ":1}"}}]}}]}),
            json!({"choices": [{"delta": {"tool_calls": [{"index": 1, "id": "c1", "function": {"name": "apply_patch", "arguments": "{\"input\":\"P\"}"}}]}}]}),
            json!({"choices": [{"delta": {}, "finish_reason": "tool_calls"}]}),
            json!({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}}),
        ] {
            w.chunk(&chunk, &mut out);
        }
        w.finish(&mut out);
        let events = events(&out);
        let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
        assert_eq!(
            kinds,
            [
                "response.created",
                "response.in_progress",
                "response.output_item.added",
                "response.content_part.added",
                "response.output_text.delta",
                "response.output_text.done",
                "response.content_part.done",
                "response.output_item.done",
                "response.output_item.added",
                "response.function_call_arguments.delta",
                "response.function_call_arguments.delta",
                "response.function_call_arguments.done",
                "response.output_item.done",
                "response.output_item.added",
                "response.custom_tool_call_input.delta",
                "response.custom_tool_call_input.done",
                "response.output_item.done",
                "response.completed",
            ]
        );
        for (n, event) in events.iter().enumerate() {
            assert_eq!(event["sequence_number"], n);
        }
        let completed = &events.last().unwrap()["response"];
        assert_eq!(completed["model"], "gpt-4.1");
        assert_eq!(completed["output"][1]["arguments"], "{\"a\":1}");
        assert_eq!(completed["output"][2]["input"], "P");
        assert_eq!(completed["usage"]["total_tokens"], 7);
        let finished = slot.lock().unwrap().take().unwrap();
        assert_eq!(finished.response, *completed);
        assert_eq!(finished.events as usize, events.len());
    }

    #[test]
    fn an_error_after_the_start_ends_the_stream_with_response_failed() {
        let (mut w, _) = writer();
        let mut out = Vec::new();
        w.chunk(
            &json!({"choices": [{"delta": {"content": "Hi"}}]}),
            &mut out,
        );
        w.error("the target went away", &mut out);
        w.finish(&mut out);
        let events = events(&out);
        let last = events.last().unwrap();
        assert_eq!(last["type"], "response.failed");
        assert_eq!(last["response"]["error"]["message"], "the target went away");
        assert_eq!(last["response"]["output"][0]["content"][0]["text"], "Hi");
        assert_eq!(
            events
                .iter()
                .filter(|e| e["type"].as_str().unwrap().ends_with("failed"))
                .count(),
            1
        );
    }

    #[test]
    fn a_text_delta_written_directly_is_the_event_built_as_json() {
        for text in ["Hello", "quote \" slash \\ newline \n", "é ☃ 😀", "\u{1}"] {
            let (mut w, _) = writer();
            let (mut direct, mut built) = (Vec::new(), Vec::new());
            w.text_delta(&mut direct, "msg_1", 3, text);
            w.sequence = 0;
            w.event(
                &mut built,
                "response.output_text.delta",
                json!({"item_id": "msg_1", "output_index": 3, "content_index": 0, "delta": text, "logprobs": []}),
            );
            assert_eq!(events(&direct), events(&built));
        }
    }
}
