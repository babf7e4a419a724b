//! `MODEL_ALIASES`: a tool's default model names reach the target as the company's, on chat
//! completions and on `/v1/messages`, and the log keeps both names.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "in tests a failure should panic"
)]

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn proxy_with_aliases(target: &MockTarget) -> TestProxy {
    let mut config = config(target_config(&target.url(), Some(TARGET_KEY)));
    config.model_aliases = "claude-sonnet-*=gpt-4.1,claude-haiku-*=gpt-4.1-mini,*=gpt-4.1"
        .parse()
        .unwrap();
    TestProxy::start(config).await
}

fn sent_model(target: &MockTarget) -> String {
    let body: Value = serde_json::from_slice(&target.last().body).unwrap();
    body["model"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_chat_request_goes_out_with_the_aliased_model_and_the_log_keeps_both_names() {
    let target = MockTarget::start().await;
    let proxy = proxy_with_aliases(&target).await;
    let response = proxy
        .post(
            "/v1/chat/completions",
            &json!({"model": "claude-haiku-4-5", "messages": [{"role": "user", "content": "Hi"}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(sent_model(&target), "gpt-4.1-mini");

    proxy.handle.state().log().written().await;
    let listed: Value = proxy.get_json("/api/logs/api-calls?fields=summary").await;
    let call = &listed["data"][0];
    assert_eq!(call["model"], "claude-haiku-4-5", "{call}");
    assert_eq!(
        call["normalization"]["request"]["sentModel"], "gpt-4.1-mini",
        "{call}"
    );
    let config = proxy.get_json("/api/config").await;
    assert_eq!(
        config["modelAliases"],
        "claude-sonnet-*=gpt-4.1,claude-haiku-*=gpt-4.1-mini,*=gpt-4.1"
    );
}

#[tokio::test]
async fn a_model_already_named_as_the_target_names_it_passes_byte_for_byte() {
    let target = MockTarget::start().await;
    let proxy = proxy_with_aliases(&target).await;
    let body = r#"{"model":"gpt-4.1",  "messages":[{"role":"user","content":"Hi"}]}"#;
    let response = proxy
        .http
        .post(format!("{}/v1/chat/completions", proxy.url))
        .bearer_auth(ACCESS_TOKEN)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(target.last().body, body.as_bytes());
}

#[tokio::test]
async fn claude_codes_default_model_reaches_the_target_by_its_alias() {
    let target = MockTarget::start().await;
    let proxy = proxy_with_aliases(&target).await;
    let response = proxy
        .post(
            "/v1/messages",
            &json!({"model": "claude-opus-4-8[1m]", "max_tokens": 100,
                    "messages": [{"role": "user", "content": "Hi"}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(sent_model(&target), "gpt-4.1");
    proxy.handle.state().log().written().await;
    let listed: Value = proxy.get_json("/api/logs/api-calls?fields=summary").await;
    assert_eq!(listed["data"][0]["model"], "claude-opus-4-8[1m]");
    assert_eq!(
        listed["data"][0]["normalization"]["request"]["sentModel"],
        "gpt-4.1"
    );
}
