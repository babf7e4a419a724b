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

use llm_proxy::formats::answer::Stamp;
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
        answer_format: None,
        stamp: Stamp::now(),
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
    // 14:38:31 at UTC-7 is 21:38:31 UTC.
    assert_eq!(tags["data"][0]["created"], 1_717_537_111);
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
        conclusion: None,
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

// Shared with the crate's own agreement tests (src/normalize/agreement_tests.rs).
include!("support/arbitrary_json.rs");

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
