//! A target and token server behind an internal CA: trusted with `TARGET_CA_CERT`, refused
//! (with a hint) without it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "in tests a failure should panic"
)]

mod common;

use std::time::Duration;

use common::pki::{pki, tls_server};
use common::*;
use llm_proxy::config::{ClientAuth, CredentialConfig, OAuthConfig, TargetConfig, UpstreamConfig};
use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::{Value, json};

fn target(base: &str, credential: CredentialConfig, ca: Option<&str>) -> UpstreamConfig {
    UpstreamConfig::Target(TargetConfig {
        endpoint: format!("{base}/v1").parse().unwrap(),
        api: llm_proxy::config::TargetApi::OpenAi,
        credential,
        extra_roots_pem: ca.map(|pem| pem.as_bytes().to_vec()),
    })
}

fn chat() -> Value {
    json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]})
}

#[tokio::test]
async fn an_internal_ca_is_trusted_only_when_configured() {
    let pki = pki();
    let base = tls_server(&pki).await;

    let trusting = TestProxy::start(config(target(
        &base,
        CredentialConfig::None,
        Some(&pki.ca_pem),
    )))
    .await;
    let response = trusting
        .post("/v1/chat/completions", &chat())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.text().await.unwrap(),
        fixture("openai/chat-completion.json")
    );

    let untrusting = TestProxy::start(config(target(&base, CredentialConfig::None, None))).await;
    let response = untrusting
        .post("/v1/chat/completions", &chat())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    let body: Value = response.json().await.unwrap();
    let message = assert_envelope(&body)["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(message.contains("TARGET_CA_CERT"), "{message}");
}

#[tokio::test]
async fn a_token_server_behind_the_internal_ca_works_with_it() {
    let pki = pki();
    let base = tls_server(&pki).await;
    let oauth = |client_auth| {
        CredentialConfig::OAuth(OAuthConfig {
            token_endpoint: format!("{base}/token").parse().unwrap(),
            client_id: CLIENT_ID.into(),
            client_secret: SecretString::from(CLIENT_SECRET),
            scope: None,
            audience: None,
            client_auth,
            refresh_buffer: Duration::from_secs(300),
        })
    };
    let trusting = TestProxy::start(config(target(
        &base,
        oauth(ClientAuth::Basic),
        Some(&pki.ca_pem),
    )))
    .await;
    let response = trusting
        .post("/v1/chat/completions", &chat())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    let untrusting = TestProxy::start(config(target(&base, oauth(ClientAuth::Basic), None))).await;
    let response = untrusting
        .post("/v1/chat/completions", &chat())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    let body: Value = response.json().await.unwrap();
    let message = assert_envelope(&body)["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        message.contains("token server") && message.contains("TARGET_CA_CERT"),
        "{message}"
    );
}
