//! No secret ever leaves: a whole scenario runs with every log line captured at TRACE level,
//! and the logs, response bodies, headers and `/health` are searched for each secret value.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "in tests a failure should panic"
)]

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use common::*;
use llm_proxy::clock::ManualClock;
use llm_proxy::config::{ClientAuth, CredentialConfig, OAuthConfig, TargetConfig, UpstreamConfig};
use secrecy::SecretString;
use serde_json::json;
use tokio::net::TcpListener;

#[derive(Clone)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Everything a client saw: status, headers and body of each response.
#[derive(Default)]
struct Seen(String);

impl Seen {
    async fn record(&mut self, response: reqwest::Response) {
        self.0
            .push_str(&format!("{} {:?}\n", response.status(), response.headers()));
        self.0.push_str(&response.text().await.unwrap());
        self.0.push('\n');
    }
}

#[tokio::test]
async fn no_secret_reaches_logs_responses_or_health() {
    let logs = Arc::new(Mutex::new(Vec::new()));
    let writer = Capture(logs.clone());
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    // The test runtime has one thread, so every task of the scenario logs through this.
    let _guard = tracing::subscriber::set_default(subscriber);
    let mut seen = Seen::default();

    // OAuth, with a server that wants the form body: both the Basic header and the form secret
    // are sent along the way.
    let target = MockTarget::start().await;
    let tokens = MockTokenServer::start(Some(600)).await;
    *tokens.state.accept.lock().unwrap() = AcceptAuth::Form;
    target.require_tokens(tokens.state.live.clone());
    let clock = ManualClock::default();
    let oauth = OAuthConfig {
        token_endpoint: tokens.url.parse().unwrap(),
        client_id: CLIENT_ID.into(),
        client_secret: SecretString::from(CLIENT_SECRET),
        scope: Some(SCOPE.into()),
        audience: None,
        client_auth: ClientAuth::Auto,
        refresh_buffer: Duration::from_secs(300),
    };
    let upstream = UpstreamConfig::Target(TargetConfig {
        endpoint: target.url().parse().unwrap(),
        api: llm_proxy::config::TargetApi::OpenAi,
        credential: CredentialConfig::OAuth(oauth),
        extra_roots_pem: None,
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = config(upstream);
    tracing::debug!(?config, "scenario configuration");
    let handle = llm_proxy::serve_with_clock(listener, config, Arc::new(clock.clone())).unwrap();
    let proxy = TestProxy {
        url: format!("http://{}", handle.local_addr()),
        handle,
        http: reqwest::Client::builder().no_proxy().build().unwrap(),
    };
    tokens.wait_for_issued(1).await;
    let chat = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]});
    let stream =
        json!({"model": "m", "stream": true, "messages": [{"role": "user", "content": "hi"}]});

    seen.record(
        proxy
            .post("/v1/chat/completions", &chat)
            .send()
            .await
            .unwrap(),
    )
    .await;
    target.once(Reply::Sse(
        vec!["data: {}\n\n".into(), "data: [DONE]\n\n".into()],
        SseEnd::Close,
    ));
    seen.record(
        proxy
            .post("/v1/chat/completions", &stream)
            .send()
            .await
            .unwrap(),
    )
    .await;
    // A revoked token: 401, refresh, replay.
    tokens.revoke(&tokens.issued()[0]);
    seen.record(
        proxy
            .post("/v1/chat/completions", &chat)
            .send()
            .await
            .unwrap(),
    )
    .await;
    // A refresh that fails, and the requests failing meanwhile.
    tokens.fail(Some(TokenFailure::Status(
        401,
        r#"{"error":"invalid_client","error_description":"secret client-secret-must-never-leak-7f3a expired"}"#,
    )));
    clock.advance(Duration::from_secs(10_000));
    seen.record(
        proxy
            .post("/v1/chat/completions", &chat)
            .send()
            .await
            .unwrap(),
    )
    .await;
    seen.record(
        proxy
            .http
            .get(format!("{}/health", proxy.url))
            .send()
            .await
            .unwrap(),
    )
    .await;
    // A wrong client key.
    let wrong = proxy
        .http
        .get(format!("{}/v1/models", proxy.url))
        .bearer_auth("sk-client-typo-key-5555");
    seen.record(wrong.send().await.unwrap()).await;
    // The target echoing what it was sent.
    tokens.fail(None);
    clock.advance(Duration::from_secs(120));
    tokens.wait_for_issued(3).await;
    let current = tokens.issued().last().unwrap().clone();
    target.once(Reply::Body {
        status: axum::http::StatusCode::BAD_REQUEST,
        content_type: "text/plain",
        body: format!("you sent Bearer {current}").into(),
        headers: vec![],
    });
    seen.record(
        proxy
            .post("/v1/chat/completions", &chat)
            .send()
            .await
            .unwrap(),
    )
    .await;

    // A static key proxy too.
    let keyed_target = MockTarget::start().await;
    let keyed = TestProxy::forwarding(&keyed_target.url(), |_| {}).await;
    keyed_target.once(Reply::Body {
        status: axum::http::StatusCode::UNAUTHORIZED,
        content_type: "text/plain",
        body: format!("bad key {TARGET_KEY}").into(),
        headers: vec![],
    });
    seen.record(
        keyed
            .post("/v1/chat/completions", &chat)
            .send()
            .await
            .unwrap(),
    )
    .await;
    seen.record(
        keyed
            .post("/v1/chat/completions", &chat)
            .send()
            .await
            .unwrap(),
    )
    .await;
    let mut data_dirs = Vec::new();
    for proxy in [&proxy, &keyed] {
        let config: serde_json::Value = proxy.get_json("/api/config").await;
        seen.0.push_str(&config.to_string());
        data_dirs.push(std::path::PathBuf::from(
            config["dataDir"].as_str().unwrap(),
        ));
    }
    let logged: serde_json::Value = proxy.get_json("/api/logs").await;
    seen.0.push_str(&logged.to_string());
    proxy.handle.shutdown().await;
    keyed.handle.shutdown().await;
    // Every stored byte: the log database and its write-ahead log.
    let mut stored = String::new();
    for dir in data_dirs {
        for entry in std::fs::read_dir(dir).unwrap() {
            stored.push_str(&String::from_utf8_lossy(
                &std::fs::read(entry.unwrap().path()).unwrap(),
            ));
        }
    }
    assert!(
        stored.contains("/v1/chat/completions"),
        "the log recorded the scenario"
    );

    let logs = String::from_utf8(logs.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("OAuth token obtained"),
        "the capture saw the scenario:\n{logs}"
    );
    assert!(logs.contains("OAuth token fetch failed"));
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"));
    let mut secrets = vec![
        CLIENT_SECRET.to_owned(),
        basic,
        TARGET_KEY.to_owned(),
        ACCESS_TOKEN.to_owned(),
        "sk-client-typo-key-5555".to_owned(),
    ];
    secrets.extend(tokens.issued());
    assert!(tokens.issued().len() >= 3);
    for secret in &secrets {
        assert!(!logs.contains(secret.as_str()), "{secret} is in the logs");
        assert!(
            !seen.0.contains(secret.as_str()),
            "{secret} reached a client:\n{}",
            seen.0
        );
    }
}

/// Every file in a server's data directory, as text (the database, its WAL and shm files).
fn stored_bytes(data_dir: &std::path::Path) -> String {
    let mut stored = String::new();
    for entry in std::fs::read_dir(data_dir).unwrap() {
        stored.push_str(&String::from_utf8_lossy(
            &std::fs::read(entry.unwrap().path()).unwrap(),
        ));
    }
    stored
}

#[tokio::test]
async fn a_token_server_page_echoing_the_basic_credentials_leaks_them_nowhere() {
    let logs = Arc::new(Mutex::new(Vec::new()));
    let writer = Capture(logs.clone());
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    // The token server crashes with a debug page that echoes the request: the Basic header
    // (Base64 of `client_id:client_secret`) and the form body.
    let target = MockTarget::start().await;
    let tokens = MockTokenServer::start(Some(600)).await;
    tokens.fail(Some(TokenFailure::EchoRequest(500)));
    let oauth = OAuthConfig {
        token_endpoint: tokens.url.parse().unwrap(),
        client_id: CLIENT_ID.into(),
        client_secret: SecretString::from(CLIENT_SECRET),
        scope: None,
        audience: None,
        client_auth: ClientAuth::Basic,
        refresh_buffer: Duration::from_secs(300),
    };
    let upstream = UpstreamConfig::Target(TargetConfig {
        endpoint: target.url().parse().unwrap(),
        api: llm_proxy::config::TargetApi::OpenAi,
        credential: CredentialConfig::OAuth(oauth),
        extra_roots_pem: None,
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = config(upstream);
    let data_dir = config.data_dir.clone();
    let handle =
        llm_proxy::serve_with_clock(listener, config, Arc::new(ManualClock::default())).unwrap();
    let proxy = TestProxy {
        url: format!("http://{}", handle.local_addr()),
        handle,
        http: reqwest::Client::builder().no_proxy().build().unwrap(),
    };
    tokens.wait_for_attempts(1).await;
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"));
    let attempt = tokens.attempts()[0].clone();
    assert_eq!(
        attempt.basic,
        Some((CLIENT_ID.to_owned(), CLIENT_SECRET.to_owned())),
        "the proxy sent Basic credentials, so the page echoed them"
    );

    let mut seen = Seen::default();
    let chat = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]});
    let failed = proxy
        .post("/v1/chat/completions", &chat)
        .send()
        .await
        .unwrap();
    assert_eq!(failed.status(), axum::http::StatusCode::BAD_GATEWAY);
    let failed_text = failed.text().await.unwrap();
    assert!(
        failed_text.contains("HTTP 500") && failed_text.contains("[redacted]"),
        "the client holding the access token sees the scrubbed page: {failed_text}"
    );
    seen.0.push_str(&failed_text);

    // `/health` needs no token: it says what failed and the status, and nothing of the page.
    let health = proxy
        .http
        .get(format!("{}/health", proxy.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let health_json: serde_json::Value = serde_json::from_str(&health).unwrap();
    assert_eq!(
        health_json["oauth"]["lastError"],
        "the OAuth token could not be obtained: the token server answered HTTP 500"
    );
    assert!(!health.contains("crash"), "{health}");
    seen.0.push_str(&health);
    for path in ["/api/config", "/api/logs", "/api/logs/server-events"] {
        seen.0.push_str(&proxy.get_text(path).await);
    }
    proxy.handle.shutdown().await;
    let stored = stored_bytes(&data_dir);
    assert!(
        stored.contains("/v1/chat/completions"),
        "the failed call was stored"
    );
    let logs = String::from_utf8(logs.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("OAuth token fetch failed") && logs.contains("crash"),
        "the capture saw the failure:\n{logs}"
    );
    let form_encoded: String =
        url::form_urlencoded::byte_serialize(CLIENT_SECRET.as_bytes()).collect();
    for secret in [CLIENT_SECRET, &form_encoded, &basic, ACCESS_TOKEN] {
        for (place, text) in [
            ("the logs", &logs),
            ("a response", &seen.0),
            ("the stored files", &stored),
        ] {
            assert!(!text.contains(secret), "{secret} is in {place}");
        }
    }
}

#[tokio::test]
async fn a_target_echoing_its_own_key_in_a_success_masks_it_for_the_client_and_the_log() {
    let target = MockTarget::start().await;
    let proxy = TestProxy::forwarding(&target.url(), |_| {}).await;
    let data_dir = proxy.get_json("/api/config").await["dataDir"]
        .as_str()
        .unwrap()
        .to_owned();
    let echoing = |content: &str| {
        format!(
            r#"{{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"m","choices":[{{"index":0,"message":{{"role":"assistant","content":"{content}"}},"finish_reason":"stop"}}],"usage":{{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}}}"#
        )
    };
    let echoed_header: &'static str = Box::leak(format!("Bearer {TARGET_KEY}").into_boxed_str());
    target.once(Reply::Body {
        status: axum::http::StatusCode::OK,
        content_type: "application/json",
        body: echoing(&format!("you sent {TARGET_KEY}")).into(),
        headers: vec![("x-echo-auth", echoed_header)],
    });
    let chat = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]});
    let mut seen = Seen::default();
    let answer = proxy
        .post("/v1/chat/completions", &chat)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), axum::http::StatusCode::OK);
    let masked = "*".repeat(TARGET_KEY.len());
    assert_eq!(
        answer.headers()["x-echo-auth"],
        format!("Bearer {masked}").as_str()
    );
    let text = answer.text().await.unwrap();
    let body: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        body["choices"][0]["message"]["content"],
        format!("you sent {masked}"),
        "still valid JSON, the key masked"
    );
    seen.0.push_str(&text);

    let chunk = format!(
        r#"data: {{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{{"index":0,"delta":{{"content":"key {TARGET_KEY}"}},"finish_reason":null}}]}}"#
    );
    target.once(Reply::Sse(
        vec![format!("{chunk}\n\n"), "data: [DONE]\n\n".into()],
        SseEnd::Close,
    ));
    let stream =
        json!({"model": "m", "stream": true, "messages": [{"role": "user", "content": "hi"}]});
    seen.record(
        proxy
            .post("/v1/chat/completions", &stream)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(seen.0.contains(&format!("key {masked}")), "{}", seen.0);
    proxy.handle.state().log().written().await;
    let logged = proxy.get_text("/api/logs/api-calls").await;
    assert!(
        logged.contains(&format!("key {masked}")),
        "the stream's answer is logged masked as the client got it: {logged}"
    );
    seen.0.push_str(&logged);
    seen.0.push_str(&proxy.get_text("/api/logs").await);
    proxy.handle.shutdown().await;
    let stored = stored_bytes(std::path::Path::new(&data_dir));
    assert!(stored.contains(&masked), "the masked answers were stored");
    assert!(!seen.0.contains(TARGET_KEY), "{}", seen.0);
    assert!(!stored.contains(TARGET_KEY), "the key was stored");
}
