//! Property tests for the parsers that take outside input: the stream relay (whatever the
//! bytes and however the network splits them) and the configuration (whatever the user
//! types). No input may make them panic; valid input must come out intact.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "in tests a failure should panic"
)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use clap::Parser;
use common::*;
use futures_util::{StreamExt, stream};
use llm_proxy::cli::Args;
use llm_proxy::formats::answer::Stamp;
use llm_proxy::formats::chat_stream::{Assembled, assemble_stream};
use llm_proxy::formats::sse::Framing;
use llm_proxy::normalize::RequestContext;
use llm_proxy::normalize::stream::Transcoder;
use llm_proxy::notes::StreamConclusion;
use llm_proxy::upstream::Credential;
use llm_proxy::upstream::sse::{Conclusion, RelayOptions, relay};
use proptest::prelude::*;
use serde_json::{Value, json};

fn run_relay(input: &[u8], cuts: &[usize], transcode: bool) -> Vec<u8> {
    run_relay_concluding(input, cuts, transcode).0
}

/// What the relay sends, and the answer it hands to the log (with the transcoder only).
fn run_relay_concluding(
    input: &[u8],
    cuts: &[usize],
    transcode: bool,
) -> (Vec<u8>, Option<Assembled>) {
    relay_with(input, cuts, transcode, Framing::Sse, Stamp::now())
}

/// The relay over `input` cut at `cuts`, framed as `framing`, with the transcoder (ids and
/// times from `stamp`) when `transcode`.
fn relay_with(
    input: &[u8],
    cuts: &[usize],
    transcode: bool,
    framing: Framing,
    stamp: Stamp,
) -> (Vec<u8>, Option<Assembled>) {
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
    cuts.sort_unstable();
    let mut pieces = Vec::new();
    let mut from = 0;
    for cut in cuts.into_iter().chain(std::iter::once(input.len())) {
        pieces.push(Ok::<_, std::io::Error>(Bytes::copy_from_slice(
            &input[from..cut],
        )));
        from = cut;
    }
    let context = RequestContext {
        model: "m".into(),
        include_usage: false,
        answer_format: None,
        stamp,
    };
    let slot = StreamConclusion::default();
    let options = RelayOptions {
        idle_timeout: Duration::from_secs(5),
        host: "t".into(),
        framing,
        transcoder: transcode.then(|| Transcoder::new(framing, &context)),
        note: None,
        conclusion: Some(Conclusion {
            slot: slot.clone(),
            credential: Arc::new(Credential::None),
        }),
        cut_off: Default::default(),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let out = runtime.block_on(async {
        let out: Vec<Bytes> = relay(stream::iter(pieces), options)
            .map(|r| r.unwrap())
            .collect()
            .await;
        out.concat()
    });
    (out, slot.take())
}

fn valid_events() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec("[a-zA-Z0-9 ]{0,12}", 0..12).prop_map(|texts| {
        let mut events: Vec<String> = texts
            .iter()
            .map(|t| {
                let chunk = serde_json::json!({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
                    "choices": [{"index": 0, "delta": {"content": t}, "finish_reason": null}]});
                format!("data: {chunk}\n\n")
            })
            .collect();
        events.push("data: [DONE]\n\n".to_owned());
        events
    })
}

/// What a generated foreign stream says: its text, and the arguments of its tool calls.
#[derive(Debug, Clone)]
struct Said {
    text: String,
    calls: Vec<Value>,
}

fn pieces() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec("[a-zA-Z0-9 .,\"\\\\é☃]{1,8}", 1..5)
}

fn arguments() -> impl Strategy<Value = Value> {
    prop::collection::btree_map("[a-z]{1,6}", "[a-z ]{0,8}", 0..3).prop_map(|map| {
        Value::Object(
            map.into_iter()
                .map(|(k, v)| (k, Value::String(v)))
                .collect(),
        )
    })
}

/// An Anthropic Messages stream: text blocks, thinking, and tool_use blocks whose input comes
/// in pieces, framed as the API frames them.
fn anthropic_stream() -> impl Strategy<Value = (String, Said)> {
    let block = prop_oneof![
        pieces().prop_map(|p| (0, p, Value::Null)),
        pieces().prop_map(|p| (1, p, Value::Null)),
        (arguments(), 1..4usize).prop_map(|(args, n)| (2, vec![n.to_string()], args)),
    ];
    (prop::collection::vec(block, 1..4), 0..500u64).prop_map(|(blocks, input_tokens)| {
        let event = |name: &str, data: Value| format!("event: {name}\ndata: {data}\n\n");
        let mut out = event("message_start", json!({"type": "message_start", "message": {"id": "msg_p", "type": "message",
            "role": "assistant", "model": "claude", "content": [], "stop_reason": null,
            "usage": {"input_tokens": input_tokens, "output_tokens": 1}}}));
        let mut said = Said { text: String::new(), calls: Vec::new() };
        for (i, (kind, texts, args)) in blocks.iter().enumerate() {
            match kind {
                0 | 1 => {
                    let (block, delta, field) = if *kind == 0 {
                        (json!({"type": "text", "text": ""}), "text_delta", "text")
                    } else {
                        (json!({"type": "thinking", "thinking": ""}), "thinking_delta", "thinking")
                    };
                    out += &event("content_block_start", json!({"type": "content_block_start", "index": i, "content_block": block}));
                    for text in texts {
                        if *kind == 0 {
                            said.text.push_str(text);
                        }
                        out += &event("content_block_delta", json!({"type": "content_block_delta", "index": i, "delta": {"type": delta, field: text}}));
                    }
                }
                _ => {
                    out += &event("content_block_start", json!({"type": "content_block_start", "index": i,
                        "content_block": {"type": "tool_use", "id": format!("toolu_{i}"), "name": "f", "input": {}}}));
                    let json = args.to_string();
                    let n: usize = texts[0].parse().unwrap();
                    let step = json.len().div_ceil(n).max(1);
                    let chars: Vec<char> = json.chars().collect();
                    for piece in chars.chunks(step) {
                        let piece: String = piece.iter().collect();
                        out += &event("content_block_delta", json!({"type": "content_block_delta", "index": i,
                            "delta": {"type": "input_json_delta", "partial_json": piece}}));
                    }
                    said.calls.push(args.clone());
                }
            }
            out += &event("content_block_stop", json!({"type": "content_block_stop", "index": i}));
        }
        let stop = if said.calls.is_empty() { "end_turn" } else { "tool_use" };
        out += &event("message_delta", json!({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": null}, "usage": {"output_tokens": 9}}));
        out += &event("message_stop", json!({"type": "message_stop"}));
        (out, said)
    })
}

/// A Gemini `streamGenerateContent?alt=sse` stream: whole responses so far, the last with the
/// finish reason and usage, maybe a function call.
fn gemini_stream() -> impl Strategy<Value = (String, Said)> {
    (pieces(), prop::option::of(arguments())).prop_map(|(texts, call)| {
        let mut said = Said { text: texts.concat(), calls: Vec::new() };
        let mut out = String::new();
        for text in &texts {
            let data = json!({"candidates": [{"content": {"role": "model", "parts": [{"text": text}]}, "index": 0}], "modelVersion": "gemini-2.5-flash"});
            out += &format!("data: {data}\r\n\r\n");
        }
        let mut parts = vec![];
        if let Some(args) = call {
            parts.push(json!({"functionCall": {"name": "f", "args": args}}));
            said.calls.push(args);
        }
        let last = json!({"candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}],
            "usageMetadata": {"promptTokenCount": 4, "candidatesTokenCount": 5, "totalTokenCount": 9}, "modelVersion": "gemini-2.5-flash"});
        out += &format!("data: {last}\r\n\r\n");
        (out, said)
    })
}

/// An Ollama `/api/chat` NDJSON stream, ending with its `done` line.
fn ollama_stream() -> impl Strategy<Value = (String, Said)> {
    (pieces(), prop::option::of(arguments())).prop_map(|(texts, call)| {
        let mut said = Said { text: texts.concat(), calls: Vec::new() };
        let mut out = String::new();
        for text in &texts {
            out += &format!("{}\n", json!({"model": "llama3.2", "created_at": "2025-01-01T00:00:00Z", "message": {"role": "assistant", "content": text}, "done": false}));
        }
        if let Some(args) = call {
            out += &format!("{}\n", json!({"model": "llama3.2", "created_at": "2025-01-01T00:00:00Z",
                "message": {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "f", "arguments": args}}]}, "done": false}));
            said.calls.push(args);
        }
        out += &format!("{}\n", json!({"model": "llama3.2", "created_at": "2025-01-01T00:00:00Z", "message": {"role": "assistant", "content": ""},
            "done": true, "done_reason": "stop", "prompt_eval_count": 4, "eval_count": 5}));
        (out, said)
    })
}

/// Checks a transcoded stream: every chunk valid against OpenAI's schema, ended by `[DONE]`,
/// its text and tool calls what the target said.
fn check_transcoded(output: &[u8], said: &Said) -> Result<(), TestCaseError> {
    let data = sse_data(&String::from_utf8_lossy(output));
    prop_assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
    let mut text = String::new();
    let mut arguments: Vec<String> = Vec::new();
    for chunk in &data[..data.len() - 1] {
        let chunk: Value = serde_json::from_str(chunk).unwrap();
        assert_schema("CreateChatCompletionStreamResponse", &chunk);
        let delta = &chunk["choices"][0]["delta"];
        text.push_str(delta["content"].as_str().unwrap_or_default());
        for call in delta["tool_calls"].as_array().into_iter().flatten() {
            let index = call["index"].as_u64().unwrap() as usize;
            if arguments.len() <= index {
                arguments.resize(index + 1, String::new());
            }
            arguments[index].push_str(call["function"]["arguments"].as_str().unwrap_or_default());
        }
    }
    prop_assert_eq!(&text, &said.text);
    let calls: Vec<Value> = arguments
        .iter()
        .map(|a| serde_json::from_str(a).unwrap())
        .collect();
    prop_assert_eq!(&calls, &said.calls);
    Ok(())
}

fn fixed_stamp() -> Stamp {
    Stamp {
        id: "chatcmpl-fixed".into(),
        created: 1_767_225_600,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// Generated Anthropic, Gemini and Ollama streams come out as valid OpenAI chunks saying
    /// what the target said, byte for byte the same wherever the network cut them.
    #[test]
    fn foreign_streams_translate_the_same_at_any_cuts(
        (input, said, framing) in prop_oneof![
            anthropic_stream().prop_map(|(i, s)| (i, s, Framing::Sse)),
            gemini_stream().prop_map(|(i, s)| (i, s, Framing::Sse)),
            ollama_stream().prop_map(|(i, s)| (i, s, Framing::Ndjson)),
        ],
        cuts in prop::collection::vec(any::<usize>(), 1..8),
    ) {
        let (whole, _) = relay_with(input.as_bytes(), &[], true, framing, fixed_stamp());
        check_transcoded(&whole, &said)?;
        let (cut, _) = relay_with(input.as_bytes(), &cuts, true, framing, fixed_stamp());
        prop_assert_eq!(String::from_utf8_lossy(&cut), String::from_utf8_lossy(&whole));
    }

    /// A valid OpenAI stream arrives exactly as sent, wherever the network cut it.
    #[test]
    fn valid_streams_pass_intact_at_any_cuts(events in valid_events(), cuts in prop::collection::vec(any::<usize>(), 0..8), transcode in any::<bool>()) {
        let input = events.concat();
        let (output, concluded) = run_relay_concluding(input.as_bytes(), &cuts, transcode);
        prop_assert_eq!(String::from_utf8(output).unwrap(), input.clone());
        if transcode {
            // The log's answer, from the transcoder's own reading, is the stream's text.
            prop_assert_eq!(concluded, Some(assemble_stream(input.as_bytes())));
        }
    }

    /// Arbitrary bytes never make the relay panic, and what it sends is whole events: each
    /// either relayed as it came or a final error event.
    #[test]
    fn arbitrary_bytes_never_break_the_relay(input in prop::collection::vec(any::<u8>(), 0..512), cuts in prop::collection::vec(any::<usize>(), 0..6)) {
        let output = run_relay(&input, &cuts, false);
        let text = String::from_utf8_lossy(&output);
        prop_assert!(output.is_empty() || output.ends_with(b"\n\n") || output.ends_with(b"\r\n\r\n") || output.ends_with(b"\r\r"));
        if let Some(last) = text.rsplit("data: ").next().filter(|l| l.contains("upstream_stream_error")) {
            let value: Value = serde_json::from_str(last.trim()).unwrap();
            assert_envelope(&value);
        }
        // With the transcoder every event sent is JSON (a chunk or an error) or [DONE], and the
        // answer the relay hands to the log is the one read back from what it sent.
        let (transcoded, concluded) = run_relay_concluding(&input, &cuts, true);
        prop_assert_eq!(concluded, Some(assemble_stream(&transcoded)));
        for data in sse_data(&String::from_utf8_lossy(&transcoded)) {
            prop_assert!(data == "[DONE]" || serde_json::from_str::<Value>(&data).is_ok(), "{}", data);
        }
    }

    /// Whatever a user puts in the variables, the configuration is built or refused with an
    /// error naming a variable; it never panics.
    #[test]
    fn configuration_never_panics(values in prop::collection::vec(".{0,24}", 12)) {
        let flags = [
            "--port", "--host", "--base-url", "--access-token", "--target-endpoint", "--target-api-key",
            "--oauth-token-endpoint", "--oauth-client-id", "--oauth-client-secret", "--cors-origins",
            "--allowed-hosts", "--max-request-body-mb",
        ];
        let mut argv = vec!["llm-proxy".to_owned()];
        for (flag, value) in flags.iter().zip(&values) {
            argv.push(format!("{flag}={value}"));
        }
        if let Ok(args) = Args::try_parse_from(&argv)
            && let Err(err) = args.into_config()
        {
            let message = err.to_string();
            prop_assert!(message.contains("PROXY_") || message.contains("TARGET_") || message.contains("OAUTH_"), "{}", message);
        }
    }
}
