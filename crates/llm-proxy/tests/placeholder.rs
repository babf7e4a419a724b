//! Placeholder mode and the proxy's own surface: auth, validation, limits and error shapes,
//! all through a real socket, every answer checked against OpenAI's schemas.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "in tests a failure should panic"
)]

mod common;

use base64::Engine;
use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

#[tokio::test]
async fn health_needs_no_token_and_reports_mode() {
    let proxy = TestProxy::placeholder().await;
    let response = proxy
        .http
        .get(format!("{}/health", proxy.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "healthy");
    assert_eq!(body["mode"], "placeholder");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    assert!(body["uptimeSeconds"].is_u64());
}

#[tokio::test]
async fn models_are_listed_and_any_id_is_retrievable() {
    let proxy = TestProxy::placeholder().await;
    let list: Value = proxy.get_json("/v1/models").await;
    assert_schema("ListModelsResponse", &list);
    assert!(
        list["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["id"] == "gpt-4o")
    );

    let one = proxy.get("/v1/models/gpt-4o").send().await.unwrap();
    assert_eq!(one.status(), StatusCode::OK);
    assert_schema("Model", &one.json().await.unwrap());

    // As the original did: any id the placeholder would chat with is a model.
    let unlisted = proxy.get("/v1/models/gpt-4").send().await.unwrap();
    assert_eq!(unlisted.status(), StatusCode::OK);
    let body: Value = unlisted.json().await.unwrap();
    assert_schema("Model", &body);
    assert_eq!(body["id"], "gpt-4");
}

#[tokio::test]
async fn chat_answer_is_valid_and_echoes_the_user() {
    let proxy = TestProxy::placeholder().await;
    let response = proxy
        .post(
            "/v1/chat/completions",
            &json!({"model": "gpt-4o", "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Hello proxy"}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()[reqwest::header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let body: Value = response.json().await.unwrap();
    assert_schema("CreateChatCompletionResponse", &body);
    assert_eq!(body["model"], "gpt-4o");
    assert!(
        body["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .contains("Hello proxy")
    );
    let usage = &body["usage"];
    assert_eq!(
        usage["total_tokens"].as_u64().unwrap(),
        usage["prompt_tokens"].as_u64().unwrap() + usage["completion_tokens"].as_u64().unwrap()
    );
}

#[tokio::test]
async fn chat_stream_is_word_by_word_chunks_with_usage() {
    let proxy = TestProxy::placeholder().await;
    let response = proxy
        .post(
            "/v1/chat/completions",
            &json!({"model": "gpt-4o-mini", "stream": true, "stream_options": {"include_usage": true},
                    "messages": [{"role": "user", "content": "stream me"}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()[reqwest::header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let text = response.text().await.unwrap();
    let events = sse_data(&text);
    assert_eq!(events.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    assert!(
        chunks.len() > 5,
        "expected many chunks, got {}",
        chunks.len()
    );
    for chunk in &chunks {
        assert_schema("CreateChatCompletionStreamResponse", chunk);
        assert_eq!(chunk["id"], chunks[0]["id"], "one id for the whole stream");
    }
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let content: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert!(content.contains("stream me"));
    let finish = &chunks[chunks.len() - 2];
    assert_eq!(finish["choices"][0]["finish_reason"], "stop");
    let usage_chunk = chunks.last().unwrap();
    assert_eq!(usage_chunk["choices"], json!([]));
    assert!(usage_chunk["usage"]["total_tokens"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn chat_stream_without_usage_option_has_no_usage_chunk() {
    let proxy = TestProxy::placeholder().await;
    let text = proxy
        .post(
            "/v1/chat/completions",
            &json!({"model": "m", "stream": true, "messages": [{"role": "user", "content": "x"}]}),
        )
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let events = sse_data(&text);
    for event in &events[..events.len() - 1] {
        let chunk: Value = serde_json::from_str(event).unwrap();
        assert!(chunk.get("usage").is_none());
        assert_eq!(chunk["choices"].as_array().unwrap().len(), 1);
    }
}

#[tokio::test]
async fn completions_plain_and_streamed() {
    let proxy = TestProxy::placeholder().await;
    let body: Value = proxy
        .post(
            "/v1/completions",
            &json!({"model": "gpt-3.5-turbo-instruct", "prompt": "Say this is a test"}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_schema("CreateCompletionResponse", &body);
    assert_eq!(body["object"], "text_completion");

    let text = proxy
        .post(
            "/v1/completions",
            &json!({"model": "m", "prompt": ["a", "b"], "stream": true}),
        )
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let events = sse_data(&text);
    assert_eq!(events.last().unwrap(), "[DONE]");
    for event in &events[..events.len() - 1] {
        let mut chunk: Value = serde_json::from_str(event).unwrap();
        // The spec has no schema for completion chunks and reuses the final one, whose
        // finish_reason is a string; OpenAI sends null until the last chunk, and so do we.
        if let Some(choice) = chunk["choices"].get_mut(0)
            && choice["finish_reason"].is_null()
        {
            choice["finish_reason"] = json!("stop");
        }
        assert_schema("CreateCompletionResponse", &chunk);
    }
}

#[tokio::test]
async fn embeddings_are_deterministic_in_both_encodings() {
    let proxy = TestProxy::placeholder().await;
    let request = json!({"model": "text-embedding-3-small", "input": ["alpha", "beta", "alpha"], "dimensions": 8});
    let floats: Value = proxy.post_json("/v1/embeddings", &request).await;
    assert_schema("CreateEmbeddingResponse", &floats);
    let data = floats["data"].as_array().unwrap();
    assert_eq!(data.len(), 3);
    assert_eq!(data[0]["embedding"].as_array().unwrap().len(), 8);
    assert_eq!(data[0]["embedding"], data[2]["embedding"]);
    assert_ne!(data[0]["embedding"], data[1]["embedding"]);

    let mut b64_request = request.clone();
    b64_request["encoding_format"] = json!("base64");
    let mut b64: Value = proxy.post_json("/v1/embeddings", &b64_request).await;
    // OpenAI sends base64 embeddings as strings, which its spec does not model: decode them,
    // compare with the float answer, then check the rest of the shape.
    for (item, float_item) in b64["data"].as_array_mut().unwrap().iter_mut().zip(data) {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(item["embedding"].as_str().unwrap())
            .unwrap();
        let decoded: Vec<f64> = bytes
            .chunks(4)
            .map(|c| f64::from(f32::from_le_bytes(c.try_into().unwrap())))
            .collect();
        let expected: Vec<f64> = float_item["embedding"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert_eq!(decoded, expected);
        item["embedding"] = json!(decoded);
    }
    assert_schema("CreateEmbeddingResponse", &b64);

    let bad = proxy
        .post(
            "/v1/embeddings",
            &json!({"model": "m", "input": "x", "encoding_format": "hex"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        assert_envelope(&bad.json().await.unwrap())["param"],
        "encoding_format"
    );
}

#[tokio::test]
async fn every_key_header_form_is_accepted() {
    let proxy = TestProxy::placeholder().await;
    let url = format!("{}/v1/models", proxy.url);
    for (name, value) in [
        ("authorization", format!("Bearer {ACCESS_TOKEN}")),
        ("api-key", ACCESS_TOKEN.to_owned()),
        ("x-api-key", ACCESS_TOKEN.to_owned()),
    ] {
        let response = proxy
            .http
            .get(&url)
            .header(name, value)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{name}");
    }
}

#[tokio::test]
async fn missing_or_wrong_token_is_401_in_openai_shape_without_echo() {
    let proxy = TestProxy::placeholder().await;
    let chat = json!({"model": "m", "messages": [{"role": "user", "content": "x"}]});
    let url = format!("{}/v1/chat/completions", proxy.url);
    let missing = proxy.http.post(&url).json(&chat).send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
    let body: Value = missing.json().await.unwrap();
    let error = assert_envelope(&body);
    assert_eq!(error["type"], "invalid_request_error");
    assert_eq!(error["code"], "invalid_api_key");

    let presented = "sk-someone-elses-real-key-9876";
    let wrong = proxy
        .http
        .post(&url)
        .bearer_auth(presented)
        .json(&chat)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let text = wrong.text().await.unwrap();
    assert!(
        !text.contains(presented) && !text.contains("9876"),
        "{text}"
    );
    assert_eq!(
        assert_envelope(&serde_json::from_str(&text).unwrap())["code"],
        "invalid_api_key"
    );

    // Unknown /v1 paths are guarded too.
    let unknown = proxy
        .http
        .get(format!("{}/v1/files", proxy.url))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn malformed_json_and_missing_parameters_are_400_naming_the_param() {
    let proxy = TestProxy::placeholder().await;
    let send = |path: &'static str, body: &'static str| {
        proxy
            .http
            .post(format!("{}{path}", proxy.url))
            .bearer_auth(ACCESS_TOKEN)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let malformed = send("/v1/chat/completions", "{\"model\": \"m\", \"messages\": [")
        .await
        .unwrap();
    assert_eq!(malformed.status(), StatusCode::BAD_REQUEST);
    let body: Value = malformed.json().await.unwrap();
    let error = assert_envelope(&body);
    assert_eq!(error["type"], "invalid_request_error");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("could not parse the JSON body")
    );

    for (path, body, param) in [
        ("/v1/chat/completions", r#"{"messages":[]}"#, "model"),
        ("/v1/chat/completions", r#"{"model":"m"}"#, "messages"),
        ("/v1/completions", r#"{"model":"m"}"#, "prompt"),
        ("/v1/embeddings", r#"{"model":"m"}"#, "input"),
    ] {
        let response = send(path, body).await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{path} {body}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(assert_envelope(&body)["param"], param);
    }
}

#[tokio::test]
async fn unknown_routes_are_404_naming_the_path_sent_and_wrong_methods_405_in_the_envelope() {
    let proxy = TestProxy::placeholder().await;
    let not_found = proxy
        .http
        .get(format!("{}/nope", proxy.url))
        .send()
        .await
        .unwrap();
    assert_eq!(not_found.status(), StatusCode::NOT_FOUND);
    assert_envelope(&not_found.json().await.unwrap());

    let wrong_method = proxy.get("/v1/chat/completions").send().await.unwrap();
    assert_eq!(wrong_method.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_envelope(&wrong_method.json().await.unwrap());

    let health_post = proxy
        .http
        .post(format!("{}/health", proxy.url))
        .send()
        .await
        .unwrap();
    assert_eq!(health_post.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_envelope(&health_post.json().await.unwrap());

    let other_v1 = proxy.get("/v1/audio/speech").send().await.unwrap();
    assert_eq!(other_v1.status(), StatusCode::NOT_FOUND);
    let body: Value = other_v1.json().await.unwrap();
    let message = assert_envelope(&body)["message"].as_str().unwrap();
    assert!(
        message.starts_with("/v1/audio/speech is not available"),
        "{message}"
    );

    let unknown_api = proxy.get("/api/nope").send().await.unwrap();
    assert_eq!(unknown_api.status(), StatusCode::NOT_FOUND);
    let body: Value = unknown_api.json().await.unwrap();
    assert_eq!(assert_envelope(&body)["message"], "Unknown path: /api/nope");
}

#[tokio::test]
async fn oversized_bodies_are_413_by_declared_length_and_while_reading() {
    let mut config = config(llm_proxy::config::UpstreamConfig::Placeholder);
    config.limits.max_request_body_bytes = 1024;
    let proxy = TestProxy::start(config).await;
    let big = json!({"model": "m", "messages": [{"role": "user", "content": "x".repeat(4096)}]});

    let declared = proxy
        .post("/v1/chat/completions", &big)
        .send()
        .await
        .unwrap();
    assert_eq!(declared.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        assert_envelope(&declared.json().await.unwrap())["code"],
        "request_too_large"
    );

    // Chunked: no Content-Length, so the limit is found while reading.
    let bytes = serde_json::to_vec(&big).unwrap();
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        bytes.chunks(256).map(|c| Ok(c.to_vec())).collect();
    let chunked = proxy
        .http
        .post(format!("{}/v1/chat/completions", proxy.url))
        .bearer_auth(ACCESS_TOKEN)
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(chunked.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_envelope(&chunked.json().await.unwrap());

    let small = proxy
        .post(
            "/v1/chat/completions",
            &json!({"model": "m", "messages": [{"role": "user", "content": "ok"}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(small.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_dashboard_is_served_without_a_token_under_a_strict_csp() {
    let proxy = TestProxy::placeholder().await;
    let page = proxy
        .http
        .get(format!("{}/", proxy.url))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("script-src 'self'"),
        "{csp}"
    );
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    let html = page.text().await.unwrap();
    assert!(html.contains("<script type=\"module\" src=\"app.js\">"));
    // Everything the page loads is its own, from this server.
    assert!(!html.contains("http://") && !html.contains("https://"));

    for (path, content_type) in [
        ("/app.js", "text/javascript"),
        ("/views/calls.js", "text/javascript"),
        ("/style.css", "text/css"),
    ] {
        let asset = proxy
            .http
            .get(format!("{}{path}", proxy.url))
            .send()
            .await
            .unwrap();
        assert_eq!(asset.status(), StatusCode::OK, "{path}");
        assert!(
            asset.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with(content_type),
            "{path}"
        );
        assert_eq!(asset.headers()["x-content-type-options"], "nosniff");
    }
    let session: Value = proxy
        .http
        .get(format!("{}/api/session", proxy.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(session["authenticated"], false);
    let missing = proxy
        .http
        .get(format!("{}/views/nope.js", proxy.url))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}
