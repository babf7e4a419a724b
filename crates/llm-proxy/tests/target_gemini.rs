//! `TARGET_API=gemini`: OpenAI chat requests written as Gemini `generateContent` requests, sent
//! to a mock that validates them as strictly as Google's API, and its answers read back as
//! OpenAI's, whole and streamed. The last tests hold the mock itself to the real API's rules.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "in tests a failure should panic"
)]

mod common;

use common::gemini::{GeminiReply, MOCK_TEXT, MockGemini};
use common::*;
use llm_proxy::config::{
    ClientAuth, CredentialConfig, OAuthConfig, TargetApi, TargetConfig, UpstreamConfig,
};
use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::{Value, json};

const MODEL: &str = "gemini-2.5-flash";

fn gemini_target(mock: &MockGemini, credential: CredentialConfig) -> UpstreamConfig {
    UpstreamConfig::Target(TargetConfig {
        endpoint: mock.url().parse().unwrap(),
        api: TargetApi::Gemini,
        credential,
        extra_roots_pem: None,
    })
}

async fn proxy_to(mock: &MockGemini) -> TestProxy {
    TestProxy::start(config(gemini_target(
        mock,
        CredentialConfig::ApiKey(SecretString::from(TARGET_KEY)),
    )))
    .await
}

fn hello(stream: bool) -> Value {
    json!({"model": MODEL, "stream": stream,
           "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}]})
}

fn weather_tool() -> Value {
    json!({"type": "function", "function": {"name": "weather", "description": "Weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}})
}

/// The parameters of a function declaration, in `parameters` (Gemini's Schema) or in
/// `parametersJsonSchema` (any JSON Schema); exactly one of them.
fn schema_of(declaration: &Value) -> &Value {
    match (
        declaration.get("parameters"),
        declaration.get("parametersJsonSchema"),
    ) {
        (Some(schema), None) | (None, Some(schema)) => schema,
        _ => panic!("not one schema: {declaration}"),
    }
}

/// Posts `request` through the proxy and returns the status and the body as JSON.
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

/// Posts `request` through the proxy and asserts a 200; its completion.
async fn chat_ok(proxy: &TestProxy, request: &Value) -> Value {
    let (status, body) = chat(proxy, request).await;
    assert_eq!(status, StatusCode::OK, "{body:#}");
    body
}

#[tokio::test]
async fn a_chat_request_reaches_gemini_as_generate_content_and_comes_back_as_a_completion() {
    let mock = MockGemini::start().await;
    let proxy = proxy_to(&mock).await;
    let completion = chat_ok(&proxy, &hello(false)).await;
    assert_schema("CreateChatCompletionResponse", &completion);
    assert_eq!(completion["choices"][0]["message"]["content"], MOCK_TEXT);
    assert_eq!(completion["choices"][0]["finish_reason"], "stop");
    assert!(completion["usage"]["prompt_tokens"].as_u64().unwrap() > 0);
    assert_eq!(completion["usage"]["completion_tokens"], 5);

    let sent = mock.last();
    assert_eq!(sent.method, reqwest::Method::POST);
    assert_eq!(sent.path, format!("/v1beta/models/{MODEL}:generateContent"));
    assert_eq!(sent.headers["x-goog-api-key"], TARGET_KEY);
    assert!(
        sent.headers.get("authorization").is_none(),
        "the key goes in x-goog-api-key only"
    );
    assert_eq!(
        sent.body["systemInstruction"]["parts"],
        json!([{"text": "Be brief."}])
    );
    assert_eq!(
        sent.body["contents"],
        json!([{"role": "user", "parts": [{"text": "Hello"}]}])
    );
}

#[tokio::test]
async fn consecutive_messages_of_one_role_are_merged_into_one_content() {
    let mock = MockGemini::start().await;
    let proxy = proxy_to(&mock).await;
    chat_ok(
        &proxy,
        &json!({"model": MODEL, "messages": [
            {"role": "user", "content": "Hello"},
            {"role": "assistant", "content": "Hi there"},
            {"role": "user", "content": "How are you?"},
            {"role": "user", "content": "Answer briefly."}]}),
    )
    .await;
    let contents = mock.last().body["contents"].clone();
    let roles: Vec<&str> = contents
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["user", "model", "user"]);
    assert_eq!(
        contents[2]["parts"],
        json!([{"text": "How are you?"}, {"text": "Answer briefly."}])
    );
}

#[tokio::test]
async fn a_developer_message_goes_in_the_system_instruction_too() {
    let mock = MockGemini::start().await;
    let proxy = proxy_to(&mock).await;
    chat_ok(
        &proxy,
        &json!({"model": MODEL, "messages": [
            {"role": "developer", "content": "Answer in French."},
            {"role": "user", "content": "Hello"}]}),
    )
    .await;
    let sent = mock.last().body;
    assert_eq!(
        sent["systemInstruction"]["parts"],
        json!([{"text": "Answer in French."}])
    );
    assert_eq!(sent["contents"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_model_written_with_the_models_prefix_is_sent_without_it() {
    let mock = MockGemini::start().await;
    let proxy = proxy_to(&mock).await;
    let mut request = hello(false);
    request["model"] = json!(format!("models/{MODEL}"));
    chat_ok(&proxy, &request).await;
    assert_eq!(
        mock.last().path,
        format!("/v1beta/models/{MODEL}:generateContent")
    );
}

#[tokio::test]
async fn a_streamed_chat_comes_back_as_openai_chunks_ending_with_done() {
    let mock = MockGemini::start().await;
    let proxy = proxy_to(&mock).await;
    let response = proxy
        .post("/v1/chat/completions", &hello(true))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap();
    let events = sse_data(&text);
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"), "{text}");
    let mut content = String::new();
    let mut finish = Vec::new();
    for event in &events[..events.len() - 1] {
        let chunk: Value = serde_json::from_str(event).unwrap();
        assert_schema("CreateChatCompletionStreamResponse", &chunk);
        if let Some(choice) = chunk["choices"].get(0) {
            content.push_str(choice["delta"]["content"].as_str().unwrap_or(""));
            if let Some(reason) = choice["finish_reason"].as_str() {
                finish.push(reason.to_owned());
            }
        }
    }
    assert_eq!(content, MOCK_TEXT);
    assert_eq!(finish, ["stop"]);

    let sent = mock.last();
    assert_eq!(
        sent.path,
        format!("/v1beta/models/{MODEL}:streamGenerateContent")
    );
    assert!(
        sent.query_pairs()
            .contains(&("alt".to_owned(), "sse".to_owned())),
        "{:?}",
        sent.query
    );
    assert!(
        sent.body.get("stream").is_none(),
        "Gemini has no stream field"
    );
}

#[tokio::test]
async fn tool_calls_over_two_turns_pass_the_function_turn_rules() {
    let mock = MockGemini::start().await;
    let proxy = proxy_to(&mock).await;
    let tools = json!([weather_tool()]);
    mock.set_reply(GeminiReply::FunctionCall {
        name: "weather".into(),
        args: json!({"city": "Paris"}),
    });
    let first = chat_ok(
        &proxy,
        &json!({"model": MODEL, "tools": tools, "messages": [{"role": "user", "content": "Weather in Paris?"}]}),
    )
    .await;
    assert_schema("CreateChatCompletionResponse", &first);
    assert_eq!(first["choices"][0]["finish_reason"], "tool_calls");
    let message = &first["choices"][0]["message"];
    let call = &message["tool_calls"][0];
    assert_eq!(call["function"]["name"], "weather");
    assert_eq!(
        serde_json::from_str::<Value>(call["function"]["arguments"].as_str().unwrap()).unwrap(),
        json!({"city": "Paris"})
    );
    let declaration = &mock.last().body["tools"][0]["functionDeclarations"][0];
    assert_eq!(declaration["name"], "weather");
    assert_eq!(declaration["description"], "Weather in a city");
    assert_eq!(
        schema_of(declaration),
        &weather_tool()["function"]["parameters"]
    );

    mock.set_reply(GeminiReply::Text);
    let second = chat_ok(
        &proxy,
        &json!({"model": MODEL, "tools": tools, "messages": [
            {"role": "user", "content": "Weather in Paris?"},
            message,
            {"role": "tool", "tool_call_id": call["id"], "content": "15C and sunny"}]}),
    )
    .await;
    assert_eq!(second["choices"][0]["message"]["content"], MOCK_TEXT);
    let sent = mock.last().body;
    assert_eq!(sent["contents"][1]["role"], "model");
    assert_eq!(
        sent["contents"][1]["parts"],
        json!([{"functionCall": {"name": "weather", "args": {"city": "Paris"}}}])
    );
    assert_eq!(sent["contents"][2]["role"], "user");
    assert_eq!(
        sent["contents"][2]["parts"],
        json!([{"functionResponse": {"name": "weather", "response": {"content": "15C and sunny"}}}])
    );
}

#[tokio::test]
async fn a_strict_tool_schema_with_json_schema_keywords_is_accepted_by_gemini() {
    let mock = MockGemini::start().await;
    let proxy = proxy_to(&mock).await;
    let parameters = json!({"$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
        "properties": {"city": {"type": "string"}, "unit": {"type": ["string", "null"], "enum": ["c", "f", null]}},
        "required": ["city", "unit"], "additionalProperties": false});
    let tool = json!({"type": "function", "function": {"name": "weather", "strict": true,
        "parameters": parameters}});
    chat_ok(
        &proxy,
        &json!({"model": MODEL, "tools": [tool], "messages": [{"role": "user", "content": "Paris?"}]}),
    )
    .await;
    let declaration = &mock.last().body["tools"][0]["functionDeclarations"][0];
    assert_eq!(schema_of(declaration), &parameters);
}

#[tokio::test]
async fn tool_results_in_a_row_go_as_one_user_content_in_the_order_of_the_calls() {
    let mock = MockGemini::start().await;
    let proxy = proxy_to(&mock).await;
    let clock = json!({"type": "function", "function": {"name": "clock",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}});
    let calls = json!([
        {"id": "call_a", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}},
        {"id": "call_b", "type": "function", "function": {"name": "clock", "arguments": "{\"city\":\"Rome\"}"}}]);
    chat_ok(
        &proxy,
        &json!({"model": MODEL, "tools": [weather_tool(), clock], "messages": [
            {"role": "user", "content": "Weather in Paris and time in Rome?"},
            {"role": "assistant", "content": null, "tool_calls": calls},
            {"role": "tool", "tool_call_id": "call_b", "content": "noon"},
            {"role": "tool", "tool_call_id": "call_a", "content": "{\"celsius\": 15}"}]}),
    )
    .await;
    let contents = mock.last().body["contents"].clone();
    assert_eq!(contents.as_array().unwrap().len(), 3, "{contents:#}");
    assert_eq!(contents[2]["role"], "user");
    assert_eq!(
        contents[2]["parts"],
        json!([
            {"functionResponse": {"name": "weather", "response": {"celsius": 15}}},
            {"functionResponse": {"name": "clock", "response": {"content": "noon"}}}])
    );
}

#[tokio::test]
async fn an_empty_assistant_text_beside_tool_calls_is_not_sent_as_a_part() {
    let mock = MockGemini::start().await;
    let proxy = proxy_to(&mock).await;
    chat_ok(
        &proxy,
        &json!({"model": MODEL, "tools": [weather_tool()], "messages": [
            {"role": "user", "content": [{"type": "text", "text": ""}, {"type": "text", "text": "Paris?"}]},
            {"role": "assistant", "content": "", "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "15C"}]}),
    )
    .await;
    let contents = mock.last().body["contents"].clone();
    assert_eq!(contents[0]["parts"], json!([{"text": "Paris?"}]));
    assert_eq!(
        contents[1]["parts"],
        json!([{"functionCall": {"name": "weather", "args": {"city": "Paris"}}}])
    );
}

#[tokio::test]
async fn tool_choice_becomes_a_function_calling_mode() {
    let mock = MockGemini::start().await;
    let proxy = proxy_to(&mock).await;
    for (choice, expected) in [
        (json!("auto"), json!({"mode": "AUTO"})),
        (json!("required"), json!({"mode": "ANY"})),
        (json!("none"), json!({"mode": "NONE"})),
        (
            json!({"type": "function", "function": {"name": "weather"}}),
            json!({"mode": "ANY", "allowedFunctionNames": ["weather"]}),
        ),
    ] {
        chat_ok(
            &proxy,
            &json!({"model": MODEL, "tools": [weather_tool()], "tool_choice": choice,
                    "messages": [{"role": "user", "content": "Paris?"}]}),
        )
        .await;
        assert_eq!(
            mock.last().body["toolConfig"],
            json!({"functionCallingConfig": expected}),
            "tool_choice {choice}"
        );
    }
}

#[tokio::test]
async fn an_image_data_url_reaches_gemini_as_inline_data() {
    let mock = MockGemini::start().await;
    let proxy = proxy_to(&mock).await;
    chat_ok(
        &proxy,
        &json!({"model": MODEL, "messages": [{"role": "user", "content": [
            {"type": "text", "text": "What is this?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]}]}),
    )
    .await;
    assert_eq!(
        mock.last().body["contents"][0]["parts"],
        json!([{"text": "What is this?"},
               {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}}])
    );
}

#[tokio::test]
async fn an_http_image_url_is_a_400_naming_its_place_and_nothing_is_sent() {
    let mock = MockGemini::start().await;
    let proxy = proxy_to(&mock).await;
    let (status, body) = chat(
        &proxy,
        &json!({"model": MODEL, "messages": [{"role": "user", "content": [
            {"type": "text", "text": "What is this?"},
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]}]}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let error = assert_envelope(&body);
    assert_eq!(error["param"], "messages[0].content[1].image_url.url");
    assert!(mock.requests().is_empty());
}

#[tokio::test]
async fn json_schema_mode_reaches_gemini_as_a_json_mime_type_and_response_json_schema() {
    let mock = MockGemini::start().await;
    let proxy = proxy_to(&mock).await;
    let schema = json!({"type": "object", "properties": {"city": {"type": "string"}},
                        "required": ["city"], "additionalProperties": false});
    chat_ok(
        &proxy,
        &json!({"model": MODEL, "messages": [{"role": "user", "content": "A city, as JSON"}],
                "response_format": {"type": "json_schema",
                    "json_schema": {"name": "city", "strict": true, "schema": schema}}}),
    )
    .await;
    let config = mock.last().body["generationConfig"].clone();
    assert_eq!(config["responseMimeType"], "application/json");
    assert_eq!(config["responseJsonSchema"], schema);
}

#[tokio::test]
async fn json_object_mode_reaches_gemini_as_a_json_mime_type() {
    let mock = MockGemini::start().await;
    let proxy = proxy_to(&mock).await;
    chat_ok(
        &proxy,
        &json!({"model": MODEL, "messages": [{"role": "user", "content": "A city, as JSON"}],
                "response_format": {"type": "json_object"}}),
    )
    .await;
    let config = mock.last().body["generationConfig"].clone();
    assert_eq!(config["responseMimeType"], "application/json");
    assert!(config.get("responseJsonSchema").is_none(), "{config}");
}

#[tokio::test]
async fn sampling_parameters_reach_gemini_in_generation_config() {
    let mock = MockGemini::start().await;
    let proxy = proxy_to(&mock).await;
    let mut request = hello(false);
    for (name, value) in [
        ("temperature", json!(0.5)),
        ("top_p", json!(0.9)),
        ("max_completion_tokens", json!(100)),
        ("stop", json!(["END", "STOP"])),
        ("seed", json!(7)),
        ("presence_penalty", json!(0.25)),
        ("frequency_penalty", json!(0.5)),
    ] {
        request[name] = value;
    }
    chat_ok(&proxy, &request).await;
    assert_eq!(
        mock.last().body["generationConfig"],
        json!({"temperature": 0.5, "topP": 0.9, "maxOutputTokens": 100,
               "stopSequences": ["END", "STOP"], "seed": 7,
               "presencePenalty": 0.25, "frequencyPenalty": 0.5})
    );
}

#[tokio::test]
async fn max_tokens_and_a_single_stop_string_reach_gemini_in_generation_config() {
    let mock = MockGemini::start().await;
    let proxy = proxy_to(&mock).await;
    let mut request = hello(false);
    request["max_tokens"] = json!(64);
    request["stop"] = json!("END");
    chat_ok(&proxy, &request).await;
    let config = mock.last().body["generationConfig"].clone();
    assert_eq!(config["maxOutputTokens"], 64);
    assert_eq!(config["stopSequences"], json!(["END"]));
}

#[tokio::test]
async fn n_asks_gemini_for_that_many_candidates_and_each_comes_back_as_a_choice() {
    let mock = MockGemini::start().await;
    let proxy = proxy_to(&mock).await;
    let mut request = hello(false);
    request["n"] = json!(2);
    let completion = chat_ok(&proxy, &request).await;
    assert_eq!(mock.last().body["generationConfig"]["candidateCount"], 2);
    assert_schema("CreateChatCompletionResponse", &completion);
    let indexes: Vec<&Value> = completion["choices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|choice| &choice["index"])
        .collect();
    assert_eq!(indexes, [&json!(0), &json!(1)], "{completion:#}");
}

#[tokio::test]
async fn reasoning_effort_becomes_a_thinking_budget() {
    let mock = MockGemini::start().await;
    let proxy = proxy_to(&mock).await;
    let mut budgets = Vec::new();
    for effort in ["low", "high"] {
        let mut request = hello(false);
        request["reasoning_effort"] = json!(effort);
        chat_ok(&proxy, &request).await;
        let budget =
            mock.last().body["generationConfig"]["thinkingConfig"]["thinkingBudget"].clone();
        budgets.push(
            budget
                .as_i64()
                .unwrap_or_else(|| panic!("{effort}: {budget}")),
        );
    }
    assert!(budgets[0] < budgets[1], "low {budgets:?} high");
}

#[tokio::test]
async fn a_parameter_gemini_cannot_express_is_a_400_naming_it_and_nothing_is_sent() {
    let mock = MockGemini::start().await;
    let proxy = proxy_to(&mock).await;
    for (param, value) in [
        ("logit_bias", json!({"1": 5})),
        ("logprobs", json!(true)),
        ("top_logprobs", json!(2)),
        ("audio", json!({"voice": "alloy", "format": "wav"})),
        ("function_call", json!("auto")),
        (
            "functions",
            json!([{"name": "weather", "parameters": {"type": "object", "properties": {}}}]),
        ),
    ] {
        let mut request = hello(false);
        request[param] = value;
        let (status, body) = chat(&proxy, &request).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{param}: {body}");
        let error = assert_envelope(&body);
        assert_eq!(error["type"], "invalid_request_error", "{body}");
        assert_eq!(error["param"], param, "{body}");
        assert!(
            error["message"]
                .as_str()
                .unwrap()
                .contains("TARGET_API=gemini"),
            "{body}"
        );
    }
    assert!(mock.requests().is_empty());
}

#[tokio::test]
async fn logprobs_false_and_an_empty_logit_bias_are_accepted() {
    let mock = MockGemini::start().await;
    let proxy = proxy_to(&mock).await;
    let mut request = hello(false);
    request["logprobs"] = json!(false);
    request["logit_bias"] = json!({});
    chat_ok(&proxy, &request).await;
}

#[tokio::test]
async fn a_model_name_that_cannot_go_in_the_path_is_a_400_and_nothing_is_sent() {
    let mock = MockGemini::start().await;
    let proxy = proxy_to(&mock).await;
    for model in [
        "tunedModels/x",
        "gemini?alt=json",
        "gemini#x",
        "gemini%2F",
        "gemini:streamGenerateContent",
        "gemini 2.5",
    ] {
        let mut request = hello(false);
        request["model"] = json!(model);
        let (status, body) = chat(&proxy, &request).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{model}: {body}");
        assert_eq!(assert_envelope(&body)["param"], "model", "{body}");
    }
    assert!(mock.requests().is_empty());
}

#[tokio::test]
async fn a_dropped_hint_is_noted_in_the_calls_log_entry() {
    let mock = MockGemini::start().await;
    let proxy = proxy_to(&mock).await;
    let mut request = hello(false);
    request["store"] = json!(true);
    chat_ok(&proxy, &request).await;
    proxy.handle.state().log().written().await;
    let listed: Value = proxy.get_json("/api/logs/api-calls?fields=summary").await;
    let translation = &listed["data"][0]["normalization"]["request"];
    assert_eq!(translation["translatedTo"], "gemini", "{listed}");
    assert_eq!(translation["dropped"], json!(["store"]));
    assert!(mock.last().body.get("store").is_none());
}

#[tokio::test]
async fn harmless_hints_are_dropped_and_noted_and_include_usage_is_honoured() {
    let mock = MockGemini::start().await;
    let proxy = proxy_to(&mock).await;
    let mut request = hello(true);
    for (name, value) in [
        ("user", json!("user-1")),
        ("store", json!(false)),
        ("metadata", json!({"k": "v"})),
        ("parallel_tool_calls", json!(true)),
        ("service_tier", json!("auto")),
        ("stream_options", json!({"include_usage": true})),
    ] {
        request[name] = value;
    }
    let response = proxy
        .post("/v1/chat/completions", &request)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap();
    assert_eq!(
        sse_data(&text).last().map(String::as_str),
        Some("[DONE]"),
        "{text}"
    );
    assert_eq!(mock.requests().len(), 1);
    proxy.handle.state().log().written().await;
    let listed: Value = proxy.get_json("/api/logs/api-calls?fields=summary").await;
    let mut dropped: Vec<&str> = listed["data"][0]["normalization"]["request"]["dropped"]
        .as_array()
        .unwrap_or_else(|| panic!("{listed}"))
        .iter()
        .map(|name| name.as_str().unwrap())
        .collect();
    dropped.sort_unstable();
    // `stream_options` is honoured by the proxy itself (the usage chunk), so not noted.
    assert_eq!(
        dropped,
        [
            "metadata",
            "parallel_tool_calls",
            "service_tier",
            "store",
            "user"
        ],
        "{listed}"
    );
    let usage = sse_data(&text)
        .iter()
        .filter(|event| *event != "[DONE]")
        .map(|event| serde_json::from_str::<Value>(event).unwrap())
        .find(|chunk| chunk["usage"].is_object())
        .unwrap_or_else(|| panic!("no usage chunk: {text}"));
    assert_eq!(usage["usage"]["completion_tokens"], 5);
}

#[tokio::test]
async fn a_gemini_error_comes_back_in_openais_envelope_with_its_status() {
    let mock = MockGemini::start().await;
    let proxy = proxy_to(&mock).await;
    let mut request = hello(false);
    request["model"] = json!("gemini-0.1-unknown");
    let (status, body) = chat(&proxy, &request).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let error = assert_envelope(&body);
    assert!(
        error["message"].as_str().unwrap().contains("not found"),
        "{body}"
    );
}

#[tokio::test]
async fn an_oauth_token_goes_as_a_bearer_header_and_no_api_key() {
    let tokens = MockTokenServer::start(Some(3600)).await;
    let mock = MockGemini::start().await;
    let oauth = OAuthConfig {
        token_endpoint: tokens.url.parse().unwrap(),
        client_id: CLIENT_ID.into(),
        client_secret: SecretString::from(CLIENT_SECRET),
        scope: Some(SCOPE.into()),
        audience: None,
        client_auth: ClientAuth::Auto,
        refresh_buffer: std::time::Duration::from_secs(300),
    };
    let proxy =
        TestProxy::start(config(gemini_target(&mock, CredentialConfig::OAuth(oauth)))).await;
    chat_ok(&proxy, &hello(false)).await;
    let sent = mock.last();
    assert_eq!(
        sent.headers["authorization"],
        format!("Bearer {}", tokens.issued()[0])
    );
    assert!(sent.headers.get("x-goog-api-key").is_none());
}

#[tokio::test]
async fn the_model_list_comes_from_gemini_in_openais_shape() {
    let mock = MockGemini::start().await;
    let proxy = proxy_to(&mock).await;
    let models = proxy.get_json("/v1/models").await;
    assert_schema("ListModelsResponse", &models);
    let ids: Vec<&str> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|model| model["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&MODEL), "{models}");
    assert!(ids.iter().all(|id| !id.starts_with("models/")), "{models}");
    let sent = mock.last();
    assert_eq!(sent.method, reqwest::Method::GET);
    assert_eq!(sent.path, "/v1beta/models");
    assert_eq!(
        sent.query.as_deref(),
        Some("pageSize=1000"),
        "one page holds every model"
    );
    assert_eq!(sent.headers["x-goog-api-key"], TARGET_KEY);
    let config = proxy.get_json("/api/config").await;
    assert_eq!(config["targetApi"], "gemini");
    let health = proxy.get_json("/health").await;
    assert_eq!(health["targetApi"], "gemini", "{health}");
}

// ---------------------------------------------------------------------------------------------
// The mock itself: it refuses what the real API refuses, in Google's envelope.

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// `body` posted straight to the mock's `generateContent` with the target key.
async fn post_to_mock(mock: &MockGemini, body: &Value) -> (StatusCode, Value) {
    let response = client()
        .post(format!("{}/models/{MODEL}:generateContent", mock.url()))
        .header("x-goog-api-key", TARGET_KEY)
        .json(body)
        .send()
        .await
        .unwrap();
    (response.status(), response.json().await.unwrap())
}

/// The message of a Google error envelope, after checking its shape and status.
fn google_error(status: StatusCode, body: &Value, expected: StatusCode, name: &str) -> String {
    assert_eq!(status, expected, "{body}");
    assert_eq!(body["error"]["code"], expected.as_u16(), "{body}");
    assert_eq!(body["error"]["status"], name, "{body}");
    body["error"]["message"].as_str().unwrap().to_owned()
}

fn user_text(text: &str) -> Value {
    json!({"role": "user", "parts": [{"text": text}]})
}

#[tokio::test]
async fn the_mock_accepts_a_valid_request_and_answers_in_the_recorded_shape() {
    let mock = MockGemini::start().await;
    let (status, body) = post_to_mock(
        &mock,
        &json!({"systemInstruction": {"parts": [{"text": "Be brief."}]},
                "contents": [user_text("Hi")],
                "generationConfig": {"maxOutputTokens": 64, "temperature": 0.2}}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["candidates"][0]["content"],
        json!({"parts": [{"text": MOCK_TEXT}], "role": "model"})
    );
    assert_eq!(body["candidates"][0]["finishReason"], "STOP");
    assert_eq!(body["modelVersion"], MODEL);
    assert!(body["responseId"].is_string());
    let usage = &body["usageMetadata"];
    assert_eq!(
        usage["totalTokenCount"].as_u64().unwrap(),
        usage["promptTokenCount"].as_u64().unwrap()
            + usage["candidatesTokenCount"].as_u64().unwrap()
    );
}

#[tokio::test]
async fn the_mock_rejects_an_openai_shaped_body_with_googles_unknown_name_error() {
    let mock = MockGemini::start().await;
    let (status, body) = post_to_mock(
        &mock,
        &json!({"messages": [{"role": "user", "content": "Hi"}]}),
    )
    .await;
    let message = google_error(status, &body, StatusCode::BAD_REQUEST, "INVALID_ARGUMENT");
    assert_eq!(
        message,
        "Invalid JSON payload received. Unknown name \"messages\": Cannot find field."
    );
    assert_eq!(
        mock.requests().len(),
        1,
        "a rejected request is recorded too"
    );
}

#[tokio::test]
async fn the_mock_rejects_an_openai_field_nested_in_generation_config() {
    let mock = MockGemini::start().await;
    let (status, body) = post_to_mock(
        &mock,
        &json!({"contents": [user_text("Hi")], "generationConfig": {"max_tokens": 10}}),
    )
    .await;
    let message = google_error(status, &body, StatusCode::BAD_REQUEST, "INVALID_ARGUMENT");
    assert_eq!(
        message,
        "Invalid JSON payload received. Unknown name \"max_tokens\" at 'generation_config': \
         Cannot find field."
    );
}

#[tokio::test]
async fn the_mock_rejects_the_assistant_role() {
    let mock = MockGemini::start().await;
    let (status, body) = post_to_mock(
        &mock,
        &json!({"contents": [user_text("Hi"), {"role": "assistant", "parts": [{"text": "Hello"}]}]}),
    )
    .await;
    let message = google_error(status, &body, StatusCode::BAD_REQUEST, "INVALID_ARGUMENT");
    assert_eq!(message, "Please use a valid role: user, model.");
}

#[tokio::test]
async fn the_mock_rejects_an_empty_text_part() {
    let mock = MockGemini::start().await;
    let (status, body) = post_to_mock(
        &mock,
        &json!({"contents": [{"role": "user", "parts": [{"text": ""}]}]}),
    )
    .await;
    let message = google_error(status, &body, StatusCode::BAD_REQUEST, "INVALID_ARGUMENT");
    assert!(
        message.contains("contents[0].parts[0].data: required oneof field 'data'"),
        "{message}"
    );
}

#[tokio::test]
async fn the_mock_rejects_a_function_response_not_right_after_a_function_call() {
    let mock = MockGemini::start().await;
    let call = json!({"role": "model", "parts": [{"functionCall": {"name": "weather", "args": {"city": "Paris"}}}]});
    let response =
        |name: &str| json!({"functionResponse": {"name": name, "response": {"content": "15C"}}});
    let (status, body) = post_to_mock(
        &mock,
        &json!({"contents": [user_text("Paris?"), {"role": "user", "parts": [response("weather")]}]}),
    )
    .await;
    let message = google_error(status, &body, StatusCode::BAD_REQUEST, "INVALID_ARGUMENT");
    assert_eq!(
        message,
        "Please ensure that function response turn comes immediately after a function call turn."
    );

    let (status, body) = post_to_mock(
        &mock,
        &json!({"contents": [user_text("Paris?"), call,
            {"role": "user", "parts": [response("weather"), response("weather")]}]}),
    )
    .await;
    let message = google_error(status, &body, StatusCode::BAD_REQUEST, "INVALID_ARGUMENT");
    assert_eq!(
        message,
        "Please ensure that the number of function response parts is equal to the number of \
         function call parts of the function call turn."
    );

    let (status, body) = post_to_mock(
        &mock,
        &json!({"contents": [user_text("Paris?"), call, {"role": "user", "parts": [response("weather")]}]}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn the_mock_rejects_json_schema_keywords_in_response_schema_but_not_in_response_json_schema()
{
    let mock = MockGemini::start().await;
    let schema = json!({"type": "object", "properties": {"city": {"type": "string"}},
                        "additionalProperties": false});
    let (status, body) = post_to_mock(
        &mock,
        &json!({"contents": [user_text("Hi")], "generationConfig": {
            "responseMimeType": "application/json", "responseSchema": schema}}),
    )
    .await;
    let message = google_error(status, &body, StatusCode::BAD_REQUEST, "INVALID_ARGUMENT");
    assert_eq!(
        message,
        "Invalid JSON payload received. Unknown name \"additionalProperties\" at \
         'generation_config.response_schema': Cannot find field."
    );

    let (status, body) = post_to_mock(
        &mock,
        &json!({"contents": [user_text("Hi")], "generationConfig": {
            "responseMimeType": "application/json",
            "responseSchema": {"type": "object", "properties": {"city": {"$schema": "x", "type": "string"}}}}}),
    )
    .await;
    let message = google_error(status, &body, StatusCode::BAD_REQUEST, "INVALID_ARGUMENT");
    assert!(
        message.contains(
            "Unknown name \"$schema\" at 'generation_config.response_schema.properties[0].value'"
        ),
        "{message}"
    );

    let (status, body) = post_to_mock(
        &mock,
        &json!({"contents": [user_text("Hi")], "generationConfig": {"responseJsonSchema": schema}}),
    )
    .await;
    let message = google_error(status, &body, StatusCode::BAD_REQUEST, "INVALID_ARGUMENT");
    assert!(message.contains("response_mime_type"), "{message}");

    let (status, body) = post_to_mock(
        &mock,
        &json!({"contents": [user_text("Hi")], "generationConfig": {
            "responseMimeType": "application/json", "responseJsonSchema": schema}}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn the_mock_rejects_a_system_instruction_with_the_model_role() {
    let mock = MockGemini::start().await;
    let (status, body) = post_to_mock(
        &mock,
        &json!({"systemInstruction": {"role": "model", "parts": [{"text": "Be brief."}]},
                "contents": [user_text("Hi")]}),
    )
    .await;
    google_error(status, &body, StatusCode::BAD_REQUEST, "INVALID_ARGUMENT");
}

#[tokio::test]
async fn the_mock_rejects_a_wrong_key_with_400_and_a_missing_one_with_403() {
    let mock = MockGemini::start().await;
    let url = format!("{}/models/{MODEL}:generateContent", mock.url());
    let body = json!({"contents": [user_text("Hi")]});
    let response = client()
        .post(&url)
        .header("x-goog-api-key", "wrong")
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let answer: Value = response.json().await.unwrap();
    let message = google_error(status, &answer, StatusCode::BAD_REQUEST, "INVALID_ARGUMENT");
    assert_eq!(message, "API key not valid. Please pass a valid API key.");

    let response = client().post(&url).json(&body).send().await.unwrap();
    let status = response.status();
    let answer: Value = response.json().await.unwrap();
    google_error(status, &answer, StatusCode::FORBIDDEN, "PERMISSION_DENIED");

    let response = client()
        .post(&url)
        .bearer_auth("ya29.any-oauth-token")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_mock_answers_an_unknown_model_or_method_with_404() {
    let mock = MockGemini::start().await;
    let body = json!({"contents": [user_text("Hi")]});
    for path in [
        "models/gemini-0.1-unknown:generateContent",
        "models/models/gemini-2.5-flash:generateContent",
        "models/gemini-2.5-flash:chat",
    ] {
        let response = client()
            .post(format!("{}/{path}", mock.url()))
            .header("x-goog-api-key", TARGET_KEY)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let answer: Value = response.json().await.unwrap();
        google_error(status, &answer, StatusCode::NOT_FOUND, "NOT_FOUND");
    }
}

#[tokio::test]
async fn the_mock_streams_sse_only_with_alt_sse_and_a_json_array_without() {
    let mock = MockGemini::start().await;
    let url = format!("{}/models/{MODEL}:streamGenerateContent", mock.url());
    let body = json!({"contents": [user_text("Hi")]});
    let response = client()
        .post(format!("{url}?alt=sse"))
        .header("x-goog-api-key", TARGET_KEY)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let text = response.text().await.unwrap();
    let events: Vec<Value> = text
        .split("\r\n\r\n")
        .filter(|event| !event.is_empty())
        .map(|event| serde_json::from_str(event.strip_prefix("data: ").unwrap()).unwrap())
        .collect();
    assert_eq!(events.len(), 3);
    let streamed: String = events
        .iter()
        .map(|e| {
            e["candidates"][0]["content"]["parts"][0]["text"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(streamed, MOCK_TEXT);
    assert!(
        events[..2]
            .iter()
            .all(|e| e["usageMetadata"].get("candidatesTokenCount").is_none())
    );
    assert_eq!(events[2]["candidates"][0]["finishReason"], "STOP");
    assert!(!text.contains("[DONE]"));

    let response = client()
        .post(&url)
        .header("x-goog-api-key", TARGET_KEY)
        .json(&body)
        .send()
        .await
        .unwrap();
    let array: Value = response.json().await.unwrap();
    assert_eq!(array.as_array().map(Vec::len), Some(3), "{array}");
}
