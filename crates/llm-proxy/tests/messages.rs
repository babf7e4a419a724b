//! `/v1/messages` with a target that speaks Anthropic's Messages API itself
//! (`TARGET_API=anthropic`): the request reaches it byte for byte, query and Anthropic headers
//! included, and its answer comes back as it was sent.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "in tests a failure should panic"
)]

mod common;

use common::anthropic::MockAnthropic;
use common::*;
use llm_proxy::config::TargetApi;
use reqwest::StatusCode;
use serde_json::Value;

async fn native(mock: &MockAnthropic) -> TestProxy {
    TestProxy::speaking(&mock.url(), TargetApi::Anthropic).await
}

/// A Messages request as Claude Code writes one, spaced and ordered as no serializer would.
const REQUEST: &str = r#"{ "max_tokens" : 1024, "model":"claude-sonnet-4-5",
  "messages":[{"role":"user","content":[{"type":"text","text":"Hi","cache_control":{"type":"ephemeral"}}]}],
  "thinking":{"type":"adaptive"}, "context_management":{"edits":[]} }"#;

#[tokio::test]
async fn a_messages_call_reaches_an_anthropic_target_byte_for_byte_with_its_query_and_betas() {
    let mock = MockAnthropic::start().await;
    let proxy = native(&mock).await;
    let response = proxy
        .http
        .post(format!("{}/v1/messages?beta=true", proxy.url))
        .header("x-api-key", ACCESS_TOKEN)
        .header("anthropic-version", "2023-06-01")
        .header(
            "anthropic-beta",
            "claude-code-20250219,interleaved-thinking-2025-05-14",
        )
        .header("content-type", "application/json")
        .body(REQUEST)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let answer: Value = response.json().await.unwrap();
    let sent = mock.last();
    assert_eq!(sent.raw, REQUEST.as_bytes(), "the body passes untouched");
    assert_eq!(sent.query.as_deref(), Some("beta=true"));
    assert_eq!(
        sent.headers["anthropic-beta"],
        "claude-code-20250219,interleaved-thinking-2025-05-14"
    );
    assert_eq!(sent.headers["anthropic-version"], "2023-06-01");
    assert_eq!(
        sent.headers["x-api-key"], TARGET_KEY,
        "the target's key, not the proxy's token"
    );
    // The mock refuses what Anthropic refuses (here: fields it does not know); its answer,
    // whatever it is, comes back in Anthropic's own envelope.
    if status == StatusCode::OK {
        assert_eq!(answer["type"], "message");
    } else {
        assert_eq!(answer["type"], "error", "{answer}");
    }
}

#[tokio::test]
async fn an_anthropic_targets_stream_comes_back_as_it_sent_it() {
    let mock = MockAnthropic::start().await;
    let proxy = native(&mock).await;
    let body = r#"{"model":"claude-sonnet-4-5","max_tokens":100,"stream":true,"messages":[{"role":"user","content":"Hello"}]}"#;
    let response = proxy
        .http
        .post(format!("{}/v1/messages", proxy.url))
        .bearer_auth(ACCESS_TOKEN)
        .header("anthropic-version", "2023-06-01")
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap();
    assert!(text.starts_with("event: message_start"), "{text}");
    assert!(
        text.trim_end()
            .ends_with(r#"data: {"type":"message_stop"}"#),
        "{text}"
    );
    assert!(!text.contains("chat.completion"), "{text}");
}

/// A chat chunk saying `text`, as an OpenAI target streams it.
fn chat_chunk(text: &str) -> String {
    let chunk = serde_json::json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1,
        "model": "gpt-4.1", "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": null}]});
    format!("data: {chunk}\n\n")
}

/// Reads `body` until what has arrived contains `wanted`; all that arrived.
async fn read_until(
    body: &mut (impl futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Unpin),
    seen: &mut String,
    wanted: &str,
) {
    use futures_util::StreamExt;
    tokio::time::timeout(std::time::Duration::from_secs(10), async {
        while !seen.contains(wanted) {
            let piece = body.next().await.expect("the stream ended").unwrap();
            seen.push_str(&String::from_utf8_lossy(&piece));
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no {wanted} in: {seen}"));
}

#[tokio::test]
async fn a_silent_chat_target_gets_the_messages_client_pings_then_the_rest_of_the_stream() {
    let target = MockTarget::start().await;
    // One chunk, then silence until the test releases the end.
    target.always(Reply::Sse(vec![chat_chunk("Hello")], SseEnd::DoneOnRelease));
    let proxy = TestProxy::forwarding(&target.url(), |limits| {
        limits.messages_ping_interval = std::time::Duration::from_millis(50);
    })
    .await;
    let response = proxy
        .post(
            "/v1/messages",
            &serde_json::json!({"model": "claude-sonnet-4-5", "max_tokens": 100, "stream": true,
                "messages": [{"role": "user", "content": "Hi"}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.bytes_stream();
    let mut seen = String::new();
    read_until(&mut body, &mut seen, "event: ping").await;
    assert!(
        seen.find("event: message_start") < seen.find("event: ping"),
        "{seen}"
    );
    assert!(seen.contains(r#""text":"Hello""#), "{seen}");
    target.release();
    read_until(&mut body, &mut seen, "event: message_stop").await;
    assert!(seen.contains(r#""stop_reason":"end_turn""#), "{seen}");
}

#[tokio::test]
async fn unreadable_tool_arguments_arrive_as_text_and_earlier_thinking_is_dropped_both_noted() {
    let target = MockTarget::start().await;
    let completion = serde_json::json!({"id": "chatcmpl-9", "object": "chat.completion", "created": 1, "model": "gpt-4.1",
        "choices": [{"index": 0, "finish_reason": "tool_calls", "logprobs": null, "message": {"role": "assistant", "content": null,
            "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "Bash", "arguments": "{\"command\": \"ls"}}]}}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}});
    target.always(Reply::Json(StatusCode::OK, completion.to_string()));
    let proxy = TestProxy::forwarding(&target.url(), |_| {}).await;
    let response = proxy
        .post(
            "/v1/messages",
            &serde_json::json!({"model": "claude-sonnet-4-5", "max_tokens": 100, "messages": [
                {"role": "user", "content": "List the files"},
                {"role": "assistant", "content": [{"type": "thinking", "thinking": "I should list.", "signature": "sig"},
                                                  {"type": "text", "text": "Listing."}]},
                {"role": "user", "content": "Go on"}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let message: Value = response.json().await.unwrap();
    assert_eq!(message["stop_reason"], "tool_use");
    assert_eq!(message["content"][0]["input"], "{\"command\": \"ls");
    let sent: Value = serde_json::from_slice(&target.last().body).unwrap();
    assert!(
        sent["messages"][1].get("reasoning_content").is_none(),
        "{sent}"
    );
    proxy.handle.state().log().written().await;
    let listed: Value = proxy.get_json("/api/logs/api-calls?fields=summary").await;
    let request = &listed["data"][0]["normalization"]["request"];
    assert_eq!(
        request["dropped"],
        serde_json::json!(["messages.1 thinking"]),
        "{request}"
    );
    assert_eq!(
        request["answerNotes"],
        serde_json::json!(["tool call 0: arguments not a JSON object, given as text"]),
        "{request}"
    );
}

#[tokio::test]
async fn a_body_that_is_not_an_object_is_a_400_in_anthropics_envelope_on_both_routes() {
    let target = MockTarget::start().await;
    let proxy = TestProxy::forwarding(&target.url(), |_| {}).await;
    for path in ["/v1/messages", "/v1/messages/count_tokens"] {
        let response = proxy
            .post(path, &serde_json::json!([1, 2]))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{path}");
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["type"], "error", "{path}: {error}");
        assert_eq!(error["error"]["type"], "invalid_request_error");
    }
    assert!(target.received().is_empty());
}
