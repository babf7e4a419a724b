//! Faults the target and the network inflict: resets, a drip of bytes, megabytes of garbage,
//! a stream that never ends, a token server that never answers. Every client gets a proper
//! answer and the proxy keeps serving others.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "in tests a failure should panic"
)]

mod common;

use std::time::Duration;

use common::*;
use llm_proxy::config::UpstreamConfig;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn chat(stream: bool) -> Value {
    json!({"model": "m", "stream": stream, "messages": [{"role": "user", "content": "hi"}]})
}

/// A target that accepts, reads the request, and behaves as `serve` says.
async fn scripted_target<F, Fut>(serve: F) -> String
where
    F: Fn(tokio::net::TcpStream) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let serve = std::sync::Arc::new(serve);
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let serve = serve.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                let _ = socket.read(&mut buf).await;
                serve(socket).await;
            });
        }
    });
    format!("http://{addr}/v1")
}

async fn still_serving(proxy: &TestProxy) {
    let health = proxy
        .http
        .get(format!("{}/health", proxy.url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_connection_reset_is_a_502() {
    let target = scripted_target(|socket| async move {
        // A zero linger time makes the close send RST instead of FIN.
        #[allow(deprecated, reason = "the only portable way to send a reset")]
        let _ = socket.set_linger(Some(Duration::ZERO));
        drop(socket);
    })
    .await;
    let proxy = TestProxy::forwarding(&target, |_| {}).await;
    for stream in [false, true] {
        let response = proxy
            .post("/v1/chat/completions", &chat(stream))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
        assert_envelope(&response.json().await.unwrap());
    }
    still_serving(&proxy).await;
}

#[tokio::test]
async fn ten_megabytes_of_garbage_is_a_502_not_a_crash() {
    let target = scripted_target(|mut socket| async move {
        let garbage = vec![b'\xfe'; 10 * 1024 * 1024];
        let head = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            garbage.len()
        );
        let _ = socket.write_all(head.as_bytes()).await;
        let _ = socket.write_all(&garbage).await;
    })
    .await;
    let proxy = TestProxy::forwarding(&target, |_| {}).await;
    let response = proxy
        .post("/v1/chat/completions", &chat(false))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    let body: Value = response.json().await.unwrap();
    assert!(
        assert_envelope(&body)["message"].as_str().unwrap().len() < 500,
        "no garbage in the message"
    );
    still_serving(&proxy).await;
}

#[tokio::test]
async fn a_target_that_drips_bytes_is_waited_for_within_the_limits() {
    let target = scripted_target(|mut socket| async move {
        let body = fixture("openai/chat-completion.json");
        let head = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            body.len()
        );
        let _ = socket.write_all(head.as_bytes()).await;
        for piece in body.as_bytes().chunks(64) {
            let _ = socket.write_all(piece).await;
            let _ = socket.flush().await;
            tokio::task::yield_now().await;
        }
    })
    .await;
    let proxy = TestProxy::forwarding(&target, |_| {}).await;
    let response = proxy
        .post("/v1/chat/completions", &chat(false))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.text().await.unwrap(),
        fixture("openai/chat-completion.json")
    );
}

#[tokio::test]
async fn a_stream_that_never_ends_is_closed_by_the_idle_limit_and_others_go_on() {
    let target = MockTarget::start().await;
    target.once(Reply::Sse(vec![format!("data: {CHUNK}\n\n")], SseEnd::Hang));
    let proxy = TestProxy::forwarding(&target.url(), |l| {
        l.stream_idle_timeout = Duration::from_millis(300)
    })
    .await;
    let stuck = proxy.post("/v1/chat/completions", &chat(true)).send();
    let other = proxy.post("/v1/chat/completions", &chat(false)).send();
    let (stuck, other) = tokio::join!(stuck, other);
    assert_eq!(other.unwrap().status(), StatusCode::OK);
    let text = stuck.unwrap().text().await.unwrap();
    let last = sse_data(&text).pop().unwrap();
    assert_eq!(
        assert_envelope(&serde_json::from_str(&last).unwrap())["code"],
        "upstream_stream_error"
    );
}

#[tokio::test]
async fn a_token_server_that_never_answers_fails_requests_fast_after_the_first() {
    // The token server accepts and never answers; requests fail with the token error once the
    // token request times out, and the proxy keeps answering /health meanwhile.
    let hanging = scripted_target(|socket| async move {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        drop(socket);
    })
    .await;
    let target = MockTarget::start().await;
    let oauth = llm_proxy::config::OAuthConfig {
        token_endpoint: format!("{hanging}/token").parse().unwrap(),
        client_id: CLIENT_ID.into(),
        client_secret: secrecy::SecretString::from(CLIENT_SECRET),
        scope: None,
        audience: None,
        client_auth: llm_proxy::config::ClientAuth::Basic,
        refresh_buffer: Duration::from_secs(300),
    };
    let upstream = UpstreamConfig::Target(llm_proxy::config::TargetConfig {
        endpoint: target.url().parse().unwrap(),
        api: llm_proxy::config::TargetApi::OpenAi,
        credential: llm_proxy::config::CredentialConfig::OAuth(oauth),
        extra_roots_pem: None,
    });
    let mut config = config(upstream);
    config.limits.request_timeout = Duration::from_millis(500);
    let proxy = TestProxy::start(config).await;
    still_serving(&proxy).await;
    let response = proxy
        .post("/v1/chat/completions", &chat(false))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::GATEWAY_TIMEOUT,
        "the request gives up at its own timeout"
    );
    assert!(target.received().is_empty());
    still_serving(&proxy).await;
}
