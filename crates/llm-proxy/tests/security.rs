//! The defences of a port every web page can try to reach: Host (DNS rebinding), CORS, the
//! failed-authentication limit, the concurrency cap, and header limits (slowloris, giant
//! headers). All through real sockets.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "in tests a failure should panic"
)]

mod common;

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::Duration;

use common::*;
use llm_proxy::config::UpstreamConfig;
use reqwest::StatusCode;
use serde_json::{Value, json};

fn client_from(address: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .local_address(address.parse::<IpAddr>().unwrap())
        .build()
        .unwrap()
}

/// A GET with the access token over a plain socket, its path sent exactly as written (HTTP
/// clients resolve `..` before sending); returns the status and the body. The connection is
/// closed after the answer, and waiting for it is bounded.
async fn raw_get(addr: SocketAddr, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let exchange = async {
        let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {ACCESS_TOKEN}\r\nConnection: close\r\n\r\n"
        );
        socket.write_all(request.as_bytes()).await.unwrap();
        let mut answer = Vec::new();
        socket.read_to_end(&mut answer).await.unwrap();
        String::from_utf8(answer).unwrap()
    };
    let answer = tokio::time::timeout(Duration::from_secs(30), exchange)
        .await
        .unwrap_or_else(|_| panic!("{path}: no complete answer within 30 s"));
    let (head, body) = answer
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("{path}: no end of head in {answer:?}"));
    let status = head
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("{path}: no status line in {head:?}"));
    (status, body.to_owned())
}

#[tokio::test]
async fn a_foreign_host_is_refused_whatever_the_token() {
    let mut config = config(UpstreamConfig::Placeholder);
    config.access.allowed_hosts = vec!["proxy.corp.internal".into()];
    config.base_url = Some("https://llm-proxy.example.org".parse().unwrap());
    let proxy = TestProxy::start(config).await;
    let port = proxy.handle.local_addr().port();
    for (host, expected) in [
        ("evil.example", StatusCode::FORBIDDEN),
        ("localhost.evil.example", StatusCode::FORBIDDEN),
        ("192.168.1.20", StatusCode::FORBIDDEN),
        ("localhost", StatusCode::OK),
        ("app.localhost", StatusCode::OK),
        ("LocalHost", StatusCode::OK),
        ("PROXY.corp.internal", StatusCode::OK),
        ("127.0.0.1", StatusCode::OK),
        ("[::1]", StatusCode::OK),
        ("proxy.corp.internal", StatusCode::OK),
        ("llm-proxy.example.org", StatusCode::OK),
    ] {
        let response = proxy
            .get("/v1/models")
            .header("host", format!("{host}:{port}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), expected, "{host}");
        if expected == StatusCode::FORBIDDEN {
            let body: Value = response.json().await.unwrap();
            assert_eq!(assert_envelope(&body)["code"], "host_not_allowed");
        }
    }
    // The dashboard, /health and the login are covered too.
    for (method, path) in [("GET", "/"), ("GET", "/health"), ("POST", "/api/login")] {
        let refused = proxy
            .http
            .request(method.parse().unwrap(), format!("{}{path}", proxy.url))
            .header("host", "evil.example")
            .json(&json!({"token": ACCESS_TOKEN}))
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), StatusCode::FORBIDDEN, "{method} {path}");
    }
    // Over HTTP/2 the host is `:authority`.
    let h2 = reqwest::Client::builder()
        .no_proxy()
        .http2_prior_knowledge()
        .resolve("evil.example", proxy.handle.local_addr())
        .build()
        .unwrap();
    let refused = h2
        .get(format!("http://evil.example:{port}/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.version(), reqwest::Version::HTTP_2);
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let allowed = h2
        .get(format!("http://127.0.0.1:{port}/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(allowed.status(), StatusCode::OK);
}

/// Sends `request` as written and returns the whole answer.
async fn raw_exchange(addr: std::net::SocketAddr, request: String) -> String {
    tokio::task::spawn_blocking(move || {
        let mut socket = TcpStream::connect(addr).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        socket.write_all(request.as_bytes()).unwrap();
        let mut answer = String::new();
        socket.read_to_string(&mut answer).unwrap();
        answer
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn a_stalled_request_body_gets_408_and_frees_its_slot() {
    let mut config = config(UpstreamConfig::Placeholder);
    config.limits.max_concurrency = 1;
    config.limits.body_idle_timeout = Duration::from_millis(300);
    let proxy = TestProxy::start(config).await;
    let addr = proxy.handle.local_addr();
    // A body of 1000 bytes promised and 12 sent, with the token and without (the login).
    for (path, token) in [
        (
            "/v1/chat/completions",
            format!("Authorization: Bearer {ACCESS_TOKEN}\r\n"),
        ),
        ("/api/login", String::new()),
    ] {
        let stalled = format!(
            "POST {path} HTTP/1.1\r\nHost: localhost\r\n{token}Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"model\":\"m\""
        );
        let answer = raw_exchange(addr, stalled).await;
        assert!(answer.starts_with("HTTP/1.1 408"), "{path}: {answer}");
        assert!(answer.contains("\"request_timeout\""), "{path}: {answer}");
        // The one request slot is free again.
        let chat = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]});
        let next = proxy
            .post("/v1/chat/completions", &chat)
            .send()
            .await
            .unwrap();
        assert_eq!(next.status(), StatusCode::OK, "after {path}");
    }
}

#[tokio::test]
async fn a_missing_or_repeated_host_header_is_refused_as_rfc_9112_says() {
    let proxy = TestProxy::placeholder().await;
    let addr = proxy.handle.local_addr();
    for (request, what) in [
        (
            "GET /health HTTP/1.1\r\nConnection: close\r\n\r\n",
            "no Host in HTTP/1.1",
        ),
        (
            "GET /health HTTP/1.1\r\nHost: localhost\r\nHost: localhost\r\nConnection: close\r\n\r\n",
            "two Hosts",
        ),
    ] {
        let answer = raw_exchange(addr, request.to_owned()).await;
        assert!(answer.starts_with("HTTP/1.1 400"), "{what}: {answer}");
        assert!(
            answer.contains("\"invalid_host_header\""),
            "{what}: {answer}"
        );
    }
    let old_tool = raw_exchange(addr, "GET /health HTTP/1.0\r\n\r\n".to_owned()).await;
    assert!(old_tool.starts_with("HTTP/1.0 200"), "{old_tool}");
}

#[tokio::test]
async fn cors_answers_only_configured_origins_and_never_a_wildcard() {
    let closed = TestProxy::placeholder().await;
    let preflight = |proxy: &TestProxy, origin: &str| {
        proxy
            .http
            .request(
                reqwest::Method::OPTIONS,
                format!("{}/v1/chat/completions", proxy.url),
            )
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization, content-type, x-stainless-os, openai-beta",
            )
            .send()
    };
    let response = preflight(&closed, "https://evil.example").await.unwrap();
    assert!(
        !response
            .headers()
            .contains_key("access-control-allow-origin")
    );

    let mut config = config(UpstreamConfig::Placeholder);
    config.access.cors_origins = vec!["https://app.example.com".into()];
    let open = TestProxy::start(config).await;
    let response = preflight(&open, "https://app.example.com").await.unwrap();
    assert!(response.status().is_success());
    assert_eq!(
        response.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    let allowed = response.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    for header in [
        "authorization",
        "content-type",
        "x-stainless-os",
        "openai-beta",
    ] {
        assert!(allowed.contains(header), "{header} not allowed: {allowed}");
    }
    let other = preflight(&open, "https://evil.example").await.unwrap();
    assert!(!other.headers().contains_key("access-control-allow-origin"));
    let actual = open
        .post(
            "/v1/chat/completions",
            &json!({"model": "m", "messages": [{"role": "user", "content": "x"}]}),
        )
        .header("origin", "https://app.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(
        actual.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
}

#[tokio::test]
async fn ten_wrong_tokens_lock_out_wrong_tokens_from_all_of_loopback_for_a_minute() {
    let proxy = TestProxy::placeholder().await;
    let attacker = client_from("127.0.0.7");
    let url = format!("{}/v1/models", proxy.url);
    for _ in 0..10 {
        let response = attacker
            .get(&url)
            .bearer_auth("guess")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    let locked = attacker
        .get(&url)
        .bearer_auth("guess")
        .send()
        .await
        .unwrap();
    assert_eq!(locked.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = locked.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry));
    let body: Value = locked.json().await.unwrap();
    assert_eq!(assert_envelope(&body)["code"], "rate_limit_exceeded");
    // Another loopback address is the same source: moving to it does not escape the lockout.
    for evading in ["127.0.0.8", "127.99.1.2"] {
        let guess = client_from(evading)
            .get(&url)
            .bearer_auth("guess")
            .send()
            .await
            .unwrap();
        assert_eq!(guess.status(), StatusCode::TOO_MANY_REQUESTS, "{evading}");
        let wrong_login = client_from(evading)
            .post(format!("{}/api/login", proxy.url))
            .json(&json!({"token": "guess"}))
            .send()
            .await
            .unwrap();
        assert_eq!(wrong_login.status(), StatusCode::TOO_MANY_REQUESTS);
    }
}

#[tokio::test]
async fn the_right_token_is_never_refused_by_the_lockout_and_a_missing_one_is_no_guess() {
    let proxy = TestProxy::placeholder().await;
    let url = format!("{}/v1/models", proxy.url);
    let tool = client_from("127.0.0.9");
    for _ in 0..15 {
        assert_eq!(
            tool.get(&url).send().await.unwrap().status(),
            StatusCode::UNAUTHORIZED,
            "a missing token is answered, and not counted"
        );
    }
    let misconfigured = client_from("127.0.0.7");
    for _ in 0..11 {
        misconfigured
            .get(&url)
            .bearer_auth("guess")
            .send()
            .await
            .unwrap();
    }
    let wrong = misconfigured
        .get(&url)
        .bearer_auth("guess")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::TOO_MANY_REQUESTS, "locked out");
    for client in [&misconfigured, &tool] {
        let right = client
            .get(&url)
            .bearer_auth(ACCESS_TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(right.status(), StatusCode::OK);
        let login = client
            .post(format!("{}/api/login", proxy.url))
            .json(&json!({"token": ACCESS_TOKEN}))
            .send()
            .await
            .unwrap();
        assert_eq!(login.status(), StatusCode::OK);
    }
}

#[tokio::test]
async fn requests_beyond_the_concurrency_cap_get_503_with_retry_after() {
    let target = MockTarget::start().await;
    for _ in 0..2 {
        target.once(Reply::Sse(
            vec![format!("data: {CHUNK}\n\n")],
            SseEnd::DoneOnRelease,
        ));
    }
    let models =
        r#"{"object":"list","data":[{"id":"m","object":"model","created":1,"owned_by":"corp"}]}"#;
    let proxy = TestProxy::forwarding(&target.url(), |l| l.max_concurrency = 2).await;
    let stream =
        json!({"model": "m", "stream": true, "messages": [{"role": "user", "content": "x"}]});
    let first = proxy
        .post("/v1/chat/completions", &stream)
        .send()
        .await
        .unwrap();
    let second = proxy
        .post("/v1/chat/completions", &stream)
        .send()
        .await
        .unwrap();
    assert_eq!(
        (first.status(), second.status()),
        (StatusCode::OK, StatusCode::OK)
    );

    let third = proxy.get("/v1/models").send().await.unwrap();
    assert_eq!(third.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(third.headers()["retry-after"], "1");
    let body: Value = third.json().await.unwrap();
    assert_eq!(assert_envelope(&body)["code"], "overloaded");

    // Finished streams give their slots back.
    target.release();
    target.release();
    first.text().await.unwrap();
    second.text().await.unwrap();
    target.once(Reply::Json(axum::http::StatusCode::OK, models.into()));
    let fourth = proxy.get("/v1/models").send().await.unwrap();
    assert_eq!(fourth.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_cut_off() {
    let mut config = config(UpstreamConfig::Placeholder);
    config.limits.header_read_timeout = Duration::from_millis(300);
    let proxy = TestProxy::start(config).await;
    let addr = proxy.handle.local_addr();
    let outcome = tokio::task::spawn_blocking(move || {
        let mut socket = TcpStream::connect(addr).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        socket
            .write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
            .unwrap();
        let mut buf = [0u8; 1024];
        // The server closes the connection (perhaps after a 408): the read ends rather than
        // waiting out our own 10 s timeout.
        let started = std::time::Instant::now();
        let read = socket.read(&mut buf);
        (
            started.elapsed(),
            read.map(|n| String::from_utf8_lossy(&buf[..n]).into_owned()),
        )
    })
    .await
    .unwrap();
    let (waited, read) = outcome;
    assert!(
        waited < Duration::from_secs(5),
        "the slow client was held {waited:?}"
    );
    if let Ok(text) = read {
        assert!(
            text.is_empty() || text.starts_with("HTTP/1.1 408"),
            "{text}"
        );
    }
    // Others are still served.
    let health = proxy
        .http
        .get(format!("{}/health", proxy.url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
}

#[tokio::test]
async fn giant_headers_are_refused_before_any_handler_runs() {
    let proxy = TestProxy::placeholder().await;
    let response = proxy
        .get("/v1/models")
        .header("x-giant", "a".repeat(200 * 1024))
        .send()
        .await;
    match response {
        Ok(response) => assert_eq!(
            response.status(),
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
        ),
        // hyper may also just close the connection on an oversized head.
        Err(err) => assert!(err.is_request() || err.is_connect(), "{err}"),
    }
    assert_eq!(
        proxy.get("/v1/models").send().await.unwrap().status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn the_target_never_comes_from_the_client() {
    let target = MockTarget::start().await;
    let proxy = TestProxy::forwarding(&target.url(), |_| {}).await;
    target.always(Reply::Json(
        axum::http::StatusCode::OK,
        r#"{"object":"list","data":[{"id":"m","object":"model","created":1,"owned_by":"corp"}]}"#
            .into(),
    ));
    // Headers naming another host and odd paths change nothing about where requests go.
    let response = proxy
        .get("/v1/models")
        .header("x-forwarded-host", "evil.example")
        .header("x-target-endpoint", "http://evil.example/v1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    // A path that climbs out of /v1, plain or percent-encoded, is refused as an invalid path:
    // neither forwarded nor answered with a file of the machine the proxy runs on.
    let forwarded = target.received().len();
    for path in ["/v1/../../etc/passwd", "/v1/%2e%2e/%2E%2E/etc/passwd"] {
        let (status, body) = raw_get(proxy.handle.local_addr(), path).await;
        assert_eq!(status, 400, "{path}: {body}");
        let body: Value =
            serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"));
        assert_eq!(assert_envelope(&body)["code"], "invalid_path", "{path}");
        assert!(!body.to_string().contains("root:"), "{path}: {body}");
    }
    assert_eq!(
        target.received().len(),
        forwarded,
        "a dotted path was forwarded"
    );
    for request in target.received() {
        assert!(
            request.path_and_query.starts_with("/v1/"),
            "{}",
            request.path_and_query
        );
        assert_eq!(
            request.headers["authorization"],
            format!("Bearer {TARGET_KEY}").as_str()
        );
        // The target's own name, not the one the client used for the proxy.
        assert_eq!(request.headers["host"], target.addr.to_string().as_str());
    }
}

#[tokio::test]
async fn a_redirect_to_another_origin_is_not_followed_with_the_credential() {
    // The elsewhere server records whether anything reached it, credential or not.
    let elsewhere = MockTarget::start().await;
    let target = MockTarget::start().await;
    let location = format!("{}/chat/completions", elsewhere.url());
    let location: &'static str = Box::leak(location.into_boxed_str());
    target.always(Reply::Body {
        status: axum::http::StatusCode::TEMPORARY_REDIRECT,
        content_type: "text/plain",
        body: bytes::Bytes::from_static(b"moved"),
        headers: vec![("location", location)],
    });
    let proxy = TestProxy::forwarding(&target.url(), |_| {}).await;
    let response = proxy
        .post(
            "/v1/chat/completions",
            &json!({"model": "m", "messages": [{"role": "user", "content": "x"}]}),
        )
        .send()
        .await
        .unwrap();
    assert!(
        !response.status().is_success(),
        "the redirect was not followed to a 200"
    );
    assert!(
        elsewhere.received().is_empty(),
        "nothing, and so no credential, reached the other origin"
    );
    assert_eq!(target.received().len(), 1);
}

/// A redirect from the mock target to `location`.
fn redirect(status: axum::http::StatusCode, location: &'static str) -> Reply {
    Reply::Body {
        status,
        content_type: "text/plain",
        body: bytes::Bytes::from_static(b"moved"),
        headers: vec![("location", location)],
    }
}

#[tokio::test]
async fn a_redirect_within_the_target_is_followed_as_browsers_do() {
    let target = MockTarget::start().await;
    let moved = Box::leak(format!("{}/chat/moved", target.url()).into_boxed_str());
    let proxy = TestProxy::forwarding(&target.url(), |_| {}).await;
    let request = json!({"model": "m", "messages": [{"role": "user", "content": "x"}]});
    let status_of_a_chat = || async {
        proxy
            .post("/v1/chat/completions", &request)
            .send()
            .await
            .unwrap()
            .status()
    };

    // 307 repeats the request, body and credential included, at the new place.
    target.once(redirect(axum::http::StatusCode::TEMPORARY_REDIRECT, moved));
    assert_eq!(status_of_a_chat().await, StatusCode::OK);
    let received = target.received();
    assert_eq!(received.len(), 2);
    assert_eq!(received[1].method, "POST");
    assert_eq!(received[1].path_and_query, "/v1/chat/moved");
    assert_eq!(received[1].body, received[0].body);
    assert_eq!(
        received[1].headers["authorization"],
        format!("Bearer {TARGET_KEY}").as_str()
    );

    // 303 continues with a GET, without the body or what described it; relative locations
    // resolve against the request's URL.
    target.once(redirect(axum::http::StatusCode::SEE_OTHER, "../answers/1"));
    assert_eq!(status_of_a_chat().await, StatusCode::OK);
    let followed = target.last();
    assert_eq!(followed.method, "GET");
    assert_eq!(followed.path_and_query, "/v1/answers/1");
    assert!(followed.body.is_empty());
    assert!(!followed.headers.contains_key("content-type"));

    // A loop ends after five redirects, with the last one returned as it came.
    let before = target.received().len();
    target.always(redirect(axum::http::StatusCode::TEMPORARY_REDIRECT, moved));
    assert!(!status_of_a_chat().await.is_success());
    assert_eq!(target.received().len() - before, 6);
}

#[tokio::test]
async fn a_path_cannot_climb_out_of_the_targets_v1() {
    let target = MockTarget::start().await;
    let proxy = TestProxy::forwarding(&target.url(), |_| {}).await;
    let addr = proxy.handle.local_addr();
    for path in [
        "/v1/../admin",
        "/v1/files/%2e%2E/admin",
        "/v1/./models",
        "/v1/files/.%2e",
        "/v1/files\\..\\admin",
        "/v1/..%2f..%2fadmin",
        "/v1/..%2F..%2Fadmin",
        "/v1/..%5c..%5cadmin",
        "/v1/..;/admin",
        "/v1/.;x/admin",
        "/v1/%252e%252e/admin",
        "/v1/%25252e%25252e/admin",
    ] {
        let (status, body) = raw_get(addr, path).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert!(body.contains("\"invalid_path\""), "{path}: {body}");
    }
    assert!(target.received().is_empty(), "{:?}", target.received());
    // Dots inside a segment are a name like any other.
    assert_eq!(
        proxy.get("/v1/files/a..b").send().await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(target.last().path_and_query, "/v1/files/a..b");
    // An encoded slash in a name (a model id with its organisation) is no climb.
    assert_eq!(
        proxy
            .get("/v1/models/org%2Fmodel")
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    assert_eq!(target.last().path_and_query, "/v1/models/org%2Fmodel");
}
