//! Normalization: real shapes of every format, non-stream and stream, each checked against
//! OpenAI's schema; streams transcoded identically whatever the network splits; the fast path
//! returning the target's bytes; and property tests that no input makes it panic or emit
//! anything invalid.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "in tests a failure should panic"
)]

mod common;

use std::time::Duration;

use axum::http::StatusCode as MockStatus;
use bytes::Bytes;
use common::*;
use futures_util::{StreamExt, stream};
use llm_proxy::formats::sse::Framing;
use llm_proxy::normalize::stream::Transcoder;
use llm_proxy::normalize::{self, Expected, RequestContext};
use llm_proxy::upstream::sse::{RelayOptions, relay};
use proptest::prelude::*;
use serde_json::{Value, json};

fn context(include_usage: bool) -> RequestContext {
    RequestContext {
        model: "requested-model".into(),
        include_usage,
    }
}

fn chat(name: &str) -> Value {
    let body = Bytes::from(fixture(&format!("formats/{name}")));
    let normalized = normalize::response(&body, Expected::ChatCompletion, &context(false)).unwrap();
    let value: Value = serde_json::from_slice(&normalized.body).unwrap();
    assert_schema("CreateChatCompletionResponse", &value);
    value
}

fn message(value: &Value) -> &Value {
    &value["choices"][0]["message"]
}

#[test]
fn anthropic_messages() {
    let v = chat("anthropic.json");
    assert_eq!(v["id"], "msg_01XFDUDYJgAACzvnptvVoYEL");
    assert_eq!(v["model"], "claude-sonnet-4-5");
    assert_eq!(message(&v)["content"], "Let me check.");
    assert_eq!(
        message(&v)["reasoning_content"],
        "The user wants the weather."
    );
    let call = &message(&v)["tool_calls"][0];
    assert_eq!(call["id"], "toolu_01A09q90qw90lq917835lq9");
    assert_eq!(call["function"]["name"], "get_weather");
    assert_eq!(
        serde_json::from_str::<Value>(call["function"]["arguments"].as_str().unwrap()).unwrap(),
        json!({"city": "Paris"})
    );
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(v["usage"]["prompt_tokens"], 120);
    assert_eq!(v["usage"]["completion_tokens"], 40);
    assert_eq!(v["usage"]["prompt_tokens_details"]["cached_tokens"], 20);
}

#[test]
fn gemini_text_tools_and_blocked_prompts() {
    let v = chat("gemini.json");
    assert_eq!(message(&v)["content"], "Hello there");
    assert_eq!(v["choices"][0]["finish_reason"], "length");
    assert_eq!(
        v["usage"],
        json!({"prompt_tokens": 4, "completion_tokens": 9, "total_tokens": 13})
    );
    assert_eq!(v["model"], "gemini-2.0-flash");

    let tool = chat("gemini-tool.json");
    let call = &message(&tool)["tool_calls"][0];
    assert!(
        call["id"].as_str().unwrap().starts_with("call_"),
        "ids are generated"
    );
    assert_eq!(
        serde_json::from_str::<Value>(call["function"]["arguments"].as_str().unwrap()).unwrap(),
        json!({"city": "Paris", "unit": "c"})
    );
    assert_eq!(tool["choices"][0]["finish_reason"], "tool_calls");

    let blocked = chat("gemini-blocked.json");
    assert_eq!(blocked["choices"][0]["finish_reason"], "content_filter");
    assert!(
        message(&blocked)["refusal"]
            .as_str()
            .unwrap()
            .contains("SAFETY")
    );
}

#[test]
fn cohere_tgi_ollama_and_bedrock() {
    let v2 = chat("cohere-v2.json");
    assert_eq!(message(&v2)["content"], "Hi there");
    assert_eq!(v2["usage"]["prompt_tokens"], 71);
    assert_eq!(
        v2["model"], "requested-model",
        "the model is filled from the request"
    );
    let v1 = chat("cohere-v1.json");
    assert_eq!(message(&v1)["content"], "Hello from Cohere");
    assert_eq!(v1["id"], "g-123");

    let tgi = chat("tgi.json");
    assert_eq!(message(&tgi)["content"], "Deep learning is a subset");
    assert_eq!(tgi["choices"][0]["finish_reason"], "length");
    assert_eq!(tgi["usage"]["completion_tokens"], 5);
    assert_eq!(
        message(&chat("tgi-list.json"))["content"],
        "Serverless answer"
    );

    let ollama = chat("ollama-chat.json");
    assert_eq!(
        ollama["usage"],
        json!({"prompt_tokens": 26, "completion_tokens": 282, "total_tokens": 308})
    );
    assert_eq!(
        message(&ollama)["tool_calls"][0]["function"]["arguments"],
        "{\"city\":\"Paris\"}"
    );
    assert_eq!(ollama["choices"][0]["finish_reason"], "tool_calls");
    let generate = chat("ollama-generate.json");
    assert_eq!(message(&generate)["content"], "The sky is blue.");
    assert_eq!(generate["choices"][0]["finish_reason"], "length");

    let bedrock = chat("bedrock.json");
    assert_eq!(message(&bedrock)["content"], "Hi");
    assert_eq!(message(&bedrock)["tool_calls"][0]["id"], "tooluse_abc");
    assert_eq!(bedrock["choices"][0]["finish_reason"], "tool_calls");
}

#[test]
fn openai_like_bodies_with_gaps_are_repaired() {
    let vllm = chat("vllm.json");
    assert!(
        message(&vllm).get("annotations").is_none() && message(&vllm).get("tool_calls").is_none()
    );
    assert_eq!(message(&vllm)["reasoning_content"], "Because.");
    assert_eq!(message(&vllm)["refusal"], Value::Null);

    let gaps = chat("openai-gaps.json");
    assert_eq!(message(&gaps)["content"], "Just text, no message");
    assert_eq!(gaps["choices"][0]["finish_reason"], "stop");
    assert_eq!(gaps["usage"]["total_tokens"], 7);
    assert!(gaps["id"].as_str().unwrap().starts_with("chatcmpl-"));

    let parts = chat("openai-parts.json");
    assert_eq!(message(&parts)["content"], "Part one, part two");
    assert_eq!(
        message(&parts)["tool_calls"][0]["function"]["arguments"],
        "{\"q\":\"x\"}"
    );
    assert_eq!(parts["choices"][0]["finish_reason"], "tool_calls");
}

#[test]
fn a_valid_body_passes_as_the_targets_own_bytes() {
    for name in ["formats/azure.json", "openai/chat-completion.json"] {
        let body = Bytes::from(fixture(name));
        let normalized =
            normalize::response(&body, Expected::ChatCompletion, &context(false)).unwrap();
        assert!(
            normalized.changes.is_none(),
            "{name}: {:?}",
            normalized.changes
        );
        assert_eq!(
            normalized.body.as_ptr(),
            body.as_ptr(),
            "{name}: not even copied"
        );
    }
    let azure: Value = serde_json::from_str(&fixture("formats/azure.json")).unwrap();
    assert!(
        azure["prompt_filter_results"].is_array(),
        "unknown fields are kept"
    );
}

/// The fast check says "valid" exactly when the full repair pass would change nothing: on the
/// recorded bodies, and on the OpenAI recording with each field removed, nulled or retyped.
#[test]
fn the_fast_path_agrees_with_the_repair_pass() {
    let agree = |body: &[u8], label: &str| {
        let fast = normalize::is_valid_chat_completion(body);
        let slow = normalize::chat_changes(body, "m")
            .map(|c| c.is_empty())
            .unwrap_or(false);
        assert_eq!(
            fast,
            slow,
            "{label}: fast {fast}, repair needs nothing {slow}: {}",
            String::from_utf8_lossy(body)
        );
    };
    let mut names = vec!["openai/chat-completion.json".to_owned()];
    for entry in std::fs::read_dir(format!(
        "{}/tests/fixtures/formats",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
    {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if name.ends_with(".json") {
            names.push(format!("formats/{name}"));
        }
    }
    for name in &names {
        agree(fixture(name).as_bytes(), name);
    }
    let valid: Value = serde_json::from_str(&fixture("openai/chat-completion.json")).unwrap();
    let paths: [&[&str]; 18] = [
        &["choices", "0"],
        &["choices", "0", "message"],
        &["id"],
        &["object"],
        &["created"],
        &["model"],
        &["choices"],
        &["usage"],
        &["system_fingerprint"],
        &["usage", "total_tokens"],
        &["usage", "prompt_tokens_details"],
        &["usage", "prompt_tokens_details", "cached_tokens"],
        &["usage", "completion_tokens_details"],
        &["choices", "0", "index"],
        &["choices", "0", "logprobs"],
        &["choices", "0", "finish_reason"],
        &["choices", "0", "message", "refusal"],
        &["choices", "0", "message", "content"],
    ];
    for (label, body) in mutations(&valid, &paths) {
        agree(body.to_string().as_bytes(), &label);
    }
}

/// `value` with each of `paths` removed, nulled or given a value of each other kind (and a
/// few that look right in one place and wrong in another), labelled for failure messages.
fn mutations(value: &Value, paths: &[&[&str]]) -> Vec<(String, Value)> {
    let replacements = [
        None,
        Some(Value::Null),
        Some(json!(7)),
        Some(json!(-1.5)),
        Some(json!("")),
        Some(json!("stop")),
        Some(json!("eos")),
        Some(json!("assistant")),
        Some(json!([])),
        Some(json!([{"text": "a"}])),
        Some(json!({})),
        Some(json!({"message": "boom"})),
    ];
    let mut out = Vec::new();
    for path in paths {
        for replacement in &replacements {
            if let Some(changed) = mutated(value, path, replacement.as_ref()) {
                out.push((format!("{path:?} = {replacement:?}"), changed));
            }
        }
    }
    out
}

/// `value` with the field or list item at `path` removed (`None`) or replaced; `None` when
/// the path does not lead anywhere.
fn mutated(value: &Value, path: &[&str], replacement: Option<&Value>) -> Option<Value> {
    let mut out = value.clone();
    let (last, parents) = path.split_last()?;
    let mut node = &mut out;
    for key in parents {
        node = match key.parse::<usize>() {
            Ok(i) => node.get_mut(i)?,
            Err(_) => node.get_mut(*key)?,
        };
    }
    match (node, last.parse::<usize>(), replacement) {
        (Value::Array(items), Ok(i), None) if i < items.len() => {
            items.remove(i);
        }
        (Value::Array(items), Ok(i), Some(new)) if i < items.len() => items[i] = new.clone(),
        (Value::Object(map), _, None) => {
            map.remove(*last);
        }
        (Value::Object(map), _, Some(new)) => {
            map.insert((*last).to_owned(), new.clone());
        }
        _ => return None,
    }
    Some(out)
}

/// The SSE events of a recorded stream, each with its blank line.
fn sse_events(text: &str) -> Vec<String> {
    text.split_inclusive("\n\n")
        .filter(|e| !e.trim().is_empty())
        .map(str::to_owned)
        .collect()
}

/// Feeds `events` to a transcoder with the chunk fast path and to one without, and requires the
/// same output for every event, the same ending and the same notes.
fn streams_agree(events: &[String], label: &str) {
    let mut fast = Transcoder::new(Framing::Sse, &context(true));
    let mut slow = Transcoder::new(Framing::Sse, &context(true)).without_fast_path();
    for event in events {
        assert_eq!(
            fast.event(event.as_bytes()),
            slow.event(event.as_bytes()),
            "{label}: {event}"
        );
    }
    // The closing may carry a usage chunk built from what each one kept (id, created, model).
    assert_eq!(fast.finish(), slow.finish(), "{label}: the ending");
    assert_eq!(
        fast.changes().map(|c| serde_json::to_value(c).unwrap()),
        slow.changes().map(|c| serde_json::to_value(c).unwrap()),
        "{label}: the notes"
    );
}

/// Plain OpenAI chunks skip the JSON tree: the recorded streams and the recorded chunk with
/// each field removed, nulled or retyped must come out exactly as the full repair makes them.
#[test]
fn the_chunk_fast_path_agrees_with_the_full_repair() {
    let recorded = sse_events(&fixture("openai/chat-completion-stream.sse"));
    assert!(
        recorded[1..]
            .iter()
            .filter(|e| !e.contains("[DONE]"))
            .all(|e| normalize::plain_chunk(e.as_bytes()).is_some()),
        "the recorded chunks take the fast path"
    );
    streams_agree(&recorded, "openai recording");
    // OpenAI-like recordings only: a foreign stream gets a new random id in each transcoder.
    for name in ["azure.sse", "openai-no-done.sse", "llamacpp.sse"] {
        streams_agree(&sse_events(&fixture(&format!("formats/{name}"))), name);
    }

    let chunk: Value =
        serde_json::from_str(recorded[1].trim().strip_prefix("data: ").unwrap()).unwrap();
    let paths: [&[&str]; 17] = [
        &["choices", "0"],
        &["id"],
        &["object"],
        &["created"],
        &["model"],
        &["choices"],
        &["usage"],
        &["error"],
        &["system_fingerprint"],
        &["choices", "0", "index"],
        &["choices", "0", "delta"],
        &["choices", "0", "logprobs"],
        &["choices", "0", "finish_reason"],
        &["choices", "0", "delta", "role"],
        &["choices", "0", "delta", "content"],
        &["choices", "0", "delta", "refusal"],
        &["choices", "0", "delta", "tool_calls"],
    ];
    for (label, mutated) in mutations(&chunk, &paths) {
        // The mutated chunk comes second, once the stream is known to be OpenAI's, and is
        // followed by the rest of the recording.
        let mut events = vec![recorded[0].clone(), format!("data: {mutated}\n\n")];
        events.extend_from_slice(&recorded[1..]);
        streams_agree(&events, &label);
    }
}

#[test]
fn changes_are_recorded() {
    let body = Bytes::from(fixture("formats/anthropic.json"));
    let changes = normalize::response(&body, Expected::ChatCompletion, &context(false))
        .unwrap()
        .changes
        .unwrap();
    assert_eq!(changes.format, "anthropic");
    assert!(
        changes
            .changed
            .iter()
            .any(|c| c.contains("translated from anthropic"))
    );
}

#[test]
fn completions_embeddings_and_models() {
    let ctx = context(false);
    let completion = |body: Value| {
        let n = normalize::response(&Bytes::from(body.to_string()), Expected::Completion, &ctx)
            .unwrap();
        let v: Value = serde_json::from_slice(&n.body).unwrap();
        assert_schema("CreateCompletionResponse", &v);
        v
    };
    assert_eq!(
        completion(json!({"choices": [{"message": {"content": "from message"}}]}))["choices"][0]["text"],
        "from message"
    );
    assert_eq!(
        completion(
            json!({"generated_text": "from tgi", "details": {"finish_reason": "eos_token"}})
        )["choices"][0]["text"],
        "from tgi"
    );
    assert_eq!(
        completion(json!({"response": "from ollama", "done": true}))["object"],
        "text_completion"
    );

    let embeddings = |body: Value, base64: bool| {
        let n = normalize::response(
            &Bytes::from(body.to_string()),
            Expected::Embeddings { base64 },
            &ctx,
        )
        .unwrap();
        serde_json::from_slice::<Value>(&n.body).unwrap()
    };
    let ollama = embeddings(
        json!({"model": "nomic", "embeddings": [[0.5, 0.25], [1.0, 0.0]]}),
        false,
    );
    assert_schema("CreateEmbeddingResponse", &ollama);
    assert_eq!(ollama["data"][1]["embedding"], json!([1.0, 0.0]));
    assert_schema(
        "CreateEmbeddingResponse",
        &embeddings(json!({"embedding": [0.1, 0.2]}), false),
    );
    assert_schema(
        "CreateEmbeddingResponse",
        &embeddings(json!([[0.1, 0.2], [0.3, 0.4]]), false),
    );
    let b64 = embeddings(json!([0.5, 0.25]), true);
    assert_eq!(
        b64["data"][0]["embedding"], "AAAAPwAAgD4=",
        "little-endian f32, as OpenAI encodes"
    );

    let models = |body: Value| {
        let n =
            normalize::response(&Bytes::from(body.to_string()), Expected::Models, &ctx).unwrap();
        let v: Value = serde_json::from_slice(&n.body).unwrap();
        assert_schema("ListModelsResponse", &v);
        v
    };
    let tags = models(
        json!({"models": [{"name": "llama3.2:latest", "modified_at": "2024-06-04T14:38:31.83753-07:00", "size": 1}]}),
    );
    assert_eq!(tags["data"][0]["id"], "llama3.2:latest");
    assert_eq!(tags["data"][0]["created"], 1_717_511_911);
    assert_eq!(models(json!(["a", "b"]))["data"][1]["id"], "b");
    assert_eq!(
        models(json!({"data": [{"id": "m"}]}))["data"][0]["owned_by"],
        "organization-owner"
    );
}

#[test]
fn unrecognisable_bodies_are_errors_not_guesses() {
    let ctx = context(false);
    assert!(
        normalize::response(
            &Bytes::from_static(b"<html>"),
            Expected::ChatCompletion,
            &ctx
        )
        .is_err()
    );
    assert!(
        normalize::response(
            &Bytes::from_static(b"{\"weird\":1}"),
            Expected::ChatCompletion,
            &ctx
        )
        .is_err()
    );
}

/// Runs `bytes` through the relay as the network might deliver it: cut at `splits`.
async fn transcode(
    bytes: &[u8],
    framing: Framing,
    splits: &[usize],
    include_usage: bool,
) -> String {
    let mut pieces = Vec::new();
    let mut from = 0;
    for &at in splits.iter().chain(std::iter::once(&bytes.len())) {
        pieces.push(Ok::<_, std::io::Error>(Bytes::copy_from_slice(
            &bytes[from..at],
        )));
        from = at;
    }
    let options = RelayOptions {
        idle_timeout: Duration::from_secs(5),
        host: "target.test".into(),
        framing,
        transcoder: Some(Transcoder::new(framing, &context(include_usage))),
        note: None,
        cut_off: Default::default(),
    };
    let out: Vec<Bytes> = relay(stream::iter(pieces), options)
        .map(|r| r.unwrap())
        .collect()
        .await;
    String::from_utf8(out.concat()).unwrap()
}

/// Checks every event of an OpenAI stream and returns the chunks.
fn valid_stream(text: &str) -> Vec<Value> {
    let events = sse_data(text);
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"), "{text}");
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    let id = &chunks[0]["id"];
    for chunk in &chunks {
        assert_schema("CreateChatCompletionStreamResponse", chunk);
        assert_eq!(&chunk["id"], id, "one id for the whole stream");
    }
    chunks
}

fn content(chunks: &[Value]) -> String {
    chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect()
}

const STREAMS: [(&str, Framing, &str); 7] = [
    ("anthropic.sse", Framing::Sse, "Let me check."),
    ("gemini.sse", Framing::Sse, "Hello"),
    ("ollama.ndjson", Framing::Ndjson, "The sky"),
    ("tgi.sse", Framing::Sse, "Deep learning"),
    ("cohere-v2.sse", Framing::Sse, "Hi there"),
    ("azure.sse", Framing::Sse, "Azure says hi"),
    ("openai-no-done.sse", Framing::Sse, "Old TGI"),
];

#[tokio::test]
async fn foreign_streams_become_openai_chunks_whatever_the_splits() {
    for (name, framing, expected) in STREAMS {
        let bytes = fixture(&format!("formats/{name}")).into_bytes();
        let whole = transcode(&bytes, framing, &[], true).await;
        let chunks = valid_stream(&whole);
        assert_eq!(
            chunks[0]["choices"][0]["delta"]["role"], "assistant",
            "{name}: the role comes first"
        );
        assert_eq!(content(&chunks), expected, "{name}");
        let finishes: Vec<&Value> = chunks
            .iter()
            .filter_map(|c| {
                c["choices"][0]["finish_reason"]
                    .as_str()
                    .map(|_| &c["choices"][0]["finish_reason"])
            })
            .collect();
        assert_eq!(finishes.len(), 1, "{name}: one finish reason");
        // Ids and times are made per run; compare with them masked.
        let mask = |text: &str| {
            let first: Value = serde_json::from_str(&sse_data(text)[0]).unwrap();
            let id = first["id"].as_str().unwrap().to_owned();
            let created = format!("\"created\":{}", first["created"]);
            text.replace(&id, "ID").replace(&created, "\"created\":0")
        };
        let reference = mask(&whole);
        for split in 1..bytes.len() {
            let split_text = transcode(&bytes, framing, &[split], true).await;
            assert_eq!(mask(&split_text), reference, "{name} split at {split}");
        }
    }
}

#[tokio::test]
async fn anthropic_tool_calls_thinking_and_usage_in_a_stream() {
    let text = transcode(
        fixture("formats/anthropic.sse").as_bytes(),
        Framing::Sse,
        &[],
        true,
    )
    .await;
    let chunks = valid_stream(&text);
    let reasoning: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["reasoning_content"].as_str())
        .collect();
    assert_eq!(reasoning, "Weather lookup.");
    let calls: Vec<&Value> = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["tool_calls"].get(0))
        .collect();
    assert_eq!(calls[0]["id"], "toolu_1");
    assert_eq!(calls[0]["function"]["name"], "get_weather");
    let arguments: String = calls
        .iter()
        .filter_map(|c| c["function"]["arguments"].as_str())
        .collect();
    assert_eq!(
        serde_json::from_str::<Value>(&arguments).unwrap(),
        json!({"city": "Paris"})
    );
    assert!(calls.iter().all(|c| c["index"] == 0));
    let finish = chunks
        .iter()
        .find_map(|c| c["choices"][0]["finish_reason"].as_str())
        .unwrap();
    assert_eq!(finish, "tool_calls");
    let usage = &chunks.last().unwrap()["usage"];
    assert_eq!(
        usage,
        &json!({"prompt_tokens": 25, "completion_tokens": 15, "total_tokens": 40})
    );
    assert_eq!(chunks.last().unwrap()["choices"], json!([]));

    // Without include_usage there is no usage chunk.
    let text = transcode(
        fixture("formats/anthropic.sse").as_bytes(),
        Framing::Sse,
        &[],
        false,
    )
    .await;
    assert!(valid_stream(&text).iter().all(|c| c.get("usage").is_none()));
}

#[tokio::test]
async fn an_error_event_in_a_foreign_stream_ends_it_as_an_openai_error() {
    let text = transcode(
        fixture("formats/anthropic-error.sse").as_bytes(),
        Framing::Sse,
        &[],
        false,
    )
    .await;
    let events = sse_data(&text);
    let last: Value = serde_json::from_str(events.last().unwrap()).unwrap();
    assert_eq!(assert_envelope(&last)["message"], "Overloaded");
    for event in &events[..events.len() - 1] {
        assert_schema(
            "CreateChatCompletionStreamResponse",
            &serde_json::from_str(event).unwrap(),
        );
    }
}

#[tokio::test]
async fn a_truncated_foreign_stream_is_reported_not_completed() {
    let bytes = fixture("formats/gemini.sse").into_bytes();
    let cut = &bytes[..bytes.len() / 2];
    let text = transcode(cut, Framing::Sse, &[], false).await;
    let events = sse_data(&text);
    let last: Value = serde_json::from_str(events.last().unwrap()).unwrap();
    assert_eq!(assert_envelope(&last)["code"], "upstream_stream_error");
    assert!(!text.contains("[DONE]"));
}

#[tokio::test]
async fn valid_openai_streams_pass_byte_for_byte() {
    for name in ["openai/chat-completion-stream.sse", "formats/llamacpp.sse"] {
        let bytes = fixture(name).into_bytes();
        let text = transcode(&bytes, Framing::Sse, &[], false).await;
        assert_eq!(text.as_bytes(), &bytes[..], "{name}");
    }
}

#[tokio::test]
async fn through_the_proxy_foreign_answers_reach_clients_as_openai() {
    let target = MockTarget::start().await;
    let proxy = TestProxy::forwarding(&target.url(), |_| {}).await;
    let mut feed = LiveFeed::open(&proxy).await;
    let request = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]});

    // A body for a stream request, a stream for a body request, and a foreign stream.
    target.once(Reply::Json(
        MockStatus::OK,
        fixture("formats/anthropic.json"),
    ));
    let mut streamed = request.clone();
    streamed["stream"] = json!(true);
    let text = proxy.post_text("/v1/chat/completions", &streamed).await;
    assert_eq!(content(&valid_stream(&text)), "Let me check.");

    target.once(Reply::Body {
        status: MockStatus::OK,
        content_type: "application/x-ndjson",
        body: Bytes::from(fixture("formats/ollama.ndjson")),
        headers: vec![],
    });
    let assembled: Value = proxy.post_json("/v1/chat/completions", &request).await;
    assert_schema("CreateChatCompletionResponse", &assembled);
    assert_eq!(message(&assembled)["content"], "The sky");

    let events: Vec<String> = fixture("formats/gemini.sse")
        .split_inclusive("\n\n")
        .map(str::to_owned)
        .collect();
    target.once(Reply::Sse(events, SseEnd::Close));
    let text = proxy.post_text("/v1/chat/completions", &streamed).await;
    assert_eq!(content(&valid_stream(&text)), "Hello");

    // Foreign errors keep their status and get OpenAI's type and code.
    target.once(Reply::Json(
        MockStatus::from_u16(529).unwrap(),
        r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#.into(),
    ));
    let response = proxy
        .post("/v1/chat/completions", &request)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        assert_envelope(&response.json().await.unwrap())["type"],
        "server_error"
    );

    // What changed is on the call log.
    feed.calls(4).await;
    let calls: Value = proxy.get_json("/api/logs/api-calls?limit=10").await;
    let ids: Vec<i64> = calls["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_i64().unwrap())
        .collect();
    let mut formats = Vec::new();
    let mut changed = Vec::new();
    for id in ids {
        let call: Value = proxy.get_json(&format!("/api/logs/api-calls/{id}")).await;
        if let Some(format) = call["normalization"]["format"].as_str() {
            formats.push(format.to_owned());
        }
        changed.push(call["normalization"]["changed"].to_string());
    }
    for format in ["anthropic", "ollama", "gemini"] {
        assert!(
            formats.iter().any(|f| f == format),
            "{format} not recorded in {formats:?}"
        );
    }
    // What the proxy did to the shape of the exchange is recorded beside what the format took.
    for what in [
        "synthesized a stream",
        "assembled one response",
        "translated from anthropic",
        "transcoded a ollama stream",
    ] {
        assert!(
            changed.iter().any(|c| c.contains(what)),
            "{what} not recorded in {changed:?}"
        );
    }
}

fn arbitrary_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        (-1e9f64..1e9).prop_map(|n| json!(n)),
        prop_oneof![
            Just("choices".to_owned()),
            Just("message".to_owned()),
            Just("stop".to_owned()),
            ".{0,8}"
        ]
        .prop_map(Value::String),
    ];
    let keys = prop_oneof![
        Just("choices"),
        Just("message"),
        Just("content"),
        Just("delta"),
        Just("usage"),
        Just("type"),
        Just("candidates"),
        Just("parts"),
        Just("text"),
        Just("tool_calls"),
        Just("function"),
        Just("arguments"),
        Just("finish_reason"),
        Just("done"),
        Just("error"),
        Just("model"),
        Just("id"),
        Just("index"),
        Just("generated_text"),
        Just("output"),
    ];
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::hash_map(keys.clone().prop_map(str::to_owned), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn no_json_makes_chat_normalization_panic_or_lie(value in arbitrary_json()) {
        let body = Bytes::from(value.to_string());
        if let Ok(normalized) = normalize::response(&body, Expected::ChatCompletion, &context(false)) {
            let out: Value = serde_json::from_slice(&normalized.body).unwrap();
            assert_schema("CreateChatCompletionResponse", &out);
        }
    }

    #[test]
    fn any_second_chunk_comes_out_the_same_with_or_without_the_fast_path(event in arbitrary_json()) {
        let first = r#"data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}"#;
        streams_agree(&[format!("{first}\n\n"), format!("data: {event}\n\n")], &event.to_string());
    }

    #[test]
    fn no_bytes_make_a_transcoder_panic_or_emit_invalid_events(events in prop::collection::vec(arbitrary_json(), 0..6), junk in prop::collection::vec(any::<u8>(), 0..64)) {
        let mut transcoder = Transcoder::new(Framing::Sse, &context(true));
        let mut out = Vec::new();
        for event in &events {
            if let llm_proxy::normalize::stream::Output::Replace(bytes) = transcoder.event(format!("data: {event}\n\n").as_bytes()) {
                out.extend(bytes);
            }
        }
        let _ = transcoder.event(&junk);
        let _ = transcoder.finish();
        for data in sse_data(&String::from_utf8_lossy(&out)) {
            if data == "[DONE]" { continue; }
            let value: Value = serde_json::from_str(&data).unwrap();
            // Clients treat any non-null `error` as an error event (as the SDKs do).
            if value.get("error").is_some_and(|e| !e.is_null()) {
                assert_envelope(&value);
            } else {
                assert_schema("CreateChatCompletionStreamResponse", &value);
            }
        }
    }
}
