//! The Anthropic mock itself: it answers as the recorded API answers and rejects what the real
//! API rejects, in the real API's envelope and words.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "in tests a failure should panic"
)]

mod common;

use std::collections::BTreeSet;

use common::anthropic::{
    ANTHROPIC_VERSION, AnthropicReply, MOCK_TEXT, MockAnthropic, validate_request,
};
use common::{TARGET_KEY, fixture};
use reqwest::StatusCode;
use serde_json::{Value, json};

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// A request as the proxy should send it: the target key and the API version.
async fn post(mock: &MockAnthropic, body: &Value) -> reqwest::Response {
    client()
        .post(format!("{}/messages", mock.url()))
        .header("x-api-key", TARGET_KEY)
        .header("anthropic-version", ANTHROPIC_VERSION)
        .json(body)
        .send()
        .await
        .unwrap()
}

fn hello(stream: bool) -> Value {
    json!({
        "model": "claude-sonnet-4-5",
        "max_tokens": 256,
        "stream": stream,
        "messages": [{"role": "user", "content": "Hi"}]
    })
}

/// `(event name, data)` of each SSE event.
fn events(body: &str) -> Vec<(String, Value)> {
    body.split("\n\n")
        .filter(|event| !event.trim().is_empty())
        .map(|event| {
            let name = event
                .lines()
                .find_map(|l| l.strip_prefix("event: "))
                .unwrap();
            let data = event
                .lines()
                .find_map(|l| l.strip_prefix("data: "))
                .unwrap();
            (name.to_owned(), serde_json::from_str(data).unwrap())
        })
        .collect()
}

fn keys(value: &Value) -> BTreeSet<String> {
    value.as_object().unwrap().keys().cloned().collect()
}

/// A 400 `invalid_request_error`, and its message.
async fn rejected(mock: &MockAnthropic, body: &Value) -> String {
    let response = post(mock, body).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["type"], "error");
    assert_eq!(error["error"]["type"], "invalid_request_error", "{error}");
    assert!(error["request_id"].as_str().unwrap().starts_with("req_"));
    error["error"]["message"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_valid_request_gets_a_message_shaped_as_recorded() {
    let mock = MockAnthropic::start().await;
    let response = post(&mock, &hello(false)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["request-id"]
            .to_str()
            .unwrap()
            .starts_with("req_")
    );
    let message: Value = response.json().await.unwrap();
    let recorded: Value = serde_json::from_str(&fixture("anthropic/text.json")).unwrap();
    assert_eq!(keys(&message), keys(&recorded));
    assert_eq!(keys(&message["usage"]), keys(&recorded["usage"]));
    assert_eq!(message["model"], "claude-sonnet-4-5");
    assert!(message["id"].as_str().unwrap().starts_with("msg_01"));
    assert_eq!(
        message["content"],
        json!([{"type": "text", "text": MOCK_TEXT}])
    );
    assert_eq!(message["stop_reason"], "end_turn");
    assert!(message["usage"]["input_tokens"].as_u64().unwrap() > 0);
    assert!(message["usage"]["output_tokens"].as_u64().unwrap() > 0);
    assert_eq!(mock.requests().len(), 1);
    assert_eq!(mock.last().body, hello(false));
    assert_eq!(mock.last().headers["x-api-key"], TARGET_KEY);
}

#[tokio::test]
async fn a_streaming_request_gets_the_events_of_the_recorded_stream() {
    let mock = MockAnthropic::start().await;
    let response = post(&mock, &hello(true)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let events = events(&response.text().await.unwrap());
    let recorded = events_of_fixture("anthropic/text-stream.sse");
    let names = |events: &[(String, Value)]| -> Vec<String> {
        events.iter().map(|(name, _)| name.clone()).collect()
    };
    assert_eq!(names(&events), names(&recorded));
    assert_eq!(names(&events).last().unwrap(), "message_stop");
    for (name, data) in &events {
        assert_eq!(data["type"], name.as_str());
    }
    let start = &events[0].1["message"];
    assert_eq!(start["model"], "claude-sonnet-4-5");
    assert!(start["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(start["content"], json!([]));
    let text: String = events
        .iter()
        .filter_map(|(_, data)| data["delta"]["text"].as_str())
        .collect();
    assert_eq!(text, MOCK_TEXT);
    let delta = &events[events.len() - 2].1;
    assert_eq!(delta["delta"]["stop_reason"], "end_turn");
    assert!(delta["usage"]["output_tokens"].as_u64().unwrap() > 0);
}

fn events_of_fixture(name: &str) -> Vec<(String, Value)> {
    events(&fixture(name))
}

#[tokio::test]
async fn a_tool_use_reply_calls_the_tool_whole_and_streamed() {
    let mock = MockAnthropic::start().await;
    let input = json!({"location": "Paris", "unit": "celsius"});
    mock.set_reply(AnthropicReply::ToolUse {
        name: "get_weather".into(),
        input: input.clone(),
    });
    let tools = json!([{
        "name": "get_weather",
        "description": "Weather in a city",
        "input_schema": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}
    }]);
    let mut request = hello(false);
    request["tools"] = tools;
    let message: Value = post(&mock, &request).await.json().await.unwrap();
    assert_eq!(message["stop_reason"], "tool_use");
    let block = &message["content"][0];
    assert_eq!(block["type"], "tool_use");
    assert!(block["id"].as_str().unwrap().starts_with("toolu_"));
    assert_eq!(block["name"], "get_weather");
    assert_eq!(block["input"], input);

    request["stream"] = json!(true);
    let events = events(&post(&mock, &request).await.text().await.unwrap());
    let names: Vec<&str> = events.iter().map(|(name, _)| name.as_str()).collect();
    let deltas = names
        .iter()
        .filter(|n| **n == "content_block_delta")
        .count();
    assert!(deltas > 2, "{names:?}");
    let mut expected = vec!["message_start", "content_block_start", "ping"];
    expected.extend(std::iter::repeat_n("content_block_delta", deltas));
    expected.extend(["content_block_stop", "message_delta", "message_stop"]);
    assert_eq!(names, expected);
    let start = &events[1].1["content_block"];
    assert_eq!(start["type"], "tool_use");
    assert_eq!(start["name"], "get_weather");
    assert_eq!(start["input"], json!({}));
    let json: String = events
        .iter()
        .filter_map(|(_, data)| data["delta"]["partial_json"].as_str())
        .collect();
    assert_eq!(serde_json::from_str::<Value>(&json).unwrap(), input);
    assert_eq!(
        events[events.len() - 2].1["delta"]["stop_reason"],
        "tool_use"
    );
    // The recorded stream frames its tool block the same way.
    let recorded = events_of_fixture("anthropic/tool-use-stream.sse");
    let recorded_tool = recorded
        .iter()
        .find(|(_, data)| data["content_block"]["type"] == "tool_use")
        .unwrap();
    assert_eq!(keys(&recorded_tool.1), keys(&events[1].1));
}

#[tokio::test]
async fn a_missing_max_tokens_is_rejected_and_still_recorded() {
    let mock = MockAnthropic::start().await;
    let mut body = hello(false);
    body.as_object_mut().unwrap().remove("max_tokens");
    assert_eq!(rejected(&mock, &body).await, "max_tokens: Field required");
    assert_eq!(mock.last().body, body);
}

#[tokio::test]
async fn a_system_message_is_rejected_as_the_api_does() {
    let mock = MockAnthropic::start().await;
    let mut body = hello(false);
    body["messages"] = json!([
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"}
    ]);
    assert_eq!(
        rejected(&mock, &body).await,
        "messages: Unexpected role \"system\". The Messages API accepts a top-level `system` \
         parameter, not \"system\" as an input message role."
    );
}

#[tokio::test]
async fn a_tool_result_without_its_tool_use_is_rejected() {
    let mock = MockAnthropic::start().await;
    let mut body = hello(false);
    body["messages"] = json!([
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_01A", "content": "15°C"}]}
    ]);
    assert_eq!(
        rejected(&mock, &body).await,
        "messages.0.content.0: unexpected `tool_use_id` found in `tool_result` blocks: toolu_01A. \
         Each `tool_result` block must have a corresponding `tool_use` block in the previous message."
    );
}

#[tokio::test]
async fn a_tool_use_without_its_result_is_rejected() {
    let mock = MockAnthropic::start().await;
    let mut body = hello(false);
    body["messages"] = json!([
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_01A", "name": "get_weather", "input": {}}]},
        {"role": "user", "content": "Well?"}
    ]);
    assert_eq!(
        rejected(&mock, &body).await,
        "messages.1: `tool_use` ids were found without `tool_result` blocks immediately after: \
         toolu_01A. Each `tool_use` block must have a corresponding `tool_result` block in the \
         next message."
    );
}

#[tokio::test]
async fn a_full_tool_round_trip_is_accepted() {
    let mock = MockAnthropic::start().await;
    let body = json!({
        "model": "claude-sonnet-4-5",
        "max_tokens": 4096,
        "system": [{"type": "text", "text": "You are terse."}],
        "temperature": 0.2,
        "stop_sequences": ["END"],
        "metadata": {"user_id": "u-1"},
        "tools": [{"name": "get_weather", "input_schema": {"type": "object", "properties": {}}}],
        "tool_choice": {"type": "auto", "disable_parallel_tool_use": true},
        "messages": [
            {"role": "user", "content": [
                {"type": "text", "text": "Weather in Paris and Rome?"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}
            ]},
            {"role": "assistant", "content": [
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "toolu_01A", "name": "get_weather", "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "call_b-2", "name": "get_weather", "input": {"city": "Rome"}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_01A", "content": "15°C"},
                {"type": "tool_result", "tool_use_id": "call_b-2", "content": [{"type": "text", "text": "20°C"}], "is_error": false},
                {"type": "text", "text": "Compare them."}
            ]}
        ]
    });
    let response = post(&mock, &body).await;
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "{}",
        response.text().await.unwrap()
    );
}

#[tokio::test]
async fn authentication_and_version_are_checked_first() {
    let mock = MockAnthropic::start().await;
    let send = |request: reqwest::RequestBuilder| async move {
        let response = request.json(&hello(false)).send().await.unwrap();
        let status = response.status();
        (status, response.json::<Value>().await.unwrap())
    };
    let url = format!("{}/messages", mock.url());
    let (status, body) = send(
        client()
            .post(&url)
            .header("x-api-key", "sk-wrong")
            .header("anthropic-version", ANTHROPIC_VERSION),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["type"], "authentication_error");
    assert_eq!(body["error"]["message"], "invalid x-api-key");

    let (status, body) = send(
        client()
            .post(&url)
            .header("anthropic-version", ANTHROPIC_VERSION),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["message"], "x-api-key header is required");

    let (status, _) = send(
        client()
            .post(&url)
            .bearer_auth("oauth-token")
            .header("anthropic-version", ANTHROPIC_VERSION),
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    let (status, body) = send(client().post(&url).header("x-api-key", TARGET_KEY)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["error"]["message"],
        "anthropic-version: header is required"
    );
    assert_eq!(mock.requests().len(), 4);
}

#[tokio::test]
async fn the_model_list_has_anthropics_shape() {
    let mock = MockAnthropic::start().await;
    let models = client()
        .get(format!("{}/models", mock.url()))
        .header("x-api-key", TARGET_KEY)
        .header("anthropic-version", ANTHROPIC_VERSION)
        .send()
        .await
        .unwrap();
    assert_eq!(models.status(), StatusCode::OK);
    let models: Value = models.json().await.unwrap();
    assert_eq!(models["data"][0]["type"], "model");
    assert_eq!(models["data"][0]["id"], "claude-sonnet-4-5");
    assert_eq!(models["has_more"], false);
    assert_eq!(models["first_id"], "claude-sonnet-4-5");
    let anonymous = client()
        .get(format!("{}/models", mock.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    assert!(mock.requests().is_empty());
}

/// The other rules, checked without a server: each body and the start of its error message.
#[test]
fn the_validator_rejects_what_the_api_rejects() {
    let user = json!({"role": "user", "content": "Hi"});
    let base = |extra: Value| {
        let mut body =
            json!({"model": "claude-sonnet-4-5", "max_tokens": 2048, "messages": [user]});
        for (key, value) in extra.as_object().unwrap() {
            body[key] = value.clone();
        }
        body
    };
    let cases = [
        (base(json!({"n": 1})), "n: Extra inputs are not permitted"),
        (
            base(json!({"max_tokens": 0})),
            "max_tokens: Input should be greater than or equal to 1",
        ),
        (
            base(json!({"max_tokens": 10.0})),
            "max_tokens: Input should be a valid integer",
        ),
        (
            base(json!({"messages": []})),
            "messages: at least one message is required",
        ),
        (
            base(json!({"temperature": 1.5})),
            "temperature: Input should be less than or equal to 1",
        ),
        (
            base(json!({"top_p": -0.1})),
            "top_p: Input should be greater than or equal to 0",
        ),
        (
            base(json!({"stop_sequences": "END"})),
            "stop_sequences: Input should be a valid list",
        ),
        (
            base(json!({"system": [{"type": "text", "text": ""}]})),
            "system: text content blocks must be non-empty",
        ),
        (
            base(json!({"messages": [{"role": "assistant", "content": "Hi"}]})),
            "messages: first message must use the \"user\" role",
        ),
        (
            base(json!({"messages": [{"role": "tool", "content": "x", "tool_call_id": "c"}]})),
            "messages.0.role: Input should be 'user' or 'assistant'",
        ),
        (
            base(json!({"messages": [{"role": "user", "content": "Hi", "name": "bob"}]})),
            "messages.0.name: Extra inputs are not permitted",
        ),
        (
            base(json!({"messages": [{"role": "user", "content": ""}]})),
            "messages.0: all messages must have non-empty content",
        ),
        (
            base(
                json!({"messages": [{"role": "user", "content": [{"type": "text", "text": ""}]}]}),
            ),
            "messages: text content blocks must be non-empty",
        ),
        (
            base(json!({"messages": [user, {"role": "assistant", "content": "Sure, "}]})),
            "messages: final assistant content cannot end with trailing whitespace",
        ),
        (
            base(
                json!({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]}),
            ),
            "messages.0.content.0: Input tag 'image_url' found using 'type'",
        ),
        (
            base(
                json!({"messages": [{"role": "user", "content": [{"type": "image", "source": {"type": "base64", "media_type": "image/bmp", "data": "AA=="}}]}]}),
            ),
            "messages.0.content.0.image.source.base64.media_type: Input should be",
        ),
        (
            base(
                json!({"messages": [{"role": "user", "content": [{"type": "image", "source": {"type": "url", "url": "data:image/png;base64,AA=="}}]}]}),
            ),
            "messages.0.content.0.image.source.url.url:",
        ),
        (
            base(
                json!({"messages": [user, {"role": "assistant", "content": [{"type": "tool_use", "id": "functions.get:0", "name": "get", "input": {}}]}]}),
            ),
            "messages.1.content.0.tool_use.id: String should match pattern '^[a-zA-Z0-9_-]+$'",
        ),
        (
            base(
                json!({"messages": [user, {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "get", "input": "{}"}]}, {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1"}]}]}),
            ),
            "messages.1.content.0.tool_use.input: Input should be a valid dictionary",
        ),
        (
            base(
                json!({"messages": [user, {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "get", "input": {}}]}, {"role": "user", "content": [{"type": "text", "text": "Here:"}, {"type": "tool_result", "tool_use_id": "t1"}]}]}),
            ),
            "messages.1: `tool_use` ids were found without `tool_result` blocks immediately after: t1.",
        ),
        (
            base(
                json!({"messages": [user, {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "get", "input": {}}, {"type": "tool_use", "id": "t1", "name": "get", "input": {}}]}]}),
            ),
            "messages.1.content.1: `tool_use` ids must be unique",
        ),
        (
            base(json!({"tools": [{"type": "function", "function": {"name": "get"}}]})),
            "tools.0: Input tag 'function' found using 'type' does not match any of the expected tags:",
        ),
        (
            base(json!({"tools": [{"name": "ns.get", "input_schema": {"type": "object"}}]})),
            "tools.0.custom.name: String should match pattern '^[a-zA-Z0-9_-]{1,128}$'",
        ),
        (
            base(json!({"tools": [{"name": "get", "parameters": {"type": "object"}}]})),
            "tools.0.custom.parameters: Extra inputs are not permitted",
        ),
        (
            base(json!({"tools": [{"name": "get"}]})),
            "tools.0.custom.input_schema: Field required",
        ),
        (
            base(json!({"tools": [{"name": "get", "input_schema": {"type": "string"}}]})),
            "tools.0.custom.input_schema.type: Input should be 'object'",
        ),
        (
            base(
                json!({"tools": [{"name": "get", "input_schema": {"type": "object", "required": "a"}}]}),
            ),
            "tools.0.custom.input_schema: JSON schema is invalid.",
        ),
        (
            base(
                json!({"tools": [{"name": "get", "input_schema": {"type": "object"}}, {"name": "get", "input_schema": {"type": "object"}}]}),
            ),
            "tools: Tool names must be unique.",
        ),
        (
            base(json!({"tool_choice": "auto"})),
            "tool_choice: Input should be a valid dictionary",
        ),
        (
            base(json!({"tool_choice": {"type": "required"}})),
            "tool_choice: Input tag 'required' found using 'type'",
        ),
        (
            base(
                json!({"tools": [{"name": "get", "input_schema": {"type": "object"}}], "tool_choice": {"type": "tool", "name": "put"}}),
            ),
            "tool_choice.tool.name: Tool 'put' not found",
        ),
        (
            base(json!({"thinking": {"type": "enabled", "budget_tokens": 512}})),
            "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024",
        ),
        (
            base(json!({"thinking": {"type": "enabled", "budget_tokens": 2048}})),
            "`max_tokens` must be greater than `thinking.budget_tokens`.",
        ),
        (
            base(
                json!({"max_tokens": 4096, "temperature": 0.5, "thinking": {"type": "enabled", "budget_tokens": 1024}}),
            ),
            "`temperature` may only be set to 1 when thinking is enabled.",
        ),
        (
            base(
                json!({"max_tokens": 4096, "thinking": {"type": "enabled", "budget_tokens": 1024}, "tools": [{"name": "get", "input_schema": {"type": "object"}}], "tool_choice": {"type": "any"}}),
            ),
            "Thinking may not be enabled when tool_choice forces tool use.",
        ),
        (
            base(
                json!({"max_tokens": 4096, "thinking": {"type": "enabled", "budget_tokens": 1024}, "messages": [user, {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "get", "input": {}}]}, {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "ok"}]}]}),
            ),
            "messages.1.content.0.type: Expected `thinking` or `redacted_thinking`, but found `tool_use`.",
        ),
    ];
    for (body, expected) in cases {
        let message = validate_request(&body).expect_err(&format!("accepted {body}"));
        assert!(
            message.starts_with(expected),
            "{body}\n  got: {message}\n want: {expected}"
        );
    }
    // Consecutive turns of one role are combined, as the API does, so this is valid.
    let merged = base(json!({"messages": [user, {"role": "user", "content": "And more"}]}));
    assert_eq!(validate_request(&merged), Ok(()));
    let prefill = base(json!({"messages": [user, {"role": "assistant", "content": "{"}]}));
    assert_eq!(validate_request(&prefill), Ok(()));
}
