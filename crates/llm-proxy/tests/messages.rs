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
use llm_proxy::config::{CredentialConfig, TargetApi, TargetConfig, UpstreamConfig};
use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::Value;

async fn native(mock: &MockAnthropic) -> TestProxy {
    TestProxy::start(config(UpstreamConfig::Target(TargetConfig {
        endpoint: mock.url().parse().unwrap(),
        api: TargetApi::Anthropic,
        credential: CredentialConfig::ApiKey(SecretString::from(TARGET_KEY)),
        extra_roots_pem: None,
    })))
    .await
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
