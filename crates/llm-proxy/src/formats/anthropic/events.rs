//! A chat completion stream written as a Messages event stream, chunk by chunk: every content
//! block opened with `content_block_start` before its first delta, closed exactly once, given
//! a new index, and the stream ended by `message_delta` (stop reason, usage) and
//! `message_stop`, the grammar Claude Code holds a stream to.

use std::collections::HashMap;
use std::fmt::Write as _;

use serde_json::{Value, json};

use super::client::{stop_of, tool_use_id, usage};
use crate::formats::chat_stream::ChatStreamWriter;

/// The kind of the block open now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Block {
    Text,
    Thinking,
    ToolUse,
}

#[derive(Debug)]
pub struct MessagesStream {
    id: String,
    model: String,
    prompt_estimate: u64,
    stop_sequences: Vec<String>,
    started: bool,
    /// The open block and its index.
    open: Option<(Block, u32)>,
    next_index: u32,
    /// Chat tool call index to its block index.
    calls: HashMap<u64, u32>,
    finish: Option<Value>,
    usage: Option<Value>,
    ended: bool,
}

impl MessagesStream {
    /// `id` is the message's (`msg_…`); `model` until the target names its own;
    /// `prompt_estimate` for `message_start` (the real count comes with the answer's usage, in
    /// `message_delta`).
    pub fn new(id: String, model: &str, prompt_estimate: u64, stop_sequences: Vec<String>) -> Self {
        Self {
            id,
            model: model.to_owned(),
            prompt_estimate,
            stop_sequences,
            started: false,
            open: None,
            next_index: 0,
            calls: HashMap::new(),
            finish: None,
            usage: None,
            ended: false,
        }
    }

    /// A tool call's piece: its first opens a `tool_use` block, the rest add arguments.
    fn tool_call(&mut self, call: &Value, out: &mut Vec<u8>) {
        let key = call["index"].as_u64().unwrap_or(0);
        let fragment = call["function"]["arguments"].as_str().unwrap_or_default();
        let index = match self.calls.get(&key) {
            Some(&index) if self.open == Some((Block::ToolUse, index)) => index,
            // A call's arguments after another block began: chat streams do not interleave
            // one call with others, so this is a late fragment; it goes to its own block only
            // while that block is open.
            Some(_) => return,
            None => {
                self.close(out);
                let index = self.next_index;
                self.next_index += 1;
                self.calls.insert(key, index);
                self.open = Some((Block::ToolUse, index));
                let fallback = || format!("toolu_{}_{index}", self.id.trim_start_matches("msg_"));
                let id = tool_use_id(call["id"].as_str().unwrap_or_default(), fallback);
                let name = call["function"]["name"].as_str().unwrap_or_default();
                event(
                    out,
                    "content_block_start",
                    &json!({"type": "content_block_start", "index": index,
                    "content_block": {"type": "tool_use", "id": id, "name": name, "input": {}}}),
                );
                index
            }
        };
        if !fragment.is_empty() {
            event(
                out,
                "content_block_delta",
                &json!({"type": "content_block_delta", "index": index,
                "delta": {"type": "input_json_delta", "partial_json": fragment}}),
            );
        }
    }

    /// The block of `kind` to write into: the open one when it is of that kind, else a new one
    /// (started with `start_event(index)`) after closing the open one.
    fn block(
        &mut self,
        kind: Block,
        out: &mut Vec<u8>,
        start_event: impl FnOnce(u32) -> Value,
    ) -> u32 {
        if let Some((open, index)) = self.open
            && open == kind
        {
            return index;
        }
        self.close(out);
        let index = self.next_index;
        self.next_index += 1;
        self.open = Some((kind, index));
        event(out, "content_block_start", &start_event(index));
        index
    }

    fn close(&mut self, out: &mut Vec<u8>) {
        if let Some((_, index)) = self.open.take() {
            event(
                out,
                "content_block_stop",
                &json!({"type": "content_block_stop", "index": index}),
            );
        }
    }

    fn start(&mut self, out: &mut Vec<u8>) {
        if self.started {
            return;
        }
        self.started = true;
        event(
            out,
            "message_start",
            &json!({"type": "message_start", "message": {
            "id": self.id, "type": "message", "role": "assistant", "model": self.model, "content": [],
            "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": self.prompt_estimate, "output_tokens": 1}}}),
        );
    }
}

impl ChatStreamWriter for MessagesStream {
    /// `message_stop` or `error` written.
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

    fn write_reasoning(&mut self, thinking: &str, out: &mut Vec<u8>) {
        let index = self.block(Block::Thinking, out, |index| {
            json!({"type": "content_block_start", "index": index, "content_block": {"type": "thinking", "thinking": "", "signature": ""}})
        });
        event(
            out,
            "content_block_delta",
            &json!({"type": "content_block_delta", "index": index, "delta": {"type": "thinking_delta", "thinking": thinking}}),
        );
    }

    fn write_text(&mut self, text: &str, out: &mut Vec<u8>) {
        let index = self.block(Block::Text, out, |index| {
            json!({"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}})
        });
        text_delta(out, index, text);
    }

    fn write_tool_call(&mut self, call: &Value, out: &mut Vec<u8>) {
        self.tool_call(call, out);
    }

    fn keep_usage(&mut self, usage: &Value) {
        self.usage = Some(usage.clone());
    }

    fn keep_finish(&mut self, choice: &Value) {
        self.finish = Some(choice.clone());
    }

    /// The target is silent: a `ping`, or first the `message_start` that must come before
    /// anything else (the SDKs refuse a stream that begins otherwise).
    fn keep_alive(&mut self, out: &mut Vec<u8>) {
        if self.ended {
            return;
        }
        if self.started {
            out.extend_from_slice(PING);
        } else {
            self.start(out);
        }
    }

    /// The end of the chat stream: the open block closed, the stop reason and the usage.
    fn finish(&mut self, out: &mut Vec<u8>) {
        if self.ended {
            return;
        }
        self.start(out);
        self.close(out);
        let choice = self
            .finish
            .take()
            .unwrap_or_else(|| json!({"finish_reason": "stop"}));
        let (stop_reason, stop_sequence) = stop_of(&choice, &self.stop_sequences);
        let mut usage = self
            .usage
            .take()
            .map_or_else(|| json!({"output_tokens": 0}), |u| usage(&u));
        if usage.get("input_tokens").is_none() {
            usage["input_tokens"] = json!(self.prompt_estimate);
        }
        event(
            out,
            "message_delta",
            &json!({"type": "message_delta",
            "delta": {"stop_reason": stop_reason, "stop_sequence": stop_sequence}, "usage": usage}),
        );
        event(out, "message_stop", &json!({"type": "message_stop"}));
        self.ended = true;
    }

    /// An error after the stream began: Anthropic's in-stream `error` event ends it.
    fn error(&mut self, message: &str, out: &mut Vec<u8>) {
        if self.ended {
            return;
        }
        event(
            out,
            "error",
            &json!({"type": "error", "error": {"type": "api_error", "message": message}}),
        );
        self.ended = true;
    }
}

/// A keep-alive for a silent target: Claude Code gives up after five minutes without bytes.
pub const PING: &[u8] = b"event: ping\ndata: {\"type\":\"ping\"}\n\n";

/// A `text_delta` event, written without building it (a test holds it to the built one).
fn text_delta(out: &mut Vec<u8>, index: u32, text: &str) {
    out.extend_from_slice(
        b"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":",
    );
    out.extend_from_slice(index.to_string().as_bytes());
    out.extend_from_slice(b",\"delta\":{\"type\":\"text_delta\",\"text\":");
    // Serializing a string into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, text);
    out.extend_from_slice(b"}}\n\n");
}

fn event(out: &mut Vec<u8>, name: &str, data: &Value) {
    let mut head = String::with_capacity(16 + name.len());
    let _ = write!(head, "event: {name}\ndata: ");
    out.extend_from_slice(head.as_bytes());
    let _ = serde_json::to_writer(&mut *out, data);
    out.extend_from_slice(b"\n\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_text_delta_written_directly_is_the_event_built_as_json() {
        for text in ["Hello", "quote \" slash \\ newline \n", "é ☃ 😀", "\u{1}"] {
            let (mut direct, mut built) = (Vec::new(), Vec::new());
            text_delta(&mut direct, 7, text);
            event(
                &mut built,
                "content_block_delta",
                &json!({"type": "content_block_delta", "index": 7, "delta": {"type": "text_delta", "text": text}}),
            );
            let parse = |bytes: &[u8]| -> Value {
                let text = std::str::from_utf8(bytes).unwrap();
                serde_json::from_str(text.split_once("data: ").unwrap().1.trim()).unwrap()
            };
            assert_eq!(parse(&direct), parse(&built));
            assert!(
                direct.starts_with(b"event: content_block_delta\ndata: ")
                    && direct.ends_with(b"\n\n")
            );
        }
    }
}
