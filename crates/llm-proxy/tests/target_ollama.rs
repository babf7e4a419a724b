//! `TARGET_API=ollama`: OpenAI chat requests written as Ollama `/api/chat` requests, sent to a
//! mock that decodes them as strictly as Ollama's server (and refuses what it would silently
//! ignore), and its answers, whole and NDJSON streams, read back as OpenAI's. The last tests
//! check the mock itself: a strict mock is what makes the others mean something.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "in tests a failure should panic"
)]

mod common;

use std::collections::BTreeSet;

use common::ollama::{
    MOCK_TEXT, MODELS, MockOllama, OllamaReply, TEXT_EVAL_COUNT, TEXT_PIECES, TOOL_CALL_EVAL_COUNT,
};
use common::*;
use llm_proxy::config::{CredentialConfig, TargetApi, TargetConfig, UpstreamConfig};
use reqwest::StatusCode;
use reqwest::header::CONTENT_TYPE;
use secrecy::SecretString;
use serde_json::{Value, json};

async fn proxy_with(mock: &MockOllama, credential: CredentialConfig) -> TestProxy {
    TestProxy::start(config(UpstreamConfig::Target(TargetConfig {
        endpoint: mock.url().parse().unwrap(),
        api: TargetApi::Ollama,
        credential,
        extra_roots_pem: None,
    })))
    .await
}

/// The proxy with [`TARGET_KEY`], in front of a mock that requires it as a bearer token.
async fn proxy_to(mock: &MockOllama) -> TestProxy {
    proxy_with(
        mock,
        CredentialConfig::ApiKey(SecretString::from(TARGET_KEY)),
    )
    .await
}

fn hello(stream: bool) -> Value {
    json!({"model": "llama3.2", "stream": stream,
           "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}]})
}

fn weather_tools() -> Value {
    json!([{"type": "function", "function": {"name": "weather", "description": "Weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}])
}

/// Sends `request` through the proxy and returns the status and the JSON body.
async fn chat(proxy: &TestProxy, request: &Value) -> (StatusCode, Value) {
    let response = proxy
        .post("/v1/chat/completions", request)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, body)
}

/// Sends `request`, asserts a 200, and returns the body the mock accepted.
async fn sent_body(mock: &MockOllama, proxy: &TestProxy, request: &Value) -> Value {
    let (status, body) = chat(proxy, request).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let sent = mock.last();
    assert!(sent.ignored_fields.is_empty(), "{:?}", sent.ignored_fields);
    sent.body
}

/// The chunks of an SSE answer, checked against OpenAI's schema, without the final `[DONE]`.
fn chunks(text: &str) -> Vec<Value> {
    let events = sse_data(text);
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"), "{text}");
    events[..events.len() - 1]
        .iter()
        .map(|event| {
            let chunk: Value = serde_json::from_str(event).unwrap();
            assert_schema("CreateChatCompletionStreamResponse", &chunk);
            chunk
        })
        .collect()
}

#[tokio::test]
async fn a_chat_request_reaches_ollama_at_api_chat_and_comes_back_as_a_completion() {
    let mock = MockOllama::with_key(TARGET_KEY).await;
    let proxy = proxy_to(&mock).await;
    let mut request = hello(false);
    request["max_tokens"] = json!(50);
    let (status, completion) = chat(&proxy, &request).await;
    assert_eq!(status, StatusCode::OK, "{completion}");
    assert_schema("CreateChatCompletionResponse", &completion);
    assert_eq!(completion["object"], "chat.completion");
    assert_eq!(completion["choices"][0]["message"]["role"], "assistant");
    assert_eq!(completion["choices"][0]["message"]["content"], MOCK_TEXT);
    assert_eq!(completion["choices"][0]["finish_reason"], "stop");

    let sent = mock.last();
    assert_eq!(sent.method, "POST");
    assert_eq!(sent.path, "/api/chat");
    assert_eq!(
        sent.headers["authorization"],
        format!("Bearer {TARGET_KEY}").as_str()
    );
    assert!(sent.ignored_fields.is_empty(), "{:?}", sent.ignored_fields);
    assert_eq!(
        sent.body["stream"], false,
        "Ollama streams unless told not to"
    );
    assert_eq!(sent.body["model"], "llama3.2");
    assert_eq!(sent.body["options"]["num_predict"], 50);
    assert_eq!(
        sent.body["messages"],
        json!([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}])
    );

    let prompt_tokens = completion["usage"]["prompt_tokens"].as_u64().unwrap();
    assert!(prompt_tokens > 0);
    assert_eq!(completion["usage"]["completion_tokens"], TEXT_EVAL_COUNT);
    assert_eq!(
        completion["usage"]["total_tokens"],
        prompt_tokens + TEXT_EVAL_COUNT
    );
}

#[tokio::test]
async fn a_streamed_chat_comes_back_as_openai_chunks_ending_with_done() {
    let mock = MockOllama::with_key(TARGET_KEY).await;
    let proxy = proxy_to(&mock).await;
    let response = proxy
        .post("/v1/chat/completions", &hello(true))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let chunks = chunks(&response.text().await.unwrap());
    let pieces: Vec<&str> = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .filter(|piece| !piece.is_empty())
        .collect();
    assert_eq!(pieces, TEXT_PIECES);
    let finishes: Vec<&Value> = chunks
        .iter()
        .map(|c| &c["choices"][0]["finish_reason"])
        .filter(|f| !f.is_null())
        .collect();
    assert_eq!(finishes, [&json!("stop")]);

    let sent = mock.last();
    assert_eq!(sent.path, "/api/chat");
    assert_eq!(sent.body["stream"], true);
    assert!(sent.ignored_fields.is_empty(), "{:?}", sent.ignored_fields);
}

#[tokio::test]
async fn tool_calls_over_two_turns_reach_ollama_with_object_arguments_and_the_tool_name() {
    let mock = MockOllama::with_key(TARGET_KEY).await;
    let proxy = proxy_to(&mock).await;
    mock.set_reply(OllamaReply::ToolCall {
        name: "weather".into(),
        arguments: json!({"city": "Paris"}),
    });
    let question = json!({"role": "user", "content": "Weather in Paris?"});
    let (status, first) = chat(
        &proxy,
        &json!({"model": "llama3.2", "tools": weather_tools(), "messages": [question]}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_schema("CreateChatCompletionResponse", &first);
    assert_eq!(first["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(first["usage"]["completion_tokens"], TOOL_CALL_EVAL_COUNT);
    let sent = mock.last();
    assert!(sent.ignored_fields.is_empty(), "{:?}", sent.ignored_fields);
    assert_eq!(sent.body["tools"], weather_tools());

    let message = &first["choices"][0]["message"];
    let call = &message["tool_calls"][0];
    let id = call["id"].as_str().unwrap();
    assert!(
        !id.is_empty(),
        "Ollama gives no id: the proxy must make one"
    );
    assert_eq!(call["type"], "function");
    assert_eq!(call["function"]["name"], "weather");
    let arguments = call["function"]["arguments"].as_str().unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(arguments).unwrap(),
        json!({"city": "Paris"})
    );

    mock.set_reply(OllamaReply::Text);
    let (status, second) = chat(
        &proxy,
        &json!({"model": "llama3.2", "tools": weather_tools(), "messages": [
            question,
            message,
            {"role": "tool", "tool_call_id": id, "content": "15C and sunny"}]}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{second}");
    assert_eq!(second["choices"][0]["message"]["content"], MOCK_TEXT);
    let sent = mock.last();
    assert!(sent.ignored_fields.is_empty(), "{:?}", sent.ignored_fields);
    let history = sent.body["messages"].as_array().unwrap();
    assert_eq!(history.len(), 3, "{}", sent.body);
    assert_eq!(history[1]["role"], "assistant");
    assert_eq!(
        history[1]["tool_calls"][0]["function"]["name"], "weather",
        "{}",
        sent.body
    );
    assert_eq!(
        history[1]["tool_calls"][0]["function"]["arguments"],
        json!({"city": "Paris"}),
        "arguments go back to Ollama as an object"
    );
    assert_eq!(history[2]["role"], "tool");
    assert_eq!(history[2]["tool_name"], "weather");
    assert_eq!(history[2]["content"], "15C and sunny");
}

#[tokio::test]
async fn a_streamed_tool_call_comes_back_as_openai_tool_call_chunks() {
    let mock = MockOllama::with_key(TARGET_KEY).await;
    let proxy = proxy_to(&mock).await;
    mock.set_reply(OllamaReply::ToolCall {
        name: "weather".into(),
        arguments: json!({"city": "Rome"}),
    });
    let request = json!({"model": "llama3.2", "stream": true, "tools": weather_tools(),
        "messages": [{"role": "user", "content": "Rome?"}]});
    let chunks = chunks(&proxy.post_text("/v1/chat/completions", &request).await);
    let calls: Vec<&Value> = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["tool_calls"].as_array())
        .flatten()
        .collect();
    assert!(!calls.is_empty(), "{chunks:#?}");
    assert!(calls[0]["id"].as_str().is_some_and(|id| !id.is_empty()));
    assert_eq!(calls[0]["function"]["name"], "weather");
    let arguments: String = calls
        .iter()
        .filter_map(|c| c["function"]["arguments"].as_str())
        .collect();
    assert_eq!(
        serde_json::from_str::<Value>(&arguments).unwrap(),
        json!({"city": "Rome"})
    );
    let finishes: Vec<&Value> = chunks
        .iter()
        .map(|c| &c["choices"][0]["finish_reason"])
        .filter(|f| !f.is_null())
        .collect();
    assert_eq!(finishes, [&json!("tool_calls")]);
}

#[tokio::test]
async fn an_image_data_url_reaches_ollama_as_bare_base64_in_images() {
    let mock = MockOllama::with_key(TARGET_KEY).await;
    let proxy = proxy_to(&mock).await;
    let request = json!({"model": "llama3.2", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]}]});
    let sent = sent_body(&mock, &proxy, &request).await;
    assert_eq!(
        sent["messages"],
        json!([{"role": "user", "content": "What is this?", "images": ["iVBORw0KGgo="]}])
    );
}

#[tokio::test]
async fn text_parts_of_a_message_are_joined_into_one_content_string() {
    let mock = MockOllama::with_key(TARGET_KEY).await;
    let proxy = proxy_to(&mock).await;
    let request = json!({"model": "llama3.2", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "First part."}, {"type": "text", "text": "Second part."}]}]});
    let sent = sent_body(&mock, &proxy, &request).await;
    let content = sent["messages"][0]["content"].as_str().unwrap();
    assert!(
        content.contains("First part.") && content.contains("Second part."),
        "{content}"
    );
    assert!(content.find("First").unwrap() < content.find("Second").unwrap());
}

#[tokio::test]
async fn an_http_image_url_is_a_400_naming_the_content_part_and_nothing_is_sent() {
    let mock = MockOllama::with_key(TARGET_KEY).await;
    let proxy = proxy_to(&mock).await;
    let request = json!({"model": "llama3.2", "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [
            {"type": "text", "text": "What is this?"},
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]}]});
    let (status, body) = chat(&proxy, &request).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let error = assert_envelope(&body);
    assert_eq!(error["type"], "invalid_request_error");
    assert_eq!(error["param"], "messages[1].content[1].image_url.url");
    assert!(mock.requests().is_empty());
}

#[tokio::test]
async fn json_object_mode_reaches_ollama_as_format_json() {
    let mock = MockOllama::with_key(TARGET_KEY).await;
    let proxy = proxy_to(&mock).await;
    let mut request = hello(false);
    request["response_format"] = json!({"type": "json_object"});
    let sent = sent_body(&mock, &proxy, &request).await;
    assert_eq!(sent["format"], "json");
}

#[tokio::test]
async fn a_json_schema_response_format_reaches_ollama_as_the_schema_object() {
    let mock = MockOllama::with_key(TARGET_KEY).await;
    let proxy = proxy_to(&mock).await;
    let schema = json!({"type": "object", "properties": {"city": {"type": "string"}},
        "required": ["city"], "additionalProperties": false});
    let mut request = hello(false);
    request["response_format"] = json!({"type": "json_schema",
        "json_schema": {"name": "place", "strict": true, "schema": schema}});
    let sent = sent_body(&mock, &proxy, &request).await;
    assert_eq!(sent["format"], schema);
}

#[tokio::test]
async fn sampling_parameters_reach_ollama_as_options() {
    let mock = MockOllama::with_key(TARGET_KEY).await;
    let proxy = proxy_to(&mock).await;
    let mut request = hello(false);
    for (name, value) in [
        ("temperature", json!(0.25)),
        ("top_p", json!(0.5)),
        ("max_completion_tokens", json!(77)),
        ("stop", json!(["END", "STOP"])),
        ("seed", json!(42)),
        ("presence_penalty", json!(0.75)),
        ("frequency_penalty", json!(-0.5)),
    ] {
        request[name] = value;
    }
    let sent = sent_body(&mock, &proxy, &request).await;
    assert_eq!(
        sent["options"],
        json!({"temperature": 0.25, "top_p": 0.5, "num_predict": 77, "stop": ["END", "STOP"],
               "seed": 42, "presence_penalty": 0.75, "frequency_penalty": -0.5})
    );
}

#[tokio::test]
async fn a_single_stop_string_reaches_ollama_as_an_array() {
    let mock = MockOllama::with_key(TARGET_KEY).await;
    let proxy = proxy_to(&mock).await;
    let mut request = hello(false);
    request["stop"] = json!("END");
    let sent = sent_body(&mock, &proxy, &request).await;
    assert_eq!(sent["options"]["stop"], json!(["END"]));
}

#[tokio::test]
async fn reasoning_effort_reaches_ollama_as_think() {
    let mock = MockOllama::with_key(TARGET_KEY).await;
    let proxy = proxy_to(&mock).await;
    let mut request = hello(false);
    request["model"] = json!("qwen3:8b");
    request["reasoning_effort"] = json!("medium");
    let sent = sent_body(&mock, &proxy, &request).await;
    assert_eq!(sent["think"], true);
}

#[tokio::test]
async fn each_parameter_ollama_cannot_express_is_a_400_naming_it_and_nothing_is_sent() {
    let mock = MockOllama::with_key(TARGET_KEY).await;
    let proxy = proxy_to(&mock).await;
    for (param, value) in [
        ("n", json!(3)),
        ("logit_bias", json!({"1": 5})),
        ("logprobs", json!(true)),
        ("top_logprobs", json!(2)),
        ("audio", json!({"voice": "alloy", "format": "wav"})),
        (
            "functions",
            json!([{"name": "weather", "parameters": {"type": "object", "properties": {}}}]),
        ),
        ("function_call", json!("auto")),
        ("tool_choice", json!("required")),
        (
            "tool_choice",
            json!({"type": "function", "function": {"name": "weather"}}),
        ),
    ] {
        let mut request = hello(false);
        request["tools"] = weather_tools();
        request[param] = value.clone();
        let (status, body) = chat(&proxy, &request).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{param}={value}: {body}");
        let error = assert_envelope(&body);
        assert_eq!(error["type"], "invalid_request_error", "{body}");
        assert_eq!(error["param"], param, "{body}");
        assert_eq!(error["code"], "unsupported_parameter", "{body}");
        assert!(
            error["message"]
                .as_str()
                .unwrap()
                .contains("TARGET_API=ollama"),
            "{body}"
        );
    }
    assert!(mock.requests().is_empty());
}

#[tokio::test]
async fn tool_choice_auto_is_dropped_and_tool_choice_none_leaves_the_tools_out() {
    let mock = MockOllama::with_key(TARGET_KEY).await;
    let proxy = proxy_to(&mock).await;
    let mut request = hello(false);
    request["tools"] = weather_tools();
    request["tool_choice"] = json!("auto");
    let sent = sent_body(&mock, &proxy, &request).await;
    assert_eq!(sent["tools"], weather_tools());

    request["tool_choice"] = json!("none");
    let sent = sent_body(&mock, &proxy, &request).await;
    assert!(sent.get("tools").is_none(), "{sent}");
}

#[tokio::test]
async fn a_dropped_hint_is_noted_in_the_calls_log_entry() {
    let mock = MockOllama::with_key(TARGET_KEY).await;
    let proxy = proxy_to(&mock).await;
    let mut request = hello(false);
    request["store"] = json!(true);
    let (status, body) = chat(&proxy, &request).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    proxy.handle.state().log().written().await;
    let listed: Value = proxy.get_json("/api/logs/api-calls?fields=summary").await;
    let translation = &listed["data"][0]["normalization"]["request"];
    assert_eq!(translation["translatedTo"], "ollama", "{listed}");
    assert_eq!(translation["dropped"], json!(["store"]));
    assert!(mock.last().body.get("store").is_none());
}

#[tokio::test]
async fn every_harmless_hint_is_dropped_before_ollama_and_listed_in_the_log() {
    let mock = MockOllama::with_key(TARGET_KEY).await;
    let proxy = proxy_to(&mock).await;
    let mut request = hello(true);
    let hints = [
        ("user", json!("user-1234")),
        ("store", json!(false)),
        ("metadata", json!({"team": "a"})),
        ("parallel_tool_calls", json!(true)),
        ("service_tier", json!("auto")),
    ];
    for (name, value) in &hints {
        request[*name] = value.clone();
    }
    let text = proxy.post_text("/v1/chat/completions", &request).await;
    chunks(&text);
    let sent = mock.last();
    assert!(sent.ignored_fields.is_empty(), "{:?}", sent.ignored_fields);
    proxy.handle.state().log().written().await;
    let listed: Value = proxy.get_json("/api/logs/api-calls?fields=summary").await;
    let dropped: BTreeSet<&str> = listed["data"][0]["normalization"]["request"]["dropped"]
        .as_array()
        .unwrap_or_else(|| panic!("{listed}"))
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let expected: BTreeSet<&str> = hints.iter().map(|(name, _)| *name).collect();
    assert_eq!(dropped, expected, "{listed}");
}

#[tokio::test]
async fn stream_options_stays_with_the_proxy_which_ends_the_stream_with_a_usage_chunk() {
    let mock = MockOllama::with_key(TARGET_KEY).await;
    let proxy = proxy_to(&mock).await;
    let mut request = hello(true);
    request["stream_options"] = json!({"include_usage": true});
    let chunks = chunks(&proxy.post_text("/v1/chat/completions", &request).await);
    let sent = mock.last();
    assert!(sent.ignored_fields.is_empty(), "{:?}", sent.ignored_fields);
    let last = chunks.last().unwrap();
    assert_eq!(last["choices"], json!([]), "{last}");
    assert_eq!(last["usage"]["completion_tokens"], TEXT_EVAL_COUNT);
    assert!(last["usage"]["prompt_tokens"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn the_model_list_comes_from_api_tags_in_openais_shape() {
    let mock = MockOllama::with_key(TARGET_KEY).await;
    let proxy = proxy_to(&mock).await;
    let models = proxy.get_json("/v1/models").await;
    assert_schema("ListModelsResponse", &models);
    assert_eq!(models["object"], "list");
    let listed: Vec<(&str, i64)> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            assert_eq!(m["object"], "model");
            assert!(m["owned_by"].is_string(), "{m}");
            (m["id"].as_str().unwrap(), m["created"].as_i64().unwrap())
        })
        .collect();
    let expected: Vec<(&str, i64)> = MODELS.iter().map(|m| (m.name, m.modified_unix)).collect();
    assert_eq!(listed, expected);

    let sent = mock.last();
    assert_eq!(
        (sent.method.as_str(), sent.path.as_str()),
        ("GET", "/api/tags")
    );
    assert_eq!(
        sent.headers["authorization"],
        format!("Bearer {TARGET_KEY}").as_str()
    );
    let config = proxy.get_json("/api/config").await;
    assert_eq!(config["targetApi"], "ollama");
}

#[tokio::test]
async fn a_local_ollama_without_a_credential_gets_no_authorization_header() {
    let mock = MockOllama::start().await;
    let proxy = proxy_with(&mock, CredentialConfig::None).await;
    let (status, body) = chat(&proxy, &hello(false)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(mock.last().headers.get("authorization").is_none());
}

#[tokio::test]
async fn an_unknown_model_comes_back_as_openais_404_model_not_found() {
    let mock = MockOllama::with_key(TARGET_KEY).await;
    let proxy = proxy_to(&mock).await;
    let mut request = hello(false);
    request["model"] = json!("mistral:7b");
    let (status, body) = chat(&proxy, &request).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let error = assert_envelope(&body);
    assert_eq!(error["code"], "model_not_found", "{body}");
    assert!(
        error["message"].as_str().unwrap().contains("mistral:7b"),
        "{body}"
    );
    assert_eq!(mock.last().path, "/api/chat");
}

// ---------------------------------------------------------------------------------------------
// The mock itself, addressed directly.

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

async fn post_chat(mock: &MockOllama, body: &Value) -> reqwest::Response {
    client()
        .post(format!("{}/api/chat", mock.url()))
        .bearer_auth(TARGET_KEY)
        .json(body)
        .send()
        .await
        .unwrap()
}

/// The status and the `error` message of a refused request.
async fn refusal(mock: &MockOllama, body: &Value) -> (StatusCode, String) {
    let response = post_chat(mock, body).await;
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    let message = body["error"].as_str().unwrap_or_else(|| panic!("{body}"));
    (status, message.to_owned())
}

/// A request as the proxy should write it, using every translated feature.
fn valid_ollama_request() -> Value {
    json!({
        "model": "llama3.2",
        "stream": false,
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Weather in Paris?", "images": ["iVBORw0KGgo="]},
            {"role": "assistant", "content": "", "tool_calls": [
                {"function": {"name": "weather", "arguments": {"city": "Paris"}}}]},
            {"role": "tool", "content": "15C", "tool_name": "weather"}
        ],
        "tools": weather_tools(),
        "format": {"type": "object"},
        "options": {"temperature": 0.2, "top_p": 0.9, "num_predict": 10, "stop": ["END"],
                    "seed": 1, "presence_penalty": 0.1, "frequency_penalty": 0.1},
        "think": false
    })
}

#[tokio::test]
async fn the_mock_accepts_a_request_written_as_ollama_expects() {
    let mock = MockOllama::with_key(TARGET_KEY).await;
    let response = post_chat(&mock, &valid_ollama_request()).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[CONTENT_TYPE],
        "application/json; charset=utf-8"
    );
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["model"], "llama3.2");
    assert_eq!(answer["message"]["content"], MOCK_TEXT);
    assert_eq!(answer["done"], true);
    assert_eq!(answer["done_reason"], "stop");
    assert_eq!(answer["eval_count"], TEXT_EVAL_COUNT);
    assert!(answer["prompt_eval_count"].as_u64().unwrap() > 0);
    assert!(answer["total_duration"].as_u64().unwrap() > 1_000_000);
    let created = answer["created_at"].as_str().unwrap();
    time::OffsetDateTime::parse(created, &time::format_description::well_known::Rfc3339).unwrap();
    assert!(mock.last().ignored_fields.is_empty());
}

#[tokio::test]
async fn the_mock_streams_ndjson_when_stream_is_absent_as_ollama_does() {
    let mock = MockOllama::with_key(TARGET_KEY).await;
    let mut request = valid_ollama_request();
    request.as_object_mut().unwrap().remove("stream");
    let response = post_chat(&mock, &request).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[CONTENT_TYPE], "application/x-ndjson");
    let text = response.text().await.unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4, "{text}");
    let pieces: Vec<&str> = lines[..3]
        .iter()
        .map(|l| {
            assert_eq!(l["done"], false);
            l["message"]["content"].as_str().unwrap()
        })
        .collect();
    assert_eq!(pieces, TEXT_PIECES);
    assert_eq!(lines[3]["done"], true);
    assert_eq!(lines[3]["done_reason"], "stop");
    assert_eq!(lines[3]["eval_count"], TEXT_EVAL_COUNT);
}

#[tokio::test]
async fn the_mock_answers_a_tool_call_with_object_arguments_and_no_id() {
    let mock = MockOllama::with_key(TARGET_KEY).await;
    mock.set_reply(OllamaReply::ToolCall {
        name: "weather".into(),
        arguments: json!({"city": "Paris"}),
    });
    let answer: Value = post_chat(&mock, &valid_ollama_request())
        .await
        .json()
        .await
        .unwrap();
    let call = &answer["message"]["tool_calls"][0];
    assert_eq!(call["function"]["arguments"], json!({"city": "Paris"}));
    assert!(call.get("id").is_none());
    assert_eq!(answer["done_reason"], "stop");
}

#[tokio::test]
async fn the_mock_refuses_fields_ollama_would_silently_ignore_and_records_them() {
    let mock = MockOllama::with_key(TARGET_KEY).await;
    let mut request = valid_ollama_request();
    request["max_tokens"] = json!(10);
    request["temperature"] = json!(0.5);
    request["messages"][3]["name"] = json!("weather");
    request["options"]["max_tokens"] = json!(10);
    let (status, message) = refusal(&mock, &request).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(message.starts_with("mock: field "), "{message}");
    assert!(
        message.ends_with(" would be ignored by Ollama"),
        "{message}"
    );
    let ignored: BTreeSet<String> = mock.last().ignored_fields.into_iter().collect();
    let expected: BTreeSet<String> = [
        "max_tokens",
        "temperature",
        "messages[3].name",
        "options.max_tokens",
    ]
    .map(str::to_owned)
    .into();
    assert_eq!(ignored, expected);

    for (field, value) in [
        ("tool_choice", json!("auto")),
        ("response_format", json!({"type": "json_object"})),
        ("n", json!(1)),
    ] {
        let mut request = valid_ollama_request();
        request[field] = value;
        let (status, message) = refusal(&mock, &request).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(
            message,
            format!("mock: field {field} would be ignored by Ollama")
        );
    }
}

#[tokio::test]
async fn the_mock_refuses_an_openai_chat_body_sent_as_is() {
    let mock = MockOllama::with_key(TARGET_KEY).await;
    let openai = json!({"model": "llama3.2", "max_tokens": 50, "messages": [
        {"role": "user", "content": [{"type": "text", "text": "Hi"}]}]});
    let (status, message) = refusal(&mock, &openai).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        message,
        "json: cannot unmarshal array into Go struct field ChatRequest.messages.content of type string"
    );

    let openai = json!({"model": "llama3.2", "max_tokens": 50, "messages": [
        {"role": "user", "content": "Hi"}]});
    let (status, message) = refusal(&mock, &openai).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(message, "mock: field max_tokens would be ignored by Ollama");
}

#[tokio::test]
async fn the_mock_refuses_the_wrong_types_as_ollamas_go_decoder_does() {
    let mock = MockOllama::with_key(TARGET_KEY).await;
    let cases = [
        (
            "/messages/2/tool_calls/0/function/arguments",
            json!("{\"city\":\"Paris\"}"),
            "json: cannot unmarshal string into Go struct field \
             ChatRequest.messages.tool_calls.function.arguments of type api.ToolCallFunctionArguments",
        ),
        (
            "/messages/1/images/0",
            json!("data:image/png;base64,iVBORw0KGgo="),
            "illegal base64 data at input byte 4",
        ),
        (
            "/stream",
            json!("false"),
            "json: cannot unmarshal string into Go struct field ChatRequest.stream of type bool",
        ),
        (
            "/think",
            json!("sometimes"),
            "invalid think value: \"sometimes\" (must be \"high\", \"medium\", \"low\", \"max\", true, or false)",
        ),
    ];
    for (pointer, value, expected) in cases {
        let mut request = valid_ollama_request();
        *request.pointer_mut(pointer).unwrap() = value;
        let (status, message) = refusal(&mock, &request).await;
        assert_eq!(
            (status, message.as_str()),
            (StatusCode::BAD_REQUEST, expected)
        );
    }
}

#[tokio::test]
async fn the_mock_refuses_options_of_the_wrong_type_with_ollamas_500() {
    let mock = MockOllama::with_key(TARGET_KEY).await;
    for (option, value, expected) in [
        (
            "stop",
            json!("END"),
            "option \"stop\" must be of type array",
        ),
        (
            "num_predict",
            json!("10"),
            "option \"num_predict\" must be of type integer",
        ),
        (
            "temperature",
            json!("hot"),
            "option \"temperature\" must be of type float32",
        ),
    ] {
        let mut request = valid_ollama_request();
        request["options"][option] = value;
        let (status, message) = refusal(&mock, &request).await;
        assert_eq!(
            (status, message.as_str()),
            (StatusCode::INTERNAL_SERVER_ERROR, expected)
        );
    }
}

#[tokio::test]
async fn the_mock_requires_a_model_it_has_and_a_role_and_tool_name_ollama_renders() {
    let mock = MockOllama::with_key(TARGET_KEY).await;
    let mut request = valid_ollama_request();
    request.as_object_mut().unwrap().remove("model");
    assert_eq!(
        refusal(&mock, &request).await,
        (StatusCode::BAD_REQUEST, "model is required".to_owned())
    );

    request["model"] = json!("mistral:7b");
    assert_eq!(
        refusal(&mock, &request).await,
        (
            StatusCode::NOT_FOUND,
            "model 'mistral:7b' not found".to_owned()
        )
    );

    let mut request = valid_ollama_request();
    request["think"] = json!(true);
    assert_eq!(
        refusal(&mock, &request).await,
        (
            StatusCode::BAD_REQUEST,
            "\"llama3.2\" does not support thinking".to_owned()
        )
    );

    let mut request = valid_ollama_request();
    request["messages"][0]["role"] = json!("developer");
    let (status, message) = refusal(&mock, &request).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(message.contains("\"developer\""), "{message}");

    let mut request = valid_ollama_request();
    request["messages"][3]
        .as_object_mut()
        .unwrap()
        .remove("tool_name");
    let (status, message) = refusal(&mock, &request).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(message.contains("without tool_name"), "{message}");

    let mut request = valid_ollama_request();
    request["messages"][3]["tool_name"] = json!("call_abc123");
    let (status, message) = refusal(&mock, &request).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        message.contains("answers no earlier tool call"),
        "{message}"
    );

    let mut request = valid_ollama_request();
    request["format"] = json!("xml");
    let (status, message) = refusal(&mock, &request).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(message.starts_with("invalid format:"), "{message}");
}

#[tokio::test]
async fn the_mock_requires_its_bearer_key_and_records_the_refused_request() {
    let mock = MockOllama::with_key(TARGET_KEY).await;
    for authorization in [None, Some("Bearer wrong-key"), Some(TARGET_KEY)] {
        let mut request = client()
            .post(format!("{}/api/chat", mock.url()))
            .json(&valid_ollama_request());
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body, json!({"error": "unauthorized"}));
    }
    assert_eq!(mock.requests().len(), 3);
    let tags = client()
        .get(format!("{}/api/tags", mock.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(tags.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_mock_answers_other_paths_and_methods_with_gos_plain_404() {
    let mock = MockOllama::start().await;
    for (method, path) in [
        (reqwest::Method::POST, "/v1/chat/completions"),
        (reqwest::Method::GET, "/api/chat"),
        (reqwest::Method::POST, "/api/tags"),
    ] {
        let response = client()
            .request(method, format!("{}{path}", mock.url()))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_eq!(response.text().await.unwrap(), "404 page not found");
    }
    mock.wait_for_requests(3).await;
    let tags: Value = client()
        .get(format!("{}/api/tags", mock.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(tags["models"][0]["name"], "llama3.2:latest");
    assert_eq!(tags["models"][0]["details"]["family"], "llama");
}

#[tokio::test]
async fn embeddings_go_to_ollamas_openai_compatible_api_beside_its_own() {
    let mock = MockOllama::with_key(TARGET_KEY).await;
    let proxy = proxy_to(&mock).await;
    // The mock has no OpenAI-compatible API: what matters is where the call went.
    proxy
        .post(
            "/v1/embeddings",
            &json!({"model": "nomic-embed-text", "input": "hello"}),
        )
        .send()
        .await
        .unwrap();
    let sent = mock.requests().pop().expect("the call reached Ollama");
    assert_eq!(sent.path, "/v1/embeddings");
}
