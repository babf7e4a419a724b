//! `/v1/responses`, OpenAI's Responses API: answered as a chat completion by the placeholder
//! or a chat target (whole and streamed, every event and object held to the spec's schemas and
//! to OpenAI's recorded streams), stored responses continued, listed and deleted, failures, and
//! a target that has the API itself (`TARGET_API=responses`) getting the bytes as they are.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "in tests a failure should panic"
)]

mod common;

use common::*;
use llm_proxy::config::{TargetApi, UpstreamConfig};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// The events of a Responses stream, each checked against the spec and its `event:` name.
fn events(body: &str) -> Vec<Value> {
    let events: Vec<Value> = body
        .split("\n\n")
        .filter(|block| !block.trim().is_empty())
        .map(|block| {
            let name = block
                .lines()
                .find_map(|l| l.strip_prefix("event: "))
                .unwrap();
            let data = block
                .lines()
                .find_map(|l| l.strip_prefix("data: "))
                .unwrap();
            let event: Value = serde_json::from_str(data).unwrap();
            assert_eq!(event["type"], name, "{block}");
            assert_schema(event_schema(name), &event);
            event
        })
        .collect();
    for (n, event) in events.iter().enumerate() {
        assert_eq!(event["sequence_number"], n, "{event}");
    }
    events
}

/// The spec's schema for events of type `name` (one of `ResponseStreamEvent`'s alternatives).
fn event_schema(name: &str) -> &'static str {
    static NAMES: std::sync::OnceLock<std::collections::HashMap<String, &'static str>> =
        std::sync::OnceLock::new();
    let names = NAMES.get_or_init(|| {
        let spec: Value = serde_json::from_str(&fixture("openai-schemas.json")).unwrap();
        let schemas = &spec["components"]["schemas"];
        schemas["ResponseStreamEvent"]["anyOf"]
            .as_array()
            .unwrap()
            .iter()
            .map(|alternative| {
                let schema = alternative["$ref"]
                    .as_str()
                    .unwrap()
                    .rsplit('/')
                    .next()
                    .unwrap();
                let kind = schemas[schema]["properties"]["type"]["enum"][0]
                    .as_str()
                    .unwrap();
                (
                    kind.to_owned(),
                    &*Box::leak(schema.to_owned().into_boxed_str()),
                )
            })
            .collect()
    });
    names
        .get(name)
        .unwrap_or_else(|| panic!("no event type {name} in the spec"))
}

fn kinds(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["type"].as_str().unwrap()).collect()
}

/// Checks the grammar every stream keeps: created and in_progress first, one terminal event
/// last holding every item that `output_item.done` gave, in order; returns that Response.
fn final_response(events: &[Value]) -> &Value {
    assert_eq!(
        kinds(events)[..2],
        ["response.created", "response.in_progress"]
    );
    let last = events.last().unwrap();
    let done: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "response.output_item.done")
        .map(|e| &e["item"])
        .collect();
    let response = &last["response"];
    assert_schema("Response", response);
    assert_eq!(
        response["output"]
            .as_array()
            .unwrap()
            .iter()
            .collect::<Vec<_>>(),
        done
    );
    assert_eq!(response["id"], events[0]["response"]["id"]);
    response
}

async fn chat_target_proxy() -> (MockTarget, TestProxy) {
    let target = MockTarget::start().await;
    let proxy = TestProxy::forwarding(&target.url(), |_| {}).await;
    (target, proxy)
}

fn completion(message: Value, finish: &str) -> Reply {
    let body = json!({"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4.1-2025-04-14",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17,
            "prompt_tokens_details": {"cached_tokens": 2}, "completion_tokens_details": {"reasoning_tokens": 1}}});
    Reply::Json(StatusCode::OK, body.to_string())
}

fn chunk(delta: Value, finish: Option<&str>) -> String {
    let chunk = json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4.1",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
    format!("data: {chunk}\n\n")
}

fn usage_chunk() -> String {
    let chunk = json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4.1",
        "choices": [], "usage": {"prompt_tokens": 20, "completion_tokens": 9, "total_tokens": 29}});
    format!("data: {chunk}\n\n")
}

fn sent_chat(target: &MockTarget) -> Value {
    let sent = target.last();
    assert_eq!(sent.path_and_query, "/v1/chat/completions");
    serde_json::from_slice(&sent.body).unwrap()
}

#[tokio::test]
async fn the_placeholder_answers_a_response_whole_and_streamed_in_the_specs_shapes() {
    let proxy = TestProxy::placeholder().await;
    let whole = proxy
        .post_json(
            "/v1/responses",
            &json!({"model": "gpt-4.1", "input": "Hello there", "instructions": "Be brief."}),
        )
        .await;
    assert_schema("Response", &whole);
    assert_eq!(whole["status"], "completed");
    assert_eq!(whole["instructions"], "Be brief.");
    assert!(whole["id"].as_str().unwrap().starts_with("resp_"));
    let item = &whole["output"][0];
    assert!(item["id"].as_str().unwrap().starts_with("msg_"));
    assert!(
        item["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("Hello there"),
        "{whole}"
    );
    assert!(whole["usage"]["total_tokens"].as_u64().unwrap() > 0);

    let text = proxy
        .post_text(
            "/v1/responses",
            &json!({"model": "gpt-4.1", "input": "Hello there", "stream": true}),
        )
        .await;
    let events = events(&text);
    let response = final_response(&events);
    assert_eq!(events.last().unwrap()["type"], "response.completed");
    let deltas: String = events
        .iter()
        .filter(|e| e["type"] == "response.output_text.delta")
        .map(|e| e["delta"].as_str().unwrap())
        .collect();
    assert_eq!(response["output"][0]["content"][0]["text"], deltas);
    assert!(!text.contains("[DONE]"), "{text}");
}

#[tokio::test]
async fn function_tools_over_two_turns_reach_a_chat_target_as_chat_tools_and_tool_messages() {
    let (target, proxy) = chat_target_proxy().await;
    let tools = json!([{"type": "function", "name": "get_weather", "description": "Weather now",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}, "strict": true}]);
    target.once(completion(
        json!({"role": "assistant", "content": null, "tool_calls": [{"id": "call_w1", "type": "function",
            "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]}),
        "tool_calls",
    ));
    let first = proxy
        .post_json(
            "/v1/responses",
            &json!({"model": "gpt-4.1", "input": "Weather in Paris?", "tools": tools,
            "tool_choice": {"type": "function", "name": "get_weather"}, "max_output_tokens": 300}),
        )
        .await;
    assert_schema("Response", &first);
    let chat = sent_chat(&target);
    assert_eq!(
        chat["tools"],
        json!([{"type": "function", "function": {"name": "get_weather", "description": "Weather now",
            "parameters": tools[0]["parameters"], "strict": true}}])
    );
    assert_eq!(
        chat["tool_choice"],
        json!({"type": "function", "function": {"name": "get_weather"}})
    );
    assert_eq!(chat["max_completion_tokens"], 300);
    let call = &first["output"][0];
    assert_eq!(call["type"], "function_call");
    assert_eq!(call["call_id"], "call_w1");
    assert_eq!(call["arguments"], "{\"city\":\"Paris\"}");
    assert!(call["id"].as_str().unwrap().starts_with("fc_"));
    assert_eq!(first["tools"], tools, "the request's tools are echoed");
    assert_eq!(
        first["usage"],
        json!({"input_tokens": 12, "input_tokens_details": {"cached_tokens": 2, "cache_write_tokens": 0}, "output_tokens": 5,
            "output_tokens_details": {"reasoning_tokens": 1}, "total_tokens": 17})
    );

    target.once(completion(
        json!({"role": "assistant", "content": "21 °C and sunny."}),
        "stop",
    ));
    let second = proxy
        .post_json(
            "/v1/responses",
            &json!({"model": "gpt-4.1", "tools": tools, "store": false, "input": [
            {"role": "user", "content": "Weather in Paris?"},
            call,
            {"type": "function_call_output", "call_id": "call_w1", "output": "{\"celsius\":21}"}]}),
        )
        .await;
    assert_eq!(
        second["output"][0]["content"][0]["text"],
        "21 °C and sunny."
    );
    let messages = sent_chat(&target)["messages"].clone();
    assert_eq!(
        messages,
        json!([{"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "call_w1", "type": "function",
                "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
            {"role": "tool", "tool_call_id": "call_w1", "content": "{\"celsius\":21}"}])
    );
}

#[tokio::test]
async fn streamed_text_and_tool_calls_become_one_item_each_in_order_with_the_targets_usage() {
    let (target, proxy) = chat_target_proxy().await;
    target.always(Reply::Sse(
        vec![
            chunk(json!({"role": "assistant", "content": "Let me"}), None),
            chunk(json!({"content": " look."}), None),
            chunk(json!({"tool_calls": [{"index": 0, "id": "call_a", "type": "function",
                "function": {"name": "shell", "arguments": "{\"command\":"}}]}), None),
            chunk(json!({"tool_calls": [{"index": 0, "function": {"arguments": "[\"ls\"]}"}}]}), None),
            chunk(json!({"tool_calls": [{"index": 1, "id": "call_b", "type": "function",
                "function": {"name": "apply_patch", "arguments": "{\"input\":\"*** Begin Patch\\n*** End Patch\"}"}}]}), None),
            chunk(json!({}), Some("tool_calls")),
            usage_chunk(),
            "data: [DONE]\n\n".into(),
        ],
        SseEnd::Close,
    ));
    let text = proxy
        .post_text("/v1/responses", &json!({"model": "gpt-4.1", "stream": true, "input": "go", "tools": [
            {"type": "function", "name": "shell", "parameters": {"type": "object"}},
            {"type": "custom", "name": "apply_patch", "description": "Patch files.",
                "format": {"type": "grammar", "syntax": "lark", "definition": "start: begin_patch"}}]}))
        .await;
    let chat = sent_chat(&target);
    assert_eq!(chat["stream_options"], json!({"include_usage": true}));
    assert_eq!(
        chat["tools"][1]["function"]["parameters"]["required"],
        json!(["input"])
    );
    let events = events(&text);
    let response = final_response(&events);
    let output = response["output"].as_array().unwrap();
    assert_eq!(output.len(), 3, "{response:#}");
    assert_eq!(output[0]["content"][0]["text"], "Let me look.");
    assert_eq!(output[1]["type"], "function_call");
    assert_eq!(output[1]["arguments"], "{\"command\":[\"ls\"]}");
    assert_eq!(output[2]["type"], "custom_tool_call");
    assert_eq!(output[2]["call_id"], "call_b");
    assert_eq!(output[2]["input"], "*** Begin Patch\n*** End Patch");
    assert_eq!(response["usage"]["input_tokens"], 20);
    assert_eq!(response["usage"]["total_tokens"], 29);
    let added: Vec<usize> = events
        .iter()
        .filter(|e| e["type"] == "response.output_item.added")
        .map(|e| e["output_index"].as_u64().unwrap() as usize)
        .collect();
    assert_eq!(added, [0, 1, 2]);
}

/// The recorded stream's events, as the proxy's own are compared with them: ids, times and
/// padding are each stream's own.
fn comparable(event: &Value) -> Value {
    let mut event = event.clone();
    fn strip(value: &mut Value) {
        if let Value::Object(object) = value {
            for key in [
                "id",
                "item_id",
                "obfuscation",
                "created_at",
                "response",
                "sequence_number",
                "logprobs",
            ] {
                object.remove(key);
            }
            object.values_mut().for_each(strip);
        }
    }
    strip(&mut event);
    event
}

#[tokio::test]
async fn text_and_function_call_streams_match_openais_recorded_streams_event_by_event() {
    for (recorded, chat_chunks) in [
        (
            "responses/azure-text.1.chunks.txt",
            vec![chunk(json!({"role": "assistant", "content": "Hello"}), None), chunk(json!({}), Some("stop"))],
        ),
        (
            "responses/azure-tool-call.1.chunks.txt",
            [r#"{""#, "location", r#"":""#, "San", " Francisco", r#""}"#]
                .iter()
                .enumerate()
                .map(|(k, piece)| {
                    let mut call = json!({"index": 0, "function": {"arguments": piece}});
                    if k == 0 {
                        call = json!({"index": 0, "id": "call_H5DxLSFnsGhiROnUiDHmgyc8", "type": "function",
                            "function": {"name": "weather", "arguments": piece}});
                    }
                    chunk(json!({"tool_calls": [call]}), None)
                })
                .chain([chunk(json!({}), Some("tool_calls"))])
                .collect(),
        ),
    ] {
        let recorded: Vec<Value> = fixture(recorded)
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        for event in &recorded {
            assert_schema(event_schema(event["type"].as_str().unwrap()), event);
        }
        let (target, proxy) = chat_target_proxy().await;
        let mut chunks = chat_chunks;
        chunks.push("data: [DONE]\n\n".into());
        target.always(Reply::Sse(chunks, SseEnd::Close));
        let text = proxy
            .post_text("/v1/responses", &json!({"model": "gpt-5.1", "input": "x", "stream": true,
                "tools": [{"type": "function", "name": "weather", "parameters": {"type": "object"}}]}))
            .await;
        let ours = events(&text);
        assert_eq!(kinds(&ours), kinds(&recorded));
        for (ours, theirs) in ours.iter().zip(&recorded).skip(2).take(recorded.len() - 3) {
            let mut theirs = comparable(theirs);
            let ours = comparable(ours);
            // The spec's `name` on arguments.done, which the recording predates.
            if let (Some(name), Some(object)) = (ours.get("name"), theirs.as_object_mut()) {
                object.insert("name".into(), name.clone());
            }
            assert_eq!(ours, theirs);
        }
    }
}

#[tokio::test]
async fn a_stored_response_is_continued_fetched_listed_and_deleted() {
    let (target, proxy) = chat_target_proxy().await;
    target.once(completion(
        json!({"role": "assistant", "content": "Nice to meet you, Ada."}),
        "stop",
    ));
    let first = proxy
        .post_json(
            "/v1/responses",
            &json!({"model": "gpt-4.1", "input": "My name is Ada.", "instructions": "Be kind."}),
        )
        .await;
    let id = first["id"].as_str().unwrap();
    target.once(completion(
        json!({"role": "assistant", "content": "Ada."}),
        "stop",
    ));
    let second = proxy
        .post_json(
            "/v1/responses",
            &json!({"model": "gpt-4.1", "input": "What is my name?", "previous_response_id": id}),
        )
        .await;
    assert_eq!(second["previous_response_id"], id);
    // The instructions are not carried over; the conversation is.
    assert_eq!(
        sent_chat(&target)["messages"],
        json!([{"role": "user", "content": "My name is Ada."},
            {"role": "assistant", "content": "Nice to meet you, Ada."},
            {"role": "user", "content": "What is my name?"}])
    );

    let fetched = proxy.get_json(&format!("/v1/responses/{id}")).await;
    assert_eq!(fetched, first);
    let items = proxy
        .get_json(&format!(
            "/v1/responses/{}/input_items",
            second["id"].as_str().unwrap()
        ))
        .await;
    assert_schema("ResponseItemList", &items);
    let texts: Vec<&str> = items["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["content"][0]["text"].as_str().unwrap())
        .collect();
    assert_eq!(
        texts,
        [
            "What is my name?",
            "Nice to meet you, Ada.",
            "My name is Ada."
        ]
    );
    let page = proxy
        .get_json(&format!(
            "/v1/responses/{}/input_items?order=asc&limit=1",
            second["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(page["data"][0]["content"][0]["text"], "My name is Ada.");
    assert_eq!(page["has_more"], true);

    let deleted = proxy
        .http
        .delete(format!("{}/v1/responses/{id}", proxy.url))
        .bearer_auth(ACCESS_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::OK);
    assert_eq!(
        deleted.json::<Value>().await.unwrap(),
        json!({"id": id, "object": "response", "deleted": true})
    );
    let gone = proxy
        .get(&format!("/v1/responses/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);
    assert_envelope(&gone.json().await.unwrap());
    let orphan = proxy
        .post(
            "/v1/responses",
            &json!({"model": "gpt-4.1", "input": "Again?", "previous_response_id": id}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(orphan.status(), StatusCode::BAD_REQUEST);
    let error = orphan.json::<Value>().await.unwrap();
    assert_eq!(
        assert_envelope(&error)["code"],
        "previous_response_not_found"
    );
    assert_eq!(error["error"]["param"], "previous_response_id");
    assert_eq!(
        target.received().len(),
        2,
        "nothing sent for an unknown previous response"
    );
}

#[tokio::test]
async fn a_streamed_response_is_stored_before_its_last_event_and_store_false_keeps_nothing() {
    let proxy = TestProxy::placeholder().await;
    let text = proxy
        .post_text(
            "/v1/responses",
            &json!({"model": "gpt-4.1", "input": "one", "stream": true}),
        )
        .await;
    let events = events(&text);
    let id = final_response(&events)["id"].as_str().unwrap().to_owned();
    let fetched = proxy.get_json(&format!("/v1/responses/{id}")).await;
    assert_eq!(&fetched, final_response(&events));

    let unstored = proxy
        .post_json(
            "/v1/responses",
            &json!({"model": "gpt-4.1", "input": "two", "store": false}),
        )
        .await;
    assert_eq!(unstored["store"], false);
    let response = proxy
        .get(&format!(
            "/v1/responses/{}",
            unstored["id"].as_str().unwrap()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn what_a_chat_target_cannot_do_is_a_400_in_openais_envelope_naming_it() {
    let proxy = TestProxy::placeholder().await;
    for (body, param, words) in [
        (
            json!({"model": "m", "input": "x", "tools": [{"type": "file_search", "vector_store_ids": ["vs_1"]}]}),
            "tools[0].type",
            "'file_search'",
        ),
        (
            json!({"model": "m", "input": "x", "tools": [{"type": "function", "name": "f"}, {"type": "code_interpreter", "container": {"type": "auto"}}]}),
            "tools[1].type",
            "'code_interpreter'",
        ),
        (json!({"input": "x"}), "model", "'model'"),
        (
            json!({"model": "m", "input": [{"type": "item_reference", "id": "msg_1"}]}),
            "input[0]",
            "item references",
        ),
        (
            json!({"model": "m", "input": [{"role": "tool", "content": "x"}]}),
            "input[0].role",
            "'tool'",
        ),
        (
            json!({"model": "m", "input": "x", "background": true}),
            "background",
            "Background",
        ),
    ] {
        let response = proxy.post("/v1/responses", &body).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
        let error = response.json::<Value>().await.unwrap();
        let error = assert_envelope(&error);
        assert_eq!(error["param"], param, "{error}");
        assert!(
            error["message"].as_str().unwrap().contains(words),
            "{error}"
        );
    }
    let response = proxy
        .post_raw("/v1/responses", "{\"model\":")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_envelope(&response.json().await.unwrap());
}

#[tokio::test]
async fn a_stream_the_target_abandons_ends_with_response_failed_and_is_logged_as_failed() {
    let target = MockTarget::start().await;
    // The target falls silent after its first chunk; the proxy's idle limit gives it up.
    let proxy = TestProxy::forwarding(&target.url(), |limits| {
        limits.stream_idle_timeout = std::time::Duration::from_millis(200);
    })
    .await;
    target.always(Reply::Sse(
        vec![chunk(
            json!({"role": "assistant", "content": "Half an ans"}),
            None,
        )],
        SseEnd::Hang,
    ));
    let response = proxy
        .post(
            "/v1/responses",
            &json!({"model": "gpt-4.1", "input": "x", "stream": true}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap();
    let events = events(&text);
    let response = final_response(&events);
    assert_eq!(events.last().unwrap()["type"], "response.failed");
    assert_eq!(response["status"], "failed");
    assert!(
        response["error"]["message"].as_str().unwrap().len() > 5,
        "{response}"
    );
    assert_eq!(response["output"][0]["content"][0]["text"], "Half an ans");
    proxy.handle.state().log().written().await;
    let calls = proxy.get_json("/api/logs/api-calls").await;
    assert!(calls["data"][0]["error"].is_string(), "{calls}");
}

#[tokio::test]
async fn a_target_error_before_the_stream_is_an_http_error_in_openais_envelope() {
    let (target, proxy) = chat_target_proxy().await;
    for (status, stream) in [
        (StatusCode::TOO_MANY_REQUESTS, true),
        (StatusCode::BAD_REQUEST, false),
    ] {
        target.once(Reply::Json(
            status,
            json!({"error": {"message": "Slow down or fix it.", "type": "x", "param": null, "code": null}}).to_string(),
        ));
        let response = proxy
            .post(
                "/v1/responses",
                &json!({"model": "gpt-4.1", "input": "x", "stream": stream}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), status);
        let error = response.json::<Value>().await.unwrap();
        assert_eq!(assert_envelope(&error)["message"], "Slow down or fix it.");
    }
}

#[tokio::test]
async fn an_answer_cut_for_length_is_incomplete_whole_and_streamed() {
    let (target, proxy) = chat_target_proxy().await;
    target.once(completion(
        json!({"role": "assistant", "content": "Once upon"}),
        "length",
    ));
    let whole = proxy
        .post_json(
            "/v1/responses",
            &json!({"model": "gpt-4.1", "input": "Tell a story", "max_output_tokens": 2}),
        )
        .await;
    assert_schema("Response", &whole);
    assert_eq!(whole["status"], "incomplete");
    assert_eq!(
        whole["incomplete_details"],
        json!({"reason": "max_output_tokens"})
    );
    target.once(Reply::Sse(
        vec![
            chunk(json!({"content": "Once upon"}), Some("length")),
            "data: [DONE]\n\n".into(),
        ],
        SseEnd::Close,
    ));
    let text = proxy
        .post_text(
            "/v1/responses",
            &json!({"model": "gpt-4.1", "input": "Tell a story", "stream": true}),
        )
        .await;
    let events = events(&text);
    assert_eq!(events.last().unwrap()["type"], "response.incomplete");
    assert_eq!(
        final_response(&events)["incomplete_details"]["reason"],
        "max_output_tokens"
    );
}

#[tokio::test]
async fn a_translated_call_is_logged_with_its_model_request_response_and_usage() {
    let (target, proxy) = chat_target_proxy().await;
    target.always(Reply::Sse(
        vec![
            chunk(json!({"content": "Hi!"}), Some("stop")),
            usage_chunk(),
            "data: [DONE]\n\n".into(),
        ],
        SseEnd::Close,
    ));
    let body =
        json!({"model": "gpt-4.1", "input": "Hi", "stream": true, "text": {"verbosity": "low"}});
    let text = proxy.post_text("/v1/responses", &body).await;
    let id = final_response(&events(&text))["id"].clone();
    proxy.handle.state().log().written().await;
    let call = &proxy.get_json("/api/logs/api-calls").await["data"][0];
    assert_eq!(call["path"], "/v1/responses");
    assert_eq!(call["model"], "gpt-4.1");
    assert_eq!(call["requestBody"], body);
    assert_eq!(call["responseBody"]["id"], id);
    assert_eq!(
        call["responseBody"]["output"][0]["content"][0]["text"],
        "Hi!"
    );
    assert_eq!(
        call["usage"],
        json!({"promptTokens": 20, "completionTokens": 9, "totalTokens": 29})
    );
    assert_eq!(
        call["normalization"]["request"]["dropped"],
        json!(["text.verbosity"])
    );
    assert!(call["error"].is_null(), "{call}");
}

async fn native_proxy(target: &MockTarget) -> TestProxy {
    TestProxy::speaking(&target.url(), TargetApi::Responses).await
}

/// A recorded stream as its SSE bytes, `event:` lines included.
fn recorded_sse(name: &str) -> Vec<String> {
    fixture(name)
        .lines()
        .map(|line| {
            let event: Value = serde_json::from_str(line).unwrap();
            format!(
                "event: {}\ndata: {line}\n\n",
                event["type"].as_str().unwrap()
            )
        })
        .collect()
}

#[tokio::test]
async fn with_target_api_responses_a_stream_passes_byte_for_byte_and_is_logged_with_its_usage() {
    let target = MockTarget::start().await;
    let proxy = native_proxy(&target).await;
    let sse = recorded_sse("responses/azure-tool-call.1.chunks.txt");
    target.always(Reply::Sse(sse.clone(), SseEnd::Close));
    let body = r#"{"model":"gpt-5.1","input":[{"role":"user","content":"weather?"}],"stream":true,"store":false,
        "include":["reasoning.encrypted_content"],"tools":[{"type":"web_search"}]}"#;
    let response = proxy.post_raw("/v1/responses", body).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.text().await.unwrap(), sse.concat());
    let sent = target.last();
    assert_eq!(sent.path_and_query, "/v1/responses");
    assert_eq!(sent.body, body.as_bytes());
    assert_eq!(
        sent.headers["authorization"],
        format!("Bearer {TARGET_KEY}")
    );
    proxy.handle.state().log().written().await;
    let call = &proxy.get_json("/api/logs/api-calls").await["data"][0];
    assert_eq!(call["model"], "gpt-5.1");
    assert_eq!(call["stream"], true);
    assert_eq!(call["requestBody"]["store"], false);
    assert_eq!(
        call["usage"],
        json!({"promptTokens": 45, "completionTokens": 24, "totalTokens": 69})
    );
    assert_eq!(call["responseBody"]["output"][0]["name"], "weather");
    assert!(call["error"].is_null(), "{call}");
}

#[tokio::test]
async fn a_client_that_leaves_right_after_response_completed_is_logged_as_a_success() {
    let target = MockTarget::start().await;
    let proxy = native_proxy(&target).await;
    // The target keeps the connection open after its last event, as a slow server might.
    target.always(Reply::Sse(
        recorded_sse("responses/azure-text.1.chunks.txt"),
        SseEnd::Hang,
    ));
    let response = proxy
        .post(
            "/v1/responses",
            &json!({"model": "gpt-5.1", "input": "hi", "stream": true}),
        )
        .send()
        .await
        .unwrap();
    let mut body = response.bytes_stream();
    let mut seen = String::new();
    tokio::time::timeout(std::time::Duration::from_secs(10), async {
        use futures_util::StreamExt;
        while !seen.contains("\"type\":\"response.completed\"") {
            seen.push_str(&String::from_utf8_lossy(
                &body.next().await.unwrap().unwrap(),
            ));
        }
    })
    .await
    .unwrap();
    drop(body);
    target.wait_for_stream_drop().await;
    proxy.handle.state().log().written().await;
    let call = &proxy.get_json("/api/logs/api-calls").await["data"][0];
    assert_eq!(call["path"], "/v1/responses");
    assert!(call["error"].is_null(), "{call}");
    assert_eq!(call["usage"]["totalTokens"], 22);
}

#[tokio::test]
async fn with_target_api_responses_the_stored_response_routes_go_to_the_target() {
    let target = MockTarget::start().await;
    let proxy = native_proxy(&target).await;
    target.always(Reply::Json(
        StatusCode::OK,
        json!({"id": "resp_1", "object": "response"}).to_string(),
    ));
    for path in [
        "/v1/responses/resp_1",
        "/v1/responses/resp_1/input_items?limit=5",
    ] {
        let answer = proxy.get_json(path).await;
        assert_eq!(answer["id"], "resp_1");
        assert_eq!(target.last().path_and_query, path);
    }
}

#[tokio::test]
async fn with_log_bodies_off_a_stored_response_continues_in_this_run_and_never_reaches_the_disk() {
    let mut config = config(UpstreamConfig::Placeholder);
    config.logging.bodies = false;
    let database = config.data_dir.join("logs.sqlite3");
    let proxy = TestProxy::start(config).await;
    let first = proxy
        .post_json(
            "/v1/responses",
            &json!({"model": "gpt-4.1", "input": "My secret plan"}),
        )
        .await;
    let id = first["id"].as_str().unwrap();
    let second = proxy
        .post(
            "/v1/responses",
            &json!({"model": "gpt-4.1", "input": "And?", "previous_response_id": id}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(second.status(), StatusCode::OK);
    assert_eq!(
        proxy.get_json(&format!("/v1/responses/{id}")).await["id"],
        id
    );
    proxy.handle.state().log().written().await;
    let db = rusqlite::Connection::open(&database).unwrap();
    let stored: i64 = db
        .query_row("SELECT COUNT(*) FROM responses", [], |row| row.get(0))
        .unwrap();
    assert_eq!(
        stored,
        0,
        "a stored response reached {}",
        database.display()
    );
    let calls: i64 = db
        .query_row("SELECT COUNT(*) FROM api_calls", [], |row| row.get(0))
        .unwrap();
    assert!(calls >= 2, "the calls themselves are logged ({calls})");
}
