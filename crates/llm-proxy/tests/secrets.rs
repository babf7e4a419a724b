//! No secret ever leaves: whole scenarios run with every log line captured at TRACE level,
//! and the logs, response bodies, headers, `/health` and every file in the proxy's data
//! directory (the log database, its WAL and shm files) are searched for each secret value, in
//! the files as itself and in Base64.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "in tests a failure should panic"
)]

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::StatusCode;
use base64::Engine;
use common::*;
use llm_proxy::clock::ManualClock;
use llm_proxy::config::{
    ClientAuth, Config, CredentialConfig, LogConfig, OAuthConfig, TargetConfig, UpstreamConfig,
};
use rusqlite::types::ValueRef;
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
async fn no_secret_reaches_logs_responses_health_or_stored_files() {
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
    let mut stored_secrets = oauth_secrets(&tokens.issued());
    stored_secrets.extend(keyed_secrets());
    for dir in &data_dirs {
        assert!(
            stored_bytes(dir).contains("/v1/chat/completions"),
            "the log recorded the scenario"
        );
        assert_not_stored(dir, &stored_secrets);
    }

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
    assert_not_stored(&data_dir, &oauth_secrets(&tokens.issued()));
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
    assert_not_stored(Path::new(&data_dir), &keyed_secrets());
}

/// A value that must never be stored, and what it is, for the failure message.
struct Secret {
    what: String,
    value: String,
}

impl Secret {
    fn new(what: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            what: what.into(),
            value: value.into(),
        }
    }

    /// The byte strings that would show this secret in a file, each named: the value itself, and
    /// for each of the three byte alignments in a longer text, the characters of its standard and
    /// URL-safe Base64 that no neighbouring byte can change.
    fn forms(&self) -> Vec<(String, Vec<u8>)> {
        use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
        let mut forms = vec![("as is".to_owned(), self.value.as_bytes().to_vec())];
        for (name, engine) in [
            ("Base64", STANDARD_NO_PAD),
            ("URL-safe Base64", URL_SAFE_NO_PAD),
        ] {
            for offset in 0..3 {
                let mut shifted = vec![0u8; offset];
                shifted.extend_from_slice(self.value.as_bytes());
                let encoded = engine.encode(&shifted);
                // A character holds six bits: those holding a bit of a neighbour are left out.
                let first = (offset * 8).div_ceil(6);
                let last = shifted.len() * 8 / 6;
                let core = encoded.as_bytes()[first..last].to_vec();
                forms.push((format!("in {name} at byte offset {offset}"), core));
            }
        }
        forms
    }
}

/// The secrets of a static-key proxy: its target's key, the access token, a mistyped token.
fn keyed_secrets() -> Vec<Secret> {
    vec![
        Secret::new("the target API key", TARGET_KEY),
        Secret::new("the proxy's access token", ACCESS_TOKEN),
        Secret::new("a mistyped client token", WRONG_TOKEN),
    ]
}

/// The secrets of an OAuth proxy: the client secret, the Basic value made of it, every token
/// the token server issued, the access token and a mistyped one.
fn oauth_secrets(issued: &[String]) -> Vec<Secret> {
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"));
    let mut secrets = vec![
        Secret::new("the OAuth client secret", CLIENT_SECRET),
        Secret::new("the Basic value of client id and secret", basic),
        Secret::new("the proxy's access token", ACCESS_TOKEN),
        Secret::new("a mistyped client token", WRONG_TOKEN),
    ];
    for (n, token) in issued.iter().enumerate() {
        secrets.push(Secret::new(format!("issued OAuth token {}", n + 1), token));
    }
    secrets
}

/// A token no proxy accepts, sent by a client that mistyped its key: often a real key for
/// something else.
const WRONG_TOKEN: &str = "sk-client-typo-key-5555";

/// Every file under `dir` (the database, its WAL and shm files, anything else), with its bytes.
fn files_under(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            let bytes = std::fs::read(&path).unwrap();
            files.push((path, bytes));
        }
    }
    files
}

/// Every text and blob value in every table of the log database, read back through SQLite and
/// named `table.column`: a value longer than a page is split across pages in the file, where
/// a search of the bytes could miss a secret cut in two.
fn database_values(data_dir: &Path) -> Vec<(String, Vec<u8>)> {
    let db = rusqlite::Connection::open(data_dir.join(DATABASE_FILE)).unwrap();
    let tables: Vec<String> = db
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let mut values = Vec::new();
    for table in tables {
        let mut select = db.prepare(&format!("SELECT * FROM \"{table}\"")).unwrap();
        let columns: Vec<String> = select.column_names().map(str::to_owned).collect();
        let mut rows = select.query([]).unwrap();
        while let Some(row) = rows.next().unwrap() {
            for (i, column) in columns.iter().enumerate() {
                let bytes = match row.get_ref(i).unwrap() {
                    ValueRef::Text(bytes) | ValueRef::Blob(bytes) => bytes.to_vec(),
                    _ => continue,
                };
                values.push((format!("{table}.{column}"), bytes));
            }
        }
    }
    assert!(
        !values.is_empty(),
        "the database in {data_dir:?} holds no value"
    );
    values
}

/// The log database's file name in the data directory (`logs/mod.rs`).
const DATABASE_FILE: &str = "logs.sqlite3";

/// Fails, naming the secret, its form and the file or `table.column`, when any of `secrets` is
/// in a file under `data_dir` or in a value of its database.
fn assert_not_stored(data_dir: &Path, secrets: &[Secret]) {
    let files = files_under(data_dir);
    assert!(
        files.iter().any(|(path, _)| path.ends_with(DATABASE_FILE)),
        "no database in {data_dir:?}"
    );
    let places = files
        .into_iter()
        .map(|(path, bytes)| (path.display().to_string(), bytes))
        .chain(database_values(data_dir));
    let places: Vec<(String, Vec<u8>)> = places.collect();
    for secret in secrets {
        for (form, needle) in secret.forms() {
            for (place, bytes) in &places {
                assert!(
                    !bytes.windows(needle.len()).any(|w| w == needle),
                    "{} ({}) is stored {form} in {place}",
                    secret.what,
                    secret.value
                );
            }
        }
    }
}

/// A proxy with the target and token server behind it, and the directory it stores its log in.
struct Deployment {
    proxy: TestProxy,
    target: MockTarget,
    /// The token server of an OAuth proxy: the tokens it issued are secrets too.
    tokens: Option<MockTokenServer>,
    data_dir: PathBuf,
}

impl Deployment {
    /// A proxy holding the target's API key, its target echoing it in every answer.
    async fn keyed(logging: &LogConfig) -> Self {
        let target = MockTarget::start().await;
        target.always(Reply::EchoAuthorization(StatusCode::OK));
        let mut config = config(target_config(&target.url(), Some(TARGET_KEY)));
        config.logging = logging.clone();
        Self::start(config, target, None).await
    }

    /// A proxy fetching OAuth tokens from a server that wants the form body, so both the Basic
    /// header and the form secret are sent; its target echoes the token in every answer.
    async fn oauth(logging: &LogConfig) -> Self {
        let target = MockTarget::start().await;
        target.always(Reply::EchoAuthorization(StatusCode::OK));
        let tokens = MockTokenServer::start(Some(600)).await;
        *tokens.state.accept.lock().unwrap() = AcceptAuth::Form;
        let oauth = OAuthConfig {
            token_endpoint: tokens.url.parse().unwrap(),
            client_id: CLIENT_ID.into(),
            client_secret: SecretString::from(CLIENT_SECRET),
            scope: Some(SCOPE.into()),
            audience: None,
            client_auth: ClientAuth::Auto,
            refresh_buffer: Duration::from_secs(300),
        };
        let mut config = config(UpstreamConfig::Target(TargetConfig {
            endpoint: target.url().parse().unwrap(),
            api: llm_proxy::config::TargetApi::OpenAi,
            credential: CredentialConfig::OAuth(oauth),
            extra_roots_pem: None,
        }));
        config.logging = logging.clone();
        let deployment = Self::start(config, target, Some(tokens)).await;
        if let Some(tokens) = &deployment.tokens {
            tokens.wait_for_issued(1).await;
        }
        deployment
    }

    async fn start(config: Config, target: MockTarget, tokens: Option<MockTokenServer>) -> Self {
        let data_dir = config.data_dir.clone();
        let proxy = TestProxy::start(config).await;
        Self {
            proxy,
            target,
            tokens,
            data_dir,
        }
    }

    /// Sends every kind of call, then checks no secret is stored: once the log writer has
    /// written everything, and again after shutdown, when the database has been closed (and
    /// its WAL checkpointed into it).
    async fn assert_every_kind_of_call_stores_no_secret(self) -> ShutDown {
        send_every_kind_of_call(&self.proxy, &self.target).await;
        self.proxy.handle.state().log().written().await;
        assert_not_stored(&self.data_dir, &secrets_of(self.tokens.as_ref()));
        self.proxy.handle.shutdown().await;
        assert_not_stored(&self.data_dir, &secrets_of(self.tokens.as_ref()));
        if let Some(tokens) = &self.tokens {
            assert!(
                tokens.issued().len() >= 2,
                "the target's 401 made the proxy replace the token it had echoed"
            );
        }
        ShutDown {
            data_dir: self.data_dir,
            calls_at_target: self.target.received().len(),
        }
    }
}

/// What a test still needs of a deployment it has shut down.
struct ShutDown {
    data_dir: PathBuf,
    /// Requests the target received: the calls were made.
    calls_at_target: usize,
}

/// Every secret a deployment has seen so far: an OAuth one's if it has a token server.
fn secrets_of(tokens: Option<&MockTokenServer>) -> Vec<Secret> {
    match tokens {
        Some(tokens) => oauth_secrets(&tokens.issued()),
        None => keyed_secrets(),
    }
}

/// Every kind of call a client makes, the access token presented in each place a client puts
/// one (`Authorization`, `x-api-key`, `api-key`, and `?api_key=` / `?key=` beside a header):
/// chat completions, `/v1/messages` and `/v1/responses` each whole and streamed, a call with a
/// wrong token, and the target refusing its credential (401, echoing it) and failing (500).
/// The target quotes the credential it got in every answer.
async fn send_every_kind_of_call(proxy: &TestProxy, target: &MockTarget) {
    let chat = |stream: bool| {
        json!({"model": "m", "stream": stream,
            "messages": [{"role": "user", "content": "hi"}]})
    };
    let messages = |stream: bool| {
        json!({"model": "m", "max_tokens": 16, "stream": stream,
            "messages": [{"role": "user", "content": "hi"}]})
    };
    let response = |stream: bool| json!({"model": "m", "stream": stream, "input": "hi"});
    let post = |path: &str, (name, value): (&str, &str), body: &serde_json::Value| {
        proxy
            .http
            .post(format!("{}{path}", proxy.url))
            .header(name, value)
            .json(body)
    };
    let bearer = format!("Bearer {ACCESS_TOKEN}");
    let bearer = ("authorization", bearer.as_str());
    let x_api_key = ("x-api-key", ACCESS_TOKEN);
    let api_key = ("api-key", ACCESS_TOKEN);
    let in_query = |name: &str| format!("/v1/chat/completions?{name}={ACCESS_TOKEN}");
    let calls = [
        post(&in_query("api_key"), bearer, &chat(false)),
        post(&in_query("key"), x_api_key, &chat(true)),
        post("/v1/messages", x_api_key, &messages(false)),
        post("/v1/messages", x_api_key, &messages(true)),
        post("/v1/responses", api_key, &response(false)),
        post("/v1/responses", bearer, &response(true)),
    ];
    for call in calls {
        assert_answers(call, StatusCode::OK).await;
    }
    let wrong = format!("Bearer {WRONG_TOKEN}");
    let refused = post(
        "/v1/chat/completions",
        ("authorization", &wrong),
        &chat(false),
    );
    assert_answers(refused, StatusCode::UNAUTHORIZED).await;
    for failure in [StatusCode::UNAUTHORIZED, StatusCode::INTERNAL_SERVER_ERROR] {
        target.always(Reply::EchoAuthorization(failure));
        assert_answers(post("/v1/chat/completions", bearer, &chat(false)), failure).await;
    }
    target.always(Reply::EchoAuthorization(StatusCode::OK));
    assert!(
        target
            .received()
            .iter()
            .all(|r| r.headers.contains_key("authorization")),
        "every call reached the target with a credential, which its answer quoted"
    );
}

/// Sends `call`, checks its status and reads its whole body, so the call is logged.
async fn assert_answers(call: reqwest::RequestBuilder, status: StatusCode) {
    let response = call.send().await.unwrap();
    let url = response.url().clone();
    assert_eq!(response.status(), status, "{url}");
    response.text().await.unwrap();
}

/// The one number `sql` selects from the log database in `data_dir`.
fn count(data_dir: &Path, sql: &str) -> i64 {
    let db = rusqlite::Connection::open(data_dir.join(DATABASE_FILE)).unwrap();
    db.query_row(sql, [], |row| row.get(0)).unwrap()
}

#[test]
fn a_secret_is_found_in_any_base64_text_that_encodes_it() {
    let secret = Secret::new("a test value", "sk-?>~value+/");
    let forms = secret.forms();
    for before in ["", "a", "ab", "abc"] {
        for after in ["", "z", "yz"] {
            let text = format!("{before}{}{after}", secret.value);
            for engine in [
                base64::engine::general_purpose::STANDARD,
                base64::engine::general_purpose::URL_SAFE,
            ] {
                let encoded = engine.encode(&text);
                assert!(
                    forms
                        .iter()
                        .any(|(_, form)| encoded.as_bytes().windows(form.len()).any(|w| w == form)),
                    "{text:?} as {encoded}"
                );
            }
        }
    }
}

#[tokio::test]
async fn no_file_or_database_value_stored_after_every_kind_of_call_holds_a_secret() {
    let logging = LogConfig::default();
    for deployment in [
        Deployment::oauth(&logging).await,
        Deployment::keyed(&logging).await,
    ] {
        let shut_down = deployment
            .assert_every_kind_of_call_stores_no_secret()
            .await;
        let stored = stored_bytes(&shut_down.data_dir);
        for logged in [
            "/v1/chat/completions?api_key=[redacted]",
            "/v1/chat/completions?key=[redacted]",
            "/v1/messages",
            "/v1/responses",
        ] {
            assert!(stored.contains(logged), "{logged} was logged");
        }
        assert!(
            stored.contains("you sent Bearer ****"),
            "the answers echoing the credential were stored, masked"
        );
    }
}

#[tokio::test]
async fn with_log_bodies_off_no_stored_file_or_database_value_holds_a_secret() {
    let logging = LogConfig {
        bodies: false,
        ..LogConfig::default()
    };
    for deployment in [
        Deployment::oauth(&logging).await,
        Deployment::keyed(&logging).await,
    ] {
        let data_dir = deployment
            .assert_every_kind_of_call_stores_no_secret()
            .await
            .data_dir;
        assert!(
            count(&data_dir, "SELECT COUNT(*) FROM api_calls") >= 9,
            "the calls were logged"
        );
        let with_bodies = "SELECT COUNT(*) FROM api_calls
             WHERE request_body IS NOT NULL OR response_body IS NOT NULL";
        assert_eq!(count(&data_dir, with_bodies), 0, "without their bodies");
    }
}

#[tokio::test]
async fn with_log_requests_off_no_call_is_stored_and_no_stored_value_holds_a_secret() {
    let logging = LogConfig {
        requests: false,
        ..LogConfig::default()
    };
    for deployment in [
        Deployment::oauth(&logging).await,
        Deployment::keyed(&logging).await,
    ] {
        let shut_down = deployment
            .assert_every_kind_of_call_stores_no_secret()
            .await;
        assert!(shut_down.calls_at_target >= 8, "the calls were made");
        let calls = count(&shut_down.data_dir, "SELECT COUNT(*) FROM api_calls");
        assert_eq!(calls, 0, "no call was kept");
    }
}
