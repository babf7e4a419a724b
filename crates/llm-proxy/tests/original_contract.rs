//! The original Node project's HTTP contract, field by field, as its scripts and its own
//! `test-proxy.js` use it: `/api/config`, the call log, server events, clearing, and any model
//! id in placeholder mode. Written from its field lists; every answer is searched for secrets.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "in tests a failure should panic"
)]

mod common;

use std::time::Duration;

use common::*;
use llm_proxy::config::{ClientAuth, CredentialConfig, OAuthConfig, TargetConfig, UpstreamConfig};
use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::{Value, json};

/// Every answer the test read, for the secret search at the end.
#[derive(Default)]
struct Seen(Vec<String>);

impl Seen {
    async fn json(&mut self, response: reqwest::Response) -> Value {
        let text = response.text().await.unwrap();
        self.0.push(text.clone());
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
    }

    async fn get(&mut self, proxy: &TestProxy, path: &str) -> Value {
        let response = proxy.get(path).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        self.json(response).await
    }

    fn assert_free_of(&self, secrets: &[&str]) {
        for text in &self.0 {
            for secret in secrets {
                assert!(!text.contains(secret), "a secret in an answer: {text}");
            }
        }
    }
}

fn is_iso_8601_utc(text: &Value) -> bool {
    let text = text.as_str().unwrap_or_default();
    text.len() == 24
        && text.ends_with('Z')
        && text.as_bytes()[10] == b'T'
        && text.as_bytes()[19] == b'.'
}

async fn one_chat(proxy: &TestProxy, model: &str) {
    let response = proxy
        .post(
            "/v1/chat/completions",
            &json!({"model": model, "messages": [{"role": "user", "content": "contract"}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.bytes().await.unwrap();
    proxy.handle.state().log().written().await;
}

/// A call entry as the original listed it: its names, types and meanings, next to ours.
fn assert_original_call_entry(entry: &Value, model: &str) {
    assert!(entry["id"].is_i64(), "{entry}");
    assert!(is_iso_8601_utc(&entry["timestamp"]), "{entry}");
    assert_eq!(entry["method"], "POST");
    assert_eq!(entry["path"], "/v1/chat/completions");
    assert_eq!(entry["responseStatus"], 200);
    assert_eq!(entry["responseStatus"], entry["status"]);
    assert!(entry["duration"].as_f64().unwrap() >= 0.0);
    assert_eq!(entry["duration"], entry["latencyMs"]);
    // Bodies as the JSON they are, not text holding JSON.
    assert_eq!(entry["requestBody"]["model"], model, "{entry}");
    assert_eq!(entry["requestBody"]["messages"][0]["content"], "contract");
    assert_eq!(
        entry["responseBody"]["object"], "chat.completion",
        "{entry}"
    );
    let headers = entry["requestHeaders"].as_object().unwrap();
    assert!(headers.contains_key("content-type"), "{entry}");
    assert_eq!(
        headers["authorization"], "[redacted]",
        "the client's token is never shown: {entry}"
    );
}

#[tokio::test]
async fn placeholder_mode_answers_the_original_contract() {
    let proxy = TestProxy::placeholder().await;
    let mut seen = Seen::default();

    // Its test script asks for a model by id; any id is one.
    let model = seen.get(&proxy, "/v1/models/gpt-4").await;
    assert_eq!(model["id"], "gpt-4");
    assert_eq!(model["object"], "model");

    let config = seen.get(&proxy, "/api/config").await;
    let port = proxy.handle.local_addr().port();
    assert_eq!(config["localPort"], port);
    assert_eq!(config["localBaseUrl"], format!("http://localhost:{port}"));
    assert_eq!(config["targetEndpoint"], "");
    assert_eq!(config["usePlaceholderMode"], true);
    assert!(config["oauth"].is_null(), "no OAuth configured: {config}");
    assert_eq!(config["secrets"]["accessToken"], "set");

    one_chat(&proxy, "contract-model").await;
    let listed = seen.get(&proxy, "/api/logs/api-calls?limit=10").await;
    let calls = listed["data"].as_array().unwrap();
    assert_eq!(calls.len(), 2, "the model and the chat: {listed}");
    assert_original_call_entry(&calls[0], "contract-model");

    // The dashboard's listing: the same entries less headers and bodies.
    let summary = seen
        .get(&proxy, "/api/logs/api-calls?limit=10&fields=summary")
        .await;
    let row = &summary["data"][0];
    assert_eq!(row["id"], calls[0]["id"]);
    assert_eq!(row["responseStatus"], 200);
    assert_eq!(row["timestamp"], calls[0]["timestamp"]);
    for key in ["requestHeaders", "requestBody", "responseBody"] {
        assert!(row.get(key).is_none(), "{key} in a summary: {row}");
    }
    let unknown = proxy
        .get("/api/logs/api-calls?fields=everything")
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::BAD_REQUEST);
    assert_envelope(&seen.json(unknown).await);

    let events = seen.get(&proxy, "/api/logs/server-events").await;
    let event = &events["data"][0];
    assert!(event["id"].is_i64(), "{event}");
    assert!(is_iso_8601_utc(&event["timestamp"]), "{event}");
    assert!(["info", "warn", "error"].contains(&event["level"].as_str().unwrap()));
    assert!(event["message"].is_string());
    assert!(
        event.as_object().unwrap().contains_key("details"),
        "{event}"
    );

    let both = seen.get(&proxy, "/api/logs").await;
    assert_original_call_entry(&both["apiCalls"][0], "contract-model");

    let cleared = proxy
        .http
        .delete(format!("{}/api/logs", proxy.url))
        .bearer_auth(ACCESS_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(cleared.status(), StatusCode::OK);
    let cleared = seen.json(cleared).await;
    assert_eq!(cleared["success"], true);
    assert!(cleared["message"].as_str().is_some_and(|m| !m.is_empty()));
    let after = seen.get(&proxy, "/api/logs/api-calls").await;
    assert_eq!(after["data"], json!([]));

    seen.assert_free_of(&[ACCESS_TOKEN]);
}

#[tokio::test]
async fn forwarding_mode_with_oauth_answers_the_original_contract_without_secrets() {
    let target = MockTarget::start().await;
    let tokens = MockTokenServer::start(Some(3600)).await;
    target.require_tokens(tokens.state.live.clone());
    let mut config = config(UpstreamConfig::Target(TargetConfig {
        endpoint: target.url().parse().unwrap(),
        api: llm_proxy::config::TargetApi::OpenAi,
        credential: CredentialConfig::OAuth(OAuthConfig {
            token_endpoint: tokens.url.parse().unwrap(),
            client_id: CLIENT_ID.into(),
            client_secret: SecretString::from(CLIENT_SECRET),
            scope: Some(SCOPE.into()),
            audience: None,
            client_auth: ClientAuth::Auto,
            refresh_buffer: Duration::from_secs(300),
        }),
        extra_roots_pem: None,
    }));
    config.logging.bodies = true;
    let proxy = TestProxy::start(config).await;
    let mut seen = Seen::default();

    one_chat(&proxy, "gpt-4o").await;
    let config = seen.get(&proxy, "/api/config").await;
    assert_eq!(config["localPort"], proxy.handle.local_addr().port());
    assert_eq!(config["targetEndpoint"], target.url());
    assert_eq!(config["usePlaceholderMode"], false);
    let oauth = &config["oauth"];
    assert_eq!(oauth["tokenEndpoint"], tokens.url);
    assert_eq!(oauth["clientId"], CLIENT_ID);
    assert_eq!(oauth["scope"], SCOPE);
    assert_eq!(oauth["grantType"], "client_credentials");
    assert_eq!(oauth["refreshBufferMs"], 300_000);
    assert_eq!(config["secrets"]["oauthClientSecret"], "set");

    let listed = seen.get(&proxy, "/api/logs/api-calls").await;
    assert_original_call_entry(&listed["data"][0], "gpt-4o");
    let id = listed["data"][0]["id"].as_i64().unwrap();
    let one = seen.get(&proxy, &format!("/api/logs/api-calls/{id}")).await;
    assert_original_call_entry(&one, "gpt-4o");
    seen.get(&proxy, "/api/logs/server-events").await;
    seen.get(&proxy, "/api/logs").await;
    let health = proxy
        .http
        .get(format!("{}/health", proxy.url))
        .send()
        .await
        .unwrap();
    seen.json(health).await;

    let issued = tokens.issued();
    assert_eq!(issued.len(), 1);
    let mut secrets = vec![ACCESS_TOKEN, CLIENT_SECRET];
    secrets.extend(issued.iter().map(String::as_str));
    seen.assert_free_of(&secrets);
}
