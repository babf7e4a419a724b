//! Forwarding to a target: bodies byte for byte, credentials swapped, headers filtered, streams
//! relayed, and every way a target fails answered in OpenAI's envelope.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "in tests a failure should panic"
)]

mod common;

use std::time::Duration;

use axum::http::StatusCode as MockStatus;
use bytes::Bytes;
use common::*;
use futures_util::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};

fn chat(stream: bool) -> Value {
    json!({"model": "gpt-4", "stream": stream, "messages": [{"role": "user", "content": "Hello"}]})
}

#[tokio::test]
async fn request_bodies_reach_the_target_byte_for_byte() {
    let target = MockTarget::start().await;
    let proxy = TestProxy::forwarding(&target.url(), |_| {}).await;
    // Odd spacing, key order, unicode escapes and a parameter no one has heard of: a
    // re-serializing proxy would change at least one of them.
    let body = "{ \"messages\":[{\"role\":\"user\",\"content\":\"caf\\u00e9 \u{1F600}\"}],\n  \"model\" : \"gpt-4\",\
                \"temperature\":0.70, \"x_future_param\":{\"nested\":[1,2.50,null]} }";
    let response = proxy
        .http
        .post(format!(
            "{}/v1/chat/completions?api-version=2024-06-01",
            proxy.url
        ))
        .bearer_auth(ACCESS_TOKEN)
        .header("content-type", "application/json")
        .header("openai-beta", "assistants=v2")
        .header("x-stainless-lang", "python")
        .header("connection", "keep-alive, x-hop")
        .header("x-hop", "1")
        .header("cookie", "dashboard=1")
        .header("x-api-key", ACCESS_TOKEN)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    let seen = target.last();
    assert_eq!(seen.body, Bytes::from(body));
    assert_eq!(seen.method, "POST");
    assert_eq!(
        seen.path_and_query,
        "/v1/chat/completions?api-version=2024-06-01"
    );
    assert_eq!(
        seen.headers["authorization"],
        format!("Bearer {TARGET_KEY}").as_str()
    );
    assert_eq!(seen.headers["openai-beta"], "assistants=v2");
    assert_eq!(seen.headers["x-stainless-lang"], "python");
    for dropped in ["x-hop", "cookie", "x-api-key", "api-key"] {
        assert!(
            !seen.headers.contains_key(dropped),
            "{dropped} reached the target"
        );
    }
    let all_headers = format!("{:?}", seen.headers);
    assert!(
        !all_headers.contains(ACCESS_TOKEN),
        "the client's token reached the target"
    );
}

#[tokio::test]
async fn without_a_target_key_no_credential_is_sent() {
    let target = MockTarget::start().await;
    let proxy = TestProxy::start(config(target_config(&target.url(), None))).await;
    proxy
        .post("/v1/chat/completions", &chat(false))
        .send()
        .await
        .unwrap();
    assert!(!target.last().headers.contains_key("authorization"));
}

#[tokio::test]
async fn responses_pass_back_untouched_with_the_headers_clients_use() {
    let target = MockTarget::start().await;
    let recorded = fixture("openai/chat-completion.json");
    let proxy = TestProxy::forwarding(&target.url(), |_| {}).await;
    let response = proxy
        .post("/v1/chat/completions", &chat(false))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["x-request-id"], "req_mock_1");
    assert_eq!(response.headers()["x-ratelimit-remaining-requests"], "99");
    assert!(!response.headers().contains_key("set-cookie"));
    let bytes = response.bytes().await.unwrap();
    assert_eq!(bytes, Bytes::from(recorded));
    assert_schema(
        "CreateChatCompletionResponse",
        &serde_json::from_slice(&bytes).unwrap(),
    );
}

#[tokio::test]
async fn models_and_embeddings_are_forwarded() {
    let target = MockTarget::start().await;
    let proxy = TestProxy::forwarding(&target.url(), |_| {}).await;
    let models = r#"{"object":"list","data":[{"id":"corp-llm","object":"model","created":1,"owned_by":"corp"}]}"#;
    target.once(Reply::Json(MockStatus::OK, models.into()));
    let body = proxy.get_text("/v1/models").await;
    assert_eq!(body, models);
    assert_eq!(target.last().method, "GET");
    assert_eq!(target.last().path_and_query, "/v1/models");

    let model = r#"{"id":"corp/llm:1","object":"model","created":1,"owned_by":"corp"}"#;
    target.once(Reply::Json(MockStatus::OK, model.into()));
    let body = proxy.get_text("/v1/models/corp%2Fllm:1").await;
    assert_eq!(body, model);
    assert_eq!(target.last().path_and_query, "/v1/models/corp%2Fllm:1");

    let embedding = r#"{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.1,0.2]}],"model":"e","usage":{"prompt_tokens":1,"total_tokens":1}}"#;
    target.once(Reply::Json(MockStatus::OK, embedding.into()));
    let response = proxy
        .post(
            "/v1/embeddings",
            &json!({"model": "e", "input": "hi", "stream": true}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.text().await.unwrap(), embedding);
    assert_eq!(target.last().path_and_query, "/v1/embeddings");
}

#[tokio::test]
async fn other_v1_paths_pass_through_with_multipart_and_binary_bodies() {
    let target = MockTarget::start().await;
    let proxy = TestProxy::forwarding(&target.url(), |_| {}).await;
    let boundary = "----proxytest";
    let mut multipart = Vec::new();
    multipart.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nfine-tune\r\n"
        )
        .as_bytes(),
    );
    multipart.extend_from_slice(
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes(),
    );
    multipart.extend((0..=255u8).cycle().take(100_000));
    multipart.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    target.once(Reply::Json(
        MockStatus::OK,
        r#"{"id":"file-1","object":"file"}"#.into(),
    ));
    let response = proxy
        .http
        .post(format!("{}/v1/files?purpose=x", proxy.url))
        .bearer_auth(ACCESS_TOKEN)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(multipart.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let seen = target.last();
    assert_eq!(seen.path_and_query, "/v1/files?purpose=x");
    assert_eq!(seen.body, Bytes::from(multipart));
    assert_eq!(
        seen.headers["content-type"],
        format!("multipart/form-data; boundary={boundary}").as_str()
    );
    assert_eq!(
        seen.headers["authorization"],
        format!("Bearer {TARGET_KEY}").as_str()
    );

    let audio: Vec<u8> = (0..50_000u32).map(|i| (i % 251) as u8).collect();
    target.once(Reply::Body {
        status: MockStatus::OK,
        content_type: "audio/mpeg",
        body: Bytes::from(audio.clone()),
        headers: vec![("content-disposition", "attachment; filename=\"speech.mp3\"")],
    });
    let response = proxy
        .post(
            "/v1/audio/speech",
            &json!({"model": "tts-1", "input": "hi", "voice": "alloy"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["content-type"], "audio/mpeg");
    assert_eq!(
        response.headers()["content-disposition"],
        "attachment; filename=\"speech.mp3\""
    );
    assert_eq!(response.bytes().await.unwrap(), Bytes::from(audio));

    let deleted = proxy
        .http
        .delete(format!("{}/v1/models/ft:corp", proxy.url))
        .bearer_auth(ACCESS_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::OK);
    assert_eq!(target.last().method, "DELETE");
}

#[tokio::test]
async fn streams_are_relayed_event_by_event() {
    let target = MockTarget::start().await;
    let recorded = fixture("openai/chat-completion-stream.sse");
    let events: Vec<String> = recorded
        .split_inclusive("\n\n")
        .map(str::to_owned)
        .collect();
    target.always(Reply::Sse(events.clone(), SseEnd::Close));
    let proxy = TestProxy::forwarding(&target.url(), |_| {}).await;
    let response = proxy
        .post("/v1/chat/completions", &chat(true))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    assert_eq!(response.headers()["x-request-id"], "req_mock_stream");
    let body = response.text().await.unwrap();
    assert_eq!(body, recorded, "the stream must arrive unchanged");
    for data in sse_data(&body).iter().filter(|d| *d != "[DONE]") {
        assert_schema(
            "CreateChatCompletionStreamResponse",
            &serde_json::from_str(data).unwrap(),
        );
    }
    let sent: Value = serde_json::from_slice(&target.last().body).unwrap();
    assert_eq!(sent["stream"], true);
}

#[tokio::test]
async fn the_first_event_arrives_before_the_stream_ends() {
    let target = MockTarget::start().await;
    target.always(Reply::Sse(vec![format!("data: {CHUNK}\n\n")], SseEnd::Hang));
    let proxy = TestProxy::forwarding(&target.url(), |_| {}).await;
    let response = proxy
        .post("/v1/chat/completions", &chat(true))
        .send()
        .await
        .unwrap();
    let mut body = response.bytes_stream();
    let first = tokio::time::timeout(Duration::from_secs(10), body.next())
        .await
        .expect("first event was held back");
    assert_eq!(
        first.unwrap().unwrap(),
        Bytes::from(format!("data: {CHUNK}\n\n"))
    );
}

#[tokio::test]
async fn a_client_that_disconnects_cancels_the_upstream_stream() {
    let target = MockTarget::start().await;
    target.always(Reply::Sse(vec![format!("data: {CHUNK}\n\n")], SseEnd::Hang));
    let proxy = TestProxy::forwarding(&target.url(), |_| {}).await;
    let response = proxy
        .post("/v1/chat/completions", &chat(true))
        .send()
        .await
        .unwrap();
    let mut body = response.bytes_stream();
    body.next().await.unwrap().unwrap();
    drop(body);
    target.wait_for_stream_drop().await;

    // The log keeps the answer as far as the client got it, and says the client went away.
    proxy.handle.state().log().written().await;
    let listed: Value = proxy.get_json("/api/logs/api-calls").await;
    let call = &listed["data"][0];
    assert_eq!(
        call["error"],
        "the client disconnected before the response was complete"
    );
    assert_eq!(call["responseBody"]["content"], "x", "{call}");
    assert_eq!(call["chunkCount"], 1, "{call}");
}

#[tokio::test]
async fn a_cut_stream_ends_with_an_error_event() {
    // One whole event and half of the next in chunked encoding, then the connection closes
    // without the final chunk: what a target that crashes mid-answer looks like on the wire.
    let first = format!("data: {CHUNK}\n\n");
    let wire = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n\
         {:x}\r\n{first}\r\ne\r\ndata: {{\"partia\r\n",
        first.len()
    );
    let target = raw_target(Box::leak(wire.into_bytes().into_boxed_slice())).await;
    let proxy = TestProxy::forwarding(&target, |_| {}).await;
    let response = proxy
        .post("/v1/chat/completions", &chat(true))
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body = response.text().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    let events = sse_data(&body);
    assert_eq!(events[0], CHUNK, "{body}");
    assert_eq!(events.len(), 2, "{body}");
    let error: Value = serde_json::from_str(&events[1]).unwrap();
    assert_eq!(assert_envelope(&error)["code"], "upstream_stream_error");
}

#[tokio::test]
async fn a_silent_stream_is_ended_after_the_idle_limit() {
    let target = MockTarget::start().await;
    target.always(Reply::Sse(vec![format!("data: {CHUNK}\n\n")], SseEnd::Hang));
    let proxy = TestProxy::forwarding(&target.url(), |l| {
        l.stream_idle_timeout = Duration::from_millis(300)
    })
    .await;
    let body = proxy.post_text("/v1/chat/completions", &chat(true)).await;
    let events = sse_data(&body);
    assert_eq!(events.len(), 2, "{body}");
    let error: Value = serde_json::from_str(&events[1]).unwrap();
    assert!(
        assert_envelope(&error)["message"]
            .as_str()
            .unwrap()
            .contains("sent nothing")
    );
}

#[tokio::test]
async fn openai_error_envelopes_pass_through_with_their_status() {
    let target = MockTarget::start().await;
    let proxy = TestProxy::forwarding(&target.url(), |_| {}).await;
    for (status, name) in [
        (400, "openai/error-400.json"),
        (404, "openai/error-404-model.json"),
    ] {
        let body = fixture(name);
        target.once(Reply::Json(
            MockStatus::from_u16(status).unwrap(),
            body.clone(),
        ));
        let response = proxy
            .post("/v1/chat/completions", &chat(false))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), status);
        assert_eq!(response.text().await.unwrap(), body);
    }
    // Also for a stream request: the error comes before any event.
    let body = fixture("openai/error-400.json");
    target.once(Reply::Json(MockStatus::BAD_REQUEST, body.clone()));
    let response = proxy
        .post("/v1/chat/completions", &chat(true))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(response.text().await.unwrap(), body);
}

#[tokio::test]
async fn foreign_error_bodies_are_wrapped_4xx_kept_5xx_as_502() {
    let target = MockTarget::start().await;
    let proxy = TestProxy::forwarding(&target.url(), |_| {}).await;
    let cases: [(u16, &'static str, &'static str, u16, &str); 4] = [
        (
            503,
            "text/html",
            "<html><head><title>503 Service Unavailable</title></head><body>at Foo.java:12</body></html>",
            502,
            "503 Service Unavailable",
        ),
        (
            500,
            "text/plain",
            "Traceback (most recent call last): boom",
            502,
            "Traceback",
        ),
        (
            418,
            "application/json",
            r#"{"message":"teapot, not a model"}"#,
            418,
            "teapot, not a model",
        ),
        (
            422,
            "application/json",
            r#"{"detail":"Unprocessable thing"}"#,
            422,
            "Unprocessable thing",
        ),
    ];
    for (status, content_type, body, expected, excerpt) in cases {
        target.once(Reply::Body {
            status: MockStatus::from_u16(status).unwrap(),
            content_type,
            body: Bytes::from(body),
            headers: vec![],
        });
        let response = proxy
            .post("/v1/chat/completions", &chat(false))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), expected, "{body}");
        let json: Value = response.json().await.unwrap();
        let error = assert_envelope(&json);
        let message = error["message"].as_str().unwrap();
        assert!(message.contains(excerpt), "{message}");
        assert!(message.contains(&status.to_string()), "{message}");
        assert!(!message.contains("Foo.java"), "{message}");
    }
}

#[tokio::test]
async fn a_target_that_echoes_our_key_has_it_redacted() {
    let target = MockTarget::start().await;
    let proxy = TestProxy::forwarding(&target.url(), |_| {}).await;
    let echo = format!(
        r#"{{"error":{{"message":"Incorrect API key provided: {TARGET_KEY}.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}}}"#
    );
    target.once(Reply::Json(MockStatus::UNAUTHORIZED, echo));
    let response = proxy
        .post("/v1/chat/completions", &chat(false))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let text = response.text().await.unwrap();
    assert!(!text.contains(TARGET_KEY), "{text}");
    assert!(text.contains("[redacted]"));

    target.once(Reply::Body {
        status: MockStatus::FORBIDDEN,
        content_type: "text/plain",
        body: Bytes::from(format!("bad key {TARGET_KEY}")),
        headers: vec![],
    });
    let text = proxy.post_text("/v1/chat/completions", &chat(false)).await;
    assert!(!text.contains(TARGET_KEY), "{text}");
}

#[tokio::test]
async fn an_unreachable_target_is_502() {
    let proxy = TestProxy::forwarding(&refused_target().await, |_| {}).await;
    for stream in [false, true] {
        let response = proxy
            .post("/v1/chat/completions", &chat(stream))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
        let body: Value = response.json().await.unwrap();
        assert_eq!(assert_envelope(&body)["code"], "upstream_unreachable");
    }
}

/// A listener that never accepts and whose accept queue is full, so a new connection to it
/// never completes (Linux drops the SYN), and the connections that filled it.
async fn never_connecting_target() -> (tokio::net::TcpListener, Vec<tokio::net::TcpStream>) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(0).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut filling = Vec::new();
    // Each connection the queue takes completes at once; the first it has no room for does not.
    while let Ok(connected) = tokio::time::timeout(
        Duration::from_millis(500),
        tokio::net::TcpStream::connect(addr),
    )
    .await
    {
        filling.push(connected.unwrap());
        assert!(filling.len() < 64, "the accept queue never filled");
    }
    (listener, filling)
}

#[tokio::test]
async fn a_target_that_never_completes_the_connection_is_502_after_the_connect_timeout_and_health_stays_ok()
 {
    let (target, _filling) = never_connecting_target().await;
    let url = format!("http://{}/v1", target.local_addr().unwrap());
    let proxy = TestProxy::forwarding(&url, |l| {
        l.connect_timeout = Duration::from_secs(1);
        l.request_timeout = Duration::from_secs(60);
    })
    .await;
    let started = std::time::Instant::now();
    let response = proxy
        .post("/v1/chat/completions", &chat(false))
        .send()
        .await
        .unwrap();
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "{took:?}"
    );
    // The connection never came up: the target is unreachable, not slow to answer.
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    let body: Value = response.json().await.unwrap();
    let error = assert_envelope(&body);
    assert_eq!(error["code"], "upstream_unreachable", "{body}");
    assert_eq!(error["type"], "server_error", "{body}");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .starts_with("could not connect to the target 127.0.0.1: "),
        "{body}"
    );
    // Whichever of the two connect timers fires first, the user reads the same words.
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .ends_with("connecting took longer than 1s"),
        "{body}"
    );

    let health = proxy.get("/health").send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let health: Value = health.json().await.unwrap();
    assert_eq!(health["status"], "healthy", "{health}");
}

#[tokio::test]
async fn a_target_that_never_answers_is_504() {
    let target = MockTarget::start().await;
    target.always(Reply::Hang);
    let proxy = TestProxy::forwarding(&target.url(), |l| {
        l.request_timeout = Duration::from_millis(300)
    })
    .await;
    for stream in [false, true] {
        let response = proxy
            .post("/v1/chat/completions", &chat(stream))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::GATEWAY_TIMEOUT);
        let body: Value = response.json().await.unwrap();
        assert_eq!(assert_envelope(&body)["code"], "upstream_timeout");
    }
}

#[tokio::test]
async fn malformed_and_cut_bodies_are_502() {
    let cases: [&'static [u8]; 3] = [
        // Shorter than declared, then closed.
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 500\r\n\r\n{\"id\":\"chatcmpl-1\",",
        // Complete, but not JSON.
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 9\r\nconnection: close\r\n\r\nnot json!",
        // Not HTTP at all.
        b"SSH-2.0-OpenSSH_9.2\r\n",
    ];
    for raw in cases {
        let proxy = TestProxy::forwarding(&raw_target(raw).await, |_| {}).await;
        let response = proxy
            .post("/v1/chat/completions", &chat(false))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::BAD_GATEWAY,
            "{}",
            String::from_utf8_lossy(raw)
        );
        assert_envelope(&response.json().await.unwrap());
    }
}

#[tokio::test]
async fn a_stream_request_answered_with_one_body_becomes_a_proper_stream() {
    let target = MockTarget::start().await;
    let proxy = TestProxy::forwarding(&target.url(), |_| {}).await;
    let mut request = chat(true);
    request["stream_options"] = json!({"include_usage": true});
    let response = proxy
        .post("/v1/chat/completions", &request)
        .send()
        .await
        .unwrap();
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let body = response.text().await.unwrap();
    let events = sse_data(&body);
    assert_eq!(events.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    for chunk in &chunks {
        assert_schema("CreateChatCompletionStreamResponse", chunk);
    }
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "Hello! How can I assist you today?");
    assert_eq!(chunks.last().unwrap()["usage"]["total_tokens"], 28);
}

/// `proxy;dur=<ms>, upstream;dur=<ms>` as numbers.
fn server_timing(response: &reqwest::Response) -> (f64, f64) {
    let timing = response.headers()["server-timing"].to_str().unwrap();
    let duration = |name: &str| -> f64 {
        timing
            .split(", ")
            .find_map(|part| part.strip_prefix(name)?.strip_prefix(";dur="))
            .unwrap_or_else(|| panic!("no {name} in {timing}"))
            .parse()
            .unwrap()
    };
    (duration("proxy"), duration("upstream"))
}

#[tokio::test]
async fn server_timing_splits_the_time_between_proxy_and_target() {
    let target = MockTarget::start().await;
    let completion = fixture("openai/chat-completion.json");
    target.always(Reply::Late(
        Duration::from_millis(150),
        Box::new(Reply::Json(MockStatus::OK, completion)),
    ));
    let proxy = TestProxy::forwarding(&target.url(), |_| {}).await;
    let started = std::time::Instant::now();
    let response = proxy
        .post("/v1/chat/completions", &chat(false))
        .send()
        .await
        .unwrap();
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    let (proxy_ms, upstream_ms) = server_timing(&response);
    assert!(
        upstream_ms >= 150.0,
        "the target took 150 ms: {upstream_ms}"
    );
    // The proxy's share is the time less the wait for the target: were the wait counted as
    // the proxy's, its share would be at least the target's 150 ms.
    assert!(
        proxy_ms < 150.0,
        "the proxy's own share {proxy_ms} ms includes the target's 150 ms"
    );
    assert!(
        proxy_ms + upstream_ms <= elapsed_ms,
        "{proxy_ms} + {upstream_ms} within the {elapsed_ms} ms the client waited"
    );

    // Streams carry it too (the target's share up to the stream's head), and it can be off.
    let response = proxy
        .post("/v1/chat/completions", &chat(true))
        .send()
        .await
        .unwrap();
    server_timing(&response);
    let mut config = config(target_config(&target.url(), None));
    config.server_timing = false;
    let quiet = TestProxy::start(config).await;
    let response = quiet
        .post("/v1/chat/completions", &chat(false))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers().get("server-timing").is_none());
}
