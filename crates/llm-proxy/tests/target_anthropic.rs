//! `TARGET_API=anthropic`: OpenAI chat requests written as Anthropic Messages requests, sent to
//! a mock that validates them as strictly as Anthropic's API, and its answers read back as
//! OpenAI's, whole and streamed.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "in tests a failure should panic"
)]

mod common;

use common::anthropic::{AnthropicReply, MockAnthropic};
use common::*;
use llm_proxy::config::{CredentialConfig, TargetApi, TargetConfig, UpstreamConfig};
use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::{Value, json};

async fn proxy_to(mock: &MockAnthropic) -> TestProxy {
    TestProxy::start(config(UpstreamConfig::Target(TargetConfig {
        endpoint: mock.url().parse().unwrap(),
        api: TargetApi::Anthropic,
        credential: CredentialConfig::ApiKey(SecretString::from(TARGET_KEY)),
        extra_roots_pem: None,
    })))
    .await
}

fn hello(stream: bool) -> Value {
    json!({"model": "claude-sonnet-4-5", "stream": stream,
           "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}]})
}

#[tokio::test]
async fn a_chat_request_reaches_anthropic_as_messages_and_comes_back_as_a_completion() {
    let mock = MockAnthropic::start().await;
    let proxy = proxy_to(&mock).await;
    let response = proxy
        .post("/v1/chat/completions", &hello(false))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let completion: Value = response.json().await.unwrap();
    assert_schema("CreateChatCompletionResponse", &completion);
    assert_eq!(
        completion["choices"][0]["message"]["content"],
        "Hello from the mock."
    );
    assert_eq!(completion["choices"][0]["finish_reason"], "stop");
    assert!(completion["usage"]["prompt_tokens"].as_u64().unwrap() > 0);

    let sent = mock.last();
    assert_eq!(sent.headers["x-api-key"], TARGET_KEY);
    assert_eq!(sent.headers["anthropic-version"], "2023-06-01");
    assert!(
        sent.headers.get("authorization").is_none(),
        "the key goes in x-api-key only"
    );
    assert_eq!(sent.body["system"], "Be brief.");
    assert_eq!(sent.body["max_tokens"], 4096);
}

#[tokio::test]
async fn a_streamed_chat_comes_back_as_openai_chunks_ending_with_done() {
    let mock = MockAnthropic::start().await;
    let proxy = proxy_to(&mock).await;
    let text = proxy.post_text("/v1/chat/completions", &hello(true)).await;
    let events = sse_data(&text);
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    let mut content = String::new();
    for event in &events[..events.len() - 1] {
        let chunk: Value = serde_json::from_str(event).unwrap();
        assert_schema("CreateChatCompletionStreamResponse", &chunk);
        content.push_str(
            chunk["choices"][0]["delta"]["content"]
                .as_str()
                .unwrap_or(""),
        );
    }
    assert_eq!(content, "Hello from the mock.");
    assert_eq!(mock.last().body["stream"], true);
}

#[tokio::test]
async fn tool_calls_over_two_turns_pass_the_tool_result_rules() {
    let mock = MockAnthropic::start().await;
    let proxy = proxy_to(&mock).await;
    let tools = json!([{"type": "function", "function": {"name": "weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]);
    mock.set_reply(AnthropicReply::ToolUse {
        name: "weather".into(),
        input: json!({"city": "Paris"}),
    });
    let first = proxy
        .post_json(
            "/v1/chat/completions",
            &json!({"model": "claude", "tools": tools, "messages": [{"role": "user", "content": "Weather in Paris?"}]}),
        )
        .await;
    let message = &first["choices"][0]["message"];
    assert_eq!(first["choices"][0]["finish_reason"], "tool_calls");
    let call = &message["tool_calls"][0];
    assert_eq!(call["function"]["name"], "weather");
    assert_eq!(
        serde_json::from_str::<Value>(call["function"]["arguments"].as_str().unwrap()).unwrap(),
        json!({"city": "Paris"})
    );

    mock.set_reply(AnthropicReply::Text);
    let second = proxy
        .post(
            "/v1/chat/completions",
            &json!({"model": "claude", "tools": tools, "messages": [
            {"role": "user", "content": "Weather in Paris?"},
            message,
            {"role": "tool", "tool_call_id": call["id"], "content": "15C and sunny"}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        second.status(),
        StatusCode::OK,
        "{}",
        second.text().await.unwrap()
    );
    let sent = mock.last().body;
    assert_eq!(sent["messages"][1]["content"][0]["type"], "tool_use");
    assert_eq!(sent["messages"][2]["content"][0]["tool_use_id"], call["id"]);
}

#[tokio::test]
async fn an_image_data_url_reaches_anthropic_as_a_base64_image() {
    let mock = MockAnthropic::start().await;
    let proxy = proxy_to(&mock).await;
    let request = json!({"model": "claude", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]}]});
    let response = proxy
        .post("/v1/chat/completions", &request)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        mock.last().body["messages"][0]["content"][1]["source"],
        json!({"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="})
    );
}

#[tokio::test]
async fn a_parameter_anthropic_cannot_express_is_a_400_naming_it_and_nothing_is_sent() {
    let mock = MockAnthropic::start().await;
    let proxy = proxy_to(&mock).await;
    for (param, value) in [
        ("n", json!(3)),
        ("logit_bias", json!({"1": 5})),
        ("logprobs", json!(true)),
    ] {
        let mut request = hello(false);
        request[param] = value;
        let response = proxy
            .post("/v1/chat/completions", &request)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let body: Value = response.json().await.unwrap();
        let error = assert_envelope(&body);
        assert_eq!(error["param"], param);
        assert_eq!(error["code"], "unsupported_parameter");
        assert!(
            error["message"].as_str().unwrap().contains("anthropic"),
            "{body}"
        );
    }
    assert!(mock.requests().is_empty());
}

#[tokio::test]
async fn a_dropped_hint_is_noted_in_the_calls_log_entry() {
    let mock = MockAnthropic::start().await;
    let proxy = proxy_to(&mock).await;
    let mut request = hello(false);
    request["store"] = json!(true);
    let response = proxy
        .post("/v1/chat/completions", &request)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    proxy.handle.state().log().written().await;
    let listed: Value = proxy.get_json("/api/logs/api-calls?fields=summary").await;
    let translation = &listed["data"][0]["normalization"]["request"];
    assert_eq!(translation["translatedTo"], "anthropic", "{listed}");
    assert_eq!(translation["dropped"], json!(["store"]));
    assert!(mock.last().body.get("store").is_none());
}

#[tokio::test]
async fn the_model_list_comes_from_anthropic_in_openais_shape() {
    let mock = MockAnthropic::start().await;
    let proxy = proxy_to(&mock).await;
    let models = proxy.get_json("/v1/models").await;
    assert_schema("ListModelsResponse", &models);
    assert!(
        models["data"][0]["id"]
            .as_str()
            .unwrap()
            .starts_with("claude")
    );
    let config = proxy.get_json("/api/config").await;
    assert_eq!(config["targetApi"], "anthropic");
}

#[tokio::test]
async fn completions_and_embeddings_are_a_404_naming_target_api_and_nothing_is_sent() {
    let mock = MockAnthropic::start().await;
    let proxy = proxy_to(&mock).await;
    for (path, body) in [
        (
            "/v1/completions",
            json!({"model": "claude", "prompt": "Hi"}),
        ),
        ("/v1/embeddings", json!({"model": "claude", "input": "Hi"})),
    ] {
        let response = proxy.post(path, &body).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        let error: Value = response.json().await.unwrap();
        assert!(
            error["error"]["message"]
                .as_str()
                .unwrap()
                .contains("TARGET_API=anthropic"),
            "{error}"
        );
    }
    assert!(mock.requests().is_empty());
}
