//! OAuth 2.0 client credentials to the target, against a mock token server and a target that
//! accepts only live tokens. Time comes from a manual clock: expiry and refresh are tested by
//! moving it, never by sleeping.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "in tests a failure should panic"
)]

mod common;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;
use llm_proxy::clock::{Clock, ManualClock};
use llm_proxy::config::{ClientAuth, CredentialConfig, OAuthConfig, TargetConfig, UpstreamConfig};
use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// A target, a token server and a proxy using OAuth between them, on a manual clock.
struct Setup {
    target: MockTarget,
    tokens: MockTokenServer,
    proxy: TestProxy,
    clock: ManualClock,
}

fn oauth_config(token_endpoint: &str) -> OAuthConfig {
    OAuthConfig {
        token_endpoint: token_endpoint.parse().unwrap(),
        client_id: CLIENT_ID.into(),
        client_secret: SecretString::from(CLIENT_SECRET),
        scope: Some(SCOPE.into()),
        audience: None,
        client_auth: ClientAuth::Auto,
        refresh_buffer: Duration::from_secs(300),
    }
}

impl Setup {
    async fn start(
        lifetime: Option<u64>,
        tweak: impl FnOnce(&mut OAuthConfig, &MockTokenServer),
    ) -> Self {
        let target = MockTarget::start().await;
        let tokens = MockTokenServer::start(lifetime).await;
        target.require_tokens(tokens.state.live.clone());
        let mut oauth = oauth_config(&tokens.url);
        tweak(&mut oauth, &tokens);
        let clock = ManualClock::default();
        let proxy = start_with_clock(
            UpstreamConfig::Target(TargetConfig {
                endpoint: target.url().parse().unwrap(),
                api: llm_proxy::config::TargetApi::OpenAi,
                credential: CredentialConfig::OAuth(oauth),
                extra_roots_pem: None,
            }),
            clock.clone(),
        )
        .await;
        Self {
            target,
            tokens,
            proxy,
            clock,
        }
    }

    async fn chat(&self) -> reqwest::Response {
        self.proxy
            .post(
                "/v1/chat/completions",
                &json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}),
            )
            .send()
            .await
            .unwrap()
    }

    async fn health(&self) -> Value {
        self.proxy.get_json("/health").await
    }

    fn bearer_of_last_target_request(&self) -> String {
        self.target.last().headers["authorization"]
            .to_str()
            .unwrap()
            .strip_prefix("Bearer ")
            .unwrap()
            .to_owned()
    }
}

async fn start_with_clock(upstream: UpstreamConfig, clock: ManualClock) -> TestProxy {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let handle = llm_proxy::serve_with_clock(listener, config(upstream), Arc::new(clock)).unwrap();
    let url = format!("http://{}", handle.local_addr());
    TestProxy {
        handle,
        url,
        http: reqwest::Client::builder().no_proxy().build().unwrap(),
    }
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_secs()
}

#[tokio::test]
async fn the_token_is_fetched_at_startup_and_sent_to_the_target() {
    let setup = Setup::start(Some(3600), |_, _| {}).await;
    // Before any request: the background fetch at startup.
    setup.tokens.wait_for_issued(1).await;
    let attempt = &setup.tokens.attempts()[0];
    assert_eq!(attempt.form["grant_type"], "client_credentials");
    assert_eq!(attempt.form["scope"], SCOPE);
    assert!(
        attempt
            .content_type
            .starts_with("application/x-www-form-urlencoded")
    );

    let response = setup.chat().await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        setup.bearer_of_last_target_request(),
        setup.tokens.issued()[0]
    );

    let health = setup.health().await;
    let oauth = &health["oauth"];
    assert_eq!(oauth["refreshCount"], 1);
    assert_eq!(oauth["validUntil"], unix(setup.clock.now()) + 3600);
    assert_eq!(oauth["lastRefresh"], unix(setup.clock.now()));
    assert!(oauth["lastError"].is_null());
    assert_eq!(health["auth"], "oauth2-client-credentials");
}

#[tokio::test]
async fn the_token_is_replaced_at_expiry_minus_the_buffer() {
    let setup = Setup::start(Some(600), |_, _| {}).await;
    setup.tokens.wait_for_issued(1).await;
    setup.clock.advance(Duration::from_secs(299));
    assert_eq!(setup.chat().await.status(), StatusCode::OK);
    assert_eq!(
        setup.tokens.issued().len(),
        1,
        "replaced before expiry minus the buffer"
    );
    assert_eq!(
        setup.bearer_of_last_target_request(),
        setup.tokens.issued()[0]
    );

    setup.clock.advance(Duration::from_secs(2));
    setup.tokens.wait_for_issued(2).await;
    assert_eq!(setup.chat().await.status(), StatusCode::OK);
    assert_eq!(
        setup.bearer_of_last_target_request(),
        setup.tokens.issued()[1]
    );
}

#[tokio::test]
async fn a_token_shorter_than_the_buffer_is_replaced_at_half_life() {
    let setup = Setup::start(Some(120), |_, _| {}).await;
    setup.tokens.wait_for_issued(1).await;
    setup.clock.advance(Duration::from_secs(59));
    assert_eq!(setup.chat().await.status(), StatusCode::OK);
    assert_eq!(setup.tokens.issued().len(), 1);
    setup.clock.advance(Duration::from_secs(2));
    setup.tokens.wait_for_issued(2).await;
}

#[tokio::test]
async fn a_missing_expires_in_means_one_hour() {
    let setup = Setup::start(None, |_, _| {}).await;
    setup.tokens.wait_for_issued(1).await;
    assert_eq!(
        setup.health().await["oauth"]["validUntil"],
        unix(setup.clock.now()) + 3600
    );
}

#[tokio::test]
async fn an_expired_token_is_fetched_once_for_many_waiting_requests() {
    let setup = Arc::new(Setup::start(Some(600), |_, _| {}).await);
    setup.tokens.wait_for_issued(1).await;
    // Far past expiry in one jump: requests find no valid token and must wait for one fetch.
    setup.clock.advance(Duration::from_secs(10_000));
    let requests: Vec<_> = (0..20)
        .map(|_| {
            let setup = setup.clone();
            tokio::spawn(async move { setup.chat().await.status() })
        })
        .collect();
    for request in requests {
        assert_eq!(request.await.unwrap(), StatusCode::OK);
    }
    assert_eq!(
        setup.tokens.issued().len(),
        2,
        "one fetch for all waiting requests"
    );
}

#[tokio::test]
async fn concurrent_load_across_refreshes_loses_no_request() {
    let setup = Arc::new(Setup::start(Some(600), |_, _| {}).await);
    setup.tokens.wait_for_issued(1).await;
    let mut failures = 0;
    for round in 1..=3 {
        let requests: Vec<_> = (0..40)
            .map(|_| {
                let setup = setup.clone();
                tokio::spawn(async move { setup.chat().await.status() })
            })
            .collect();
        // The refresh comes due while the requests are in flight.
        setup.clock.advance(Duration::from_secs(301));
        for request in requests {
            if request.await.unwrap() != StatusCode::OK {
                failures += 1;
            }
        }
        setup.tokens.wait_for_issued(round + 1).await;
    }
    assert_eq!(failures, 0);
    assert_eq!(
        setup.tokens.issued().len(),
        4,
        "one fetch per refresh due, no more"
    );
    assert_eq!(setup.target.received().len(), 120);
}

#[tokio::test]
async fn a_401_from_the_target_drops_the_token_and_replays_once() {
    let setup = Setup::start(Some(3600), |_, _| {}).await;
    setup.tokens.wait_for_issued(1).await;
    let first = setup.tokens.issued()[0].clone();
    setup.tokens.revoke(&first);

    let response = setup.chat().await;
    assert_eq!(response.status(), StatusCode::OK);
    let received = setup.target.received();
    assert_eq!(received.len(), 2);
    assert_eq!(
        received[0].headers["authorization"],
        format!("Bearer {first}").as_str()
    );
    let second = setup.tokens.issued()[1].clone();
    assert_eq!(
        received[1].headers["authorization"],
        format!("Bearer {second}").as_str()
    );
    assert_eq!(
        received[0].body, received[1].body,
        "the replay sends the same body"
    );

    // A stream request too: the replay happens before anything reaches the client. (Past the
    // 30 s in which a token fetched for a 401 is kept whatever the target says.)
    setup.target.always(Reply::Sse(
        vec![format!("data: {CHUNK}\n\n"), "data: [DONE]\n\n".into()],
        SseEnd::Close,
    ));
    setup.clock.advance(Duration::from_secs(31));
    setup.tokens.revoke(&second);
    let stream = setup
        .proxy
        .post(
            "/v1/chat/completions",
            &json!({"model": "m", "stream": true, "messages": []}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    assert_eq!(
        stream.text().await.unwrap(),
        format!("data: {CHUNK}\n\ndata: [DONE]\n\n")
    );
    assert_eq!(setup.tokens.issued().len(), 3);
}

#[tokio::test]
async fn a_second_401_goes_back_to_the_client_without_a_loop() {
    let setup = Setup::start(Some(3600), |_, _| {}).await;
    *setup.tokens.state.issue_dead.lock().unwrap() = true;
    setup.tokens.wait_for_issued(1).await;
    let response = setup.chat().await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        assert_envelope(&body)["message"],
        "Invalid or expired token."
    );
    assert_eq!(
        setup.target.received().len(),
        2,
        "one request and one replay"
    );
    assert_eq!(setup.tokens.issued().len(), 2, "one refresh for the 401");
}

#[tokio::test]
async fn a_token_fetched_for_a_401_is_kept_for_30_s_whatever_the_target_says() {
    let setup = Setup::start(Some(3600), |_, _| {}).await;
    *setup.tokens.state.issue_dead.lock().unwrap() = true;
    setup.tokens.wait_for_issued(1).await;
    for _ in 0..10 {
        assert_eq!(setup.chat().await.status(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        setup.tokens.issued().len(),
        2,
        "one fetch for the first 401, none for the next nine"
    );
    assert_eq!(
        setup.target.received().len(),
        11,
        "the first call replayed once, the others not at all"
    );
    setup.clock.advance(Duration::from_secs(31));
    assert_eq!(setup.chat().await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        setup.tokens.issued().len(),
        3,
        "after 30 s a 401 fetches again"
    );
}

#[tokio::test]
async fn startup_with_the_token_server_down_then_recovery() {
    let target = MockTarget::start().await;
    let tokens = MockTokenServer::start(Some(3600)).await;
    tokens.fail(Some(TokenFailure::Status(
        503,
        "<html>Service Unavailable</html>",
    )));
    target.require_tokens(tokens.state.live.clone());
    let clock = ManualClock::default();
    let upstream = UpstreamConfig::Target(TargetConfig {
        endpoint: target.url().parse().unwrap(),
        api: llm_proxy::config::TargetApi::OpenAi,
        credential: CredentialConfig::OAuth(oauth_config(&tokens.url)),
        extra_roots_pem: None,
    });
    // The server starts although no token can be had.
    let proxy = start_with_clock(upstream, clock.clone()).await;
    tokens.wait_for_attempts(1).await;

    let chat = json!({"model": "m", "messages": []});
    let response = proxy
        .post("/v1/chat/completions", &chat)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    let body: Value = response.json().await.unwrap();
    let error = assert_envelope(&body);
    assert_eq!(error["type"], "upstream_auth_error");
    assert_eq!(error["code"], "oauth_token_unavailable");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("HTTP 503") && message.contains("token"),
        "{message}"
    );
    // Failing fast: the request did not hammer the token server during the backoff.
    assert_eq!(tokens.attempts().len(), 1);
    assert!(
        target.received().is_empty(),
        "nothing is forwarded without a token"
    );

    let health: Value = proxy
        .http
        .get(format!("{}/health", proxy.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        health["oauth"]["lastError"]
            .as_str()
            .unwrap()
            .contains("503")
    );

    // Still down at the next attempt (backoff at most 1 s after the first failure, 2 s after
    // the second), then back: the proxy recovers by itself.
    clock.advance(Duration::from_secs(1));
    tokens.wait_for_attempts(2).await;
    tokens.fail(None);
    clock.advance(Duration::from_secs(2));
    tokens.wait_for_issued(1).await;
    let response = proxy
        .post("/v1/chat/completions", &chat)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let health: Value = proxy
        .http
        .get(format!("{}/health", proxy.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(health["oauth"]["lastError"].is_null());
}

#[tokio::test]
async fn each_token_server_failure_is_explained_to_the_client() {
    let cases: [(Option<TokenFailure>, &str); 4] = [
        (Some(TokenFailure::Garbage), "unusable answer"),
        (Some(TokenFailure::NoToken), "no access_token"),
        (
            Some(TokenFailure::Status(
                400,
                r#"{"error":"invalid_scope","error_description":"AADSTS70011: bad scope"}"#,
            )),
            "HTTP 400, invalid_scope: AADSTS70011: bad scope",
        ),
        (None, "could not be reached"),
    ];
    for (failure, expected) in cases {
        let target = MockTarget::start().await;
        let tokens = MockTokenServer::start(Some(3600)).await;
        let endpoint = match &failure {
            Some(_) => tokens.url.clone(),
            None => format!("{}/token", refused_target().await),
        };
        tokens.fail(failure.clone());
        let upstream = UpstreamConfig::Target(TargetConfig {
            endpoint: target.url().parse().unwrap(),
            api: llm_proxy::config::TargetApi::OpenAi,
            credential: CredentialConfig::OAuth(oauth_config(&endpoint)),
            extra_roots_pem: None,
        });
        let proxy = start_with_clock(upstream, ManualClock::default()).await;
        let response = proxy
            .post(
                "/v1/chat/completions",
                &json!({"model": "m", "messages": []}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
        let body: Value = response.json().await.unwrap();
        let message = assert_envelope(&body)["message"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(message.contains(expected), "{failure:?}: {message}");
        assert!(!message.contains(CLIENT_SECRET));
    }
}

#[tokio::test]
async fn auto_client_auth_falls_back_to_the_form_body_and_remembers() {
    let setup = Setup::start(Some(600), |_, tokens| {
        *tokens.state.accept.lock().unwrap() = AcceptAuth::Form
    })
    .await;
    setup.tokens.wait_for_issued(1).await;
    let attempts = setup.tokens.attempts();
    assert_eq!(attempts.len(), 2);
    assert_eq!(
        attempts[0].basic,
        Some((CLIENT_ID.into(), CLIENT_SECRET.into()))
    );
    assert!(!attempts[0].form.contains_key("client_secret"));
    assert_eq!(attempts[1].basic, None);
    assert_eq!(attempts[1].form["client_secret"], CLIENT_SECRET);
    assert_eq!(setup.health().await["oauth"]["clientAuth"], "post");

    // The next refresh goes straight to the form body.
    setup.clock.advance(Duration::from_secs(301));
    setup.tokens.wait_for_issued(2).await;
    let attempts = setup.tokens.attempts();
    assert_eq!(attempts.len(), 3);
    assert_eq!(attempts[2].basic, None);
}

#[tokio::test]
async fn basic_and_post_modes_send_credentials_only_where_asked() {
    let basic = Setup::start(Some(600), |c, t| {
        c.client_auth = ClientAuth::Basic;
        *t.state.accept.lock().unwrap() = AcceptAuth::Basic;
    })
    .await;
    basic.tokens.wait_for_issued(1).await;
    let attempt = &basic.tokens.attempts()[0];
    assert!(attempt.basic.is_some() && !attempt.form.contains_key("client_secret"));

    let post = Setup::start(Some(600), |c, t| {
        c.client_auth = ClientAuth::Post;
        c.audience = Some(AUDIENCE.into());
        *t.state.accept.lock().unwrap() = AcceptAuth::Form;
    })
    .await;
    post.tokens.wait_for_issued(1).await;
    let attempt = &post.tokens.attempts()[0];
    assert!(attempt.basic.is_none());
    assert_eq!(attempt.form["client_id"], CLIENT_ID);
    assert_eq!(attempt.form["audience"], AUDIENCE);
    assert_eq!(post.health().await["oauth"]["clientAuth"], "post");

    // Basic only, against a server that wants the form body: it fails and says so.
    let strict = Setup::start(Some(600), |c, t| {
        c.client_auth = ClientAuth::Basic;
        *t.state.accept.lock().unwrap() = AcceptAuth::Form;
    })
    .await;
    strict.tokens.wait_for_attempts(1).await;
    let body: Value = strict.chat().await.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("invalid_client")
    );
    assert_eq!(strict.tokens.attempts().len(), 1);
}

#[tokio::test]
async fn a_non_bearer_token_type_is_reported() {
    let setup = Setup::start(Some(600), |_, t| {
        *t.state.token_type.lock().unwrap() = "mac"
    })
    .await;
    setup.tokens.wait_for_issued(1).await;
    let warning = setup.health().await["oauth"]["warning"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(warning.contains("\"mac\""), "{warning}");
    assert_eq!(setup.chat().await.status(), StatusCode::OK);
}
