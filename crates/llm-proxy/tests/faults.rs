//! Faults the target and the network inflict: resets, a drip of bytes, megabytes of garbage,
//! a stream that never ends, a token server that never answers. Every client gets a proper
//! answer and the proxy keeps serving others.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "in tests a failure should panic"
)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::*;
use llm_proxy::config::UpstreamConfig;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::Notify;

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
    let serve = Arc::new(serve);
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
async fn a_token_server_that_never_answers_is_asked_once_and_each_request_ends_at_its_own_timeout()
{
    // The token server accepts and never answers, so the proxy's one token request (the fetch
    // at startup) hangs until the 30 s token timeout. Every request that needs the token waits
    // on that same fetch instead of asking again, and gives up at the proxy's own request
    // timeout (500 ms here) with a 504; /health keeps answering meanwhile.
    let asked = Arc::new(AtomicUsize::new(0));
    let first_ask = Arc::new(Notify::new());
    let hanging = scripted_target({
        let (asked, first_ask) = (asked.clone(), first_ask.clone());
        move |socket| {
            asked.fetch_add(1, Ordering::SeqCst);
            first_ask.notify_one();
            async move {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                drop(socket);
            }
        }
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
    // The startup fetch is under way before the first request is sent.
    tokio::time::timeout(Duration::from_secs(30), first_ask.notified())
        .await
        .expect("the proxy never asked the token server for a token");
    still_serving(&proxy).await;

    let timed_chat = || async {
        let started = Instant::now();
        let response = proxy
            .post("/v1/chat/completions", &chat(false))
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        (status, body, started.elapsed())
    };
    let mut outcomes = Vec::new();
    for _ in 0..3 {
        outcomes.push(timed_chat().await);
    }
    let (a, b, c) = tokio::join!(timed_chat(), timed_chat(), timed_chat());
    outcomes.extend([a, b, c]);
    for (status, body, waited) in &outcomes {
        assert_eq!(*status, StatusCode::GATEWAY_TIMEOUT, "{body}");
        assert_eq!(assert_envelope(body)["code"], "upstream_timeout", "{body}");
        assert!(
            *waited >= Duration::from_millis(500) && *waited < Duration::from_secs(10),
            "the request ended after {waited:?}, not at its own 500 ms timeout"
        );
    }
    assert_eq!(
        asked.load(Ordering::SeqCst),
        1,
        "six requests asked the token server again instead of waiting on the startup fetch"
    );
    assert!(target.received().is_empty());
    still_serving(&proxy).await;
}
