//! Starting, stopping and restarting servers: graceful drains, the grace limit, independent
//! instances in one process, and a clear error for a port in use.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "in tests a failure should panic"
)]

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use futures_util::StreamExt;
use llm_proxy::config::UpstreamConfig;
use reqwest::StatusCode;
use serde_json::json;

fn stream_request() -> serde_json::Value {
    json!({"model": "m", "stream": true, "messages": [{"role": "user", "content": "x"}]})
}

#[tokio::test]
async fn two_instances_in_one_process_do_not_interfere() {
    let a = TestProxy::placeholder().await;
    let mut other = config(UpstreamConfig::Placeholder);
    other.access_token = llm_proxy::config::AccessToken::supplied("another-token-for-b");
    let b = TestProxy::start(other).await;
    assert_ne!(a.handle.local_addr(), b.handle.local_addr());

    assert_eq!(
        a.get("/v1/models").send().await.unwrap().status(),
        StatusCode::OK
    );
    // A's token does not open B.
    assert_eq!(
        b.get("/v1/models").send().await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    let ok = b
        .http
        .get(format!("{}/v1/models", b.url))
        .bearer_auth("another-token-for-b")
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);

    // Stopping A leaves B serving.
    a.handle.shutdown().await;
    assert!(reqwest::get(format!("{}/health", a.url)).await.is_err());
    assert_eq!(
        reqwest::get(format!("{}/health", b.url))
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn shutdown_lets_an_in_flight_stream_finish() {
    let target = MockTarget::start().await;
    // The target sends one event, then waits; the test releases the rest after shutdown began.
    target.always(Reply::Sse(
        vec![format!("data: {CHUNK}\n\n")],
        SseEnd::DoneOnRelease,
    ));
    let proxy = TestProxy::forwarding(&target.url(), |l| {
        l.shutdown_grace = Duration::from_secs(30)
    })
    .await;
    let response = proxy
        .post("/v1/chat/completions", &stream_request())
        .send()
        .await
        .unwrap();
    let mut body = response.bytes_stream();
    assert_eq!(
        body.next().await.unwrap().unwrap(),
        Bytes::from(format!("data: {CHUNK}\n\n"))
    );

    let url = proxy.url.clone();
    let TestProxy { handle, .. } = proxy;
    handle.shutdown_token().cancel();
    // New connections are refused once shutdown has begun...
    let refused = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if reqwest::Client::new()
                .get(format!("{url}/health"))
                .send()
                .await
                .is_err()
            {
                return;
            }
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert!(refused.is_ok(), "the server kept accepting connections");
    // ...while the stream already under way is still open: no error event, no close.
    target.release();
    let rest = tokio::time::timeout(Duration::from_secs(10), body.next())
        .await
        .expect("stream stalled");
    assert_eq!(
        rest.unwrap().unwrap(),
        Bytes::from_static(b"data: [DONE]\n\n")
    );
    assert!(body.next().await.is_none(), "the stream should end cleanly");
    tokio::time::timeout(Duration::from_secs(10), handle.shutdown())
        .await
        .expect("shutdown did not complete once the stream was done");
}

#[tokio::test]
async fn a_stream_outliving_the_grace_period_ends_with_a_shutdown_error_event() {
    let target = MockTarget::start().await;
    target.always(Reply::Sse(vec![format!("data: {CHUNK}\n\n")], SseEnd::Hang));
    let proxy = TestProxy::forwarding(&target.url(), |l| {
        l.shutdown_grace = Duration::from_millis(200)
    })
    .await;
    let data_dir = proxy.get_json("/api/config").await["dataDir"]
        .as_str()
        .unwrap()
        .to_owned();
    let response = proxy
        .post("/v1/chat/completions", &stream_request())
        .send()
        .await
        .unwrap();
    let mut body = response.bytes_stream();
    body.next().await.unwrap().unwrap();
    tokio::time::timeout(Duration::from_secs(10), proxy.handle.shutdown())
        .await
        .expect("shutdown did not finish after the grace period");
    // The client reads a last error event and a proper end of the body, not a cut.
    let mut rest = Vec::new();
    while let Some(piece) = tokio::time::timeout(Duration::from_secs(10), body.next())
        .await
        .expect("stream still open")
    {
        rest.extend_from_slice(&piece.expect("the body ended properly"));
    }
    let rest = String::from_utf8(rest).unwrap();
    assert!(rest.starts_with("data: {\"error\""), "{rest}");
    assert!(rest.contains("\"code\":\"shutdown\""), "{rest}");
    target.wait_for_stream_drop().await;
    let db =
        rusqlite::Connection::open(std::path::Path::new(&data_dir).join("logs.sqlite3")).unwrap();
    let error: String = db
        .query_row(
            "SELECT error FROM api_calls ORDER BY id DESC LIMIT 1",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(error, "The proxy shut down before the stream was complete");
}

#[tokio::test]
async fn a_finished_request_does_not_hold_shutdown() {
    let proxy = TestProxy::placeholder().await;
    // A keep-alive connection stays open in the client's pool after this request.
    let response = proxy
        .post("/v1/chat/completions", &stream_request())
        .send()
        .await
        .unwrap();
    response.text().await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), proxy.handle.shutdown())
        .await
        .expect("an idle keep-alive connection held up shutdown");
}

#[tokio::test]
async fn a_server_can_be_started_again_on_another_port_with_another_config() {
    let first = TestProxy::placeholder().await;
    let first_addr = first.handle.local_addr();
    first.handle.shutdown().await;

    let target = MockTarget::start().await;
    let second = TestProxy::forwarding(&target.url(), |_| {}).await;
    assert_ne!(second.handle.local_addr(), first_addr);
    let response = second
        .post(
            "/v1/chat/completions",
            &json!({"model": "m", "messages": []}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    target.wait_for_requests(1).await;
}

#[tokio::test]
async fn a_port_in_use_is_a_clear_error_naming_it() {
    let taken = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = taken.local_addr().unwrap().port();
    let mut config = config(UpstreamConfig::Placeholder);
    config.port = port;
    let err = llm_proxy::start(config)
        .await
        .err()
        .expect("bound a port already in use");
    let message = err.to_string();
    assert!(message.contains(&format!("port {port}")), "{message}");
    assert!(message.contains("PROXY_PORT"), "{message}");
}

#[tokio::test]
async fn the_base_url_reflects_the_bound_port_or_the_configured_url() {
    let proxy = TestProxy::placeholder().await;
    assert_eq!(
        proxy.handle.base_url(),
        format!("http://localhost:{}", proxy.handle.local_addr().port())
    );
    let mut config = config(UpstreamConfig::Placeholder);
    config.base_url = Some("https://proxy.example.test/".parse().unwrap());
    let custom = TestProxy::start(config).await;
    assert_eq!(custom.handle.base_url(), "https://proxy.example.test");
}

#[tokio::test]
async fn http2_with_prior_knowledge_is_served_streams_included() {
    let proxy = TestProxy::placeholder().await;
    let http2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let models = http2
        .get(format!("{}/v1/models", proxy.url))
        .bearer_auth(ACCESS_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(models.version(), reqwest::Version::HTTP_2);
    assert_eq!(models.status(), StatusCode::OK);
    let stream = http2
        .post(format!("{}/v1/chat/completions", proxy.url))
        .bearer_auth(ACCESS_TOKEN)
        .json(&stream_request())
        .send()
        .await
        .unwrap();
    assert_eq!(stream.version(), reqwest::Version::HTTP_2);
    let text = stream.text().await.unwrap();
    assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
    // The same server still speaks HTTP/1.1 to everyone else.
    let health = proxy.get("/health").send().await.unwrap();
    assert_eq!(health.version(), reqwest::Version::HTTP_11);
}

#[tokio::test]
async fn a_client_that_connects_and_sends_nothing_is_closed() {
    let mut config = config(UpstreamConfig::Placeholder);
    config.limits.header_read_timeout = Duration::from_millis(300);
    let proxy = TestProxy::start(config).await;
    let addr = proxy.handle.local_addr();
    let mut silent = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut buf = [0u8; 64];
    // The server closes the connection: the read ends (0 bytes or a reset) well before the
    // test's own limit.
    let read = tokio::time::timeout(
        Duration::from_secs(10),
        tokio::io::AsyncReadExt::read(&mut silent, &mut buf),
    )
    .await
    .expect("a silent connection was held open");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
}

#[tokio::test]
async fn a_silent_connection_does_not_hold_shutdown() {
    let mut config = config(UpstreamConfig::Placeholder);
    // Neither the first-bytes limit nor the grace period may be what ends it.
    config.limits.header_read_timeout = Duration::from_secs(120);
    config.limits.shutdown_grace = Duration::from_secs(120);
    let proxy = TestProxy::start(config).await;
    let _silent = tokio::net::TcpStream::connect(proxy.handle.local_addr())
        .await
        .unwrap();
    // The connection is accepted and waiting for its first bytes.
    assert_eq!(
        proxy.get("/health").send().await.unwrap().status(),
        StatusCode::OK
    );
    tokio::time::timeout(Duration::from_secs(10), proxy.handle.shutdown())
        .await
        .expect("a silent connection held up shutdown");
}
