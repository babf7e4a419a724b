//! Property tests of the translation layer: generated valid chat requests, written for each
//! `TARGET_API`, pass that API's strict validation (the mock targets' own rules); generated
//! answers of each format come back as valid OpenAI chat completions.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "in tests a failure should panic"
)]

mod common;

use bytes::Bytes;
use common::assert_schema;
use llm_proxy::config::TargetApi;
use llm_proxy::formats::answer::Stamp;
use llm_proxy::formats::chat_for_target;
use llm_proxy::normalize::{Expected, RequestContext, response, response_value};
use proptest::prelude::*;
use serde_json::{Value, json};

const TOOLS: [&str; 3] = ["weather", "search", "read_file"];

/// Text with something to say: APIs refuse text of nothing but whitespace, and the proxy
/// leaves such text out.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z][a-zA-Z ,.?!]{0,40}",
        "\\PC{0,10}[a-z]\\PC{0,10}",
        Just("quote \" and \\ and\nnewline".to_owned()),
    ]
}

fn arguments() -> impl Strategy<Value = Value> {
    prop::collection::btree_map(
        "[a-z]{1,8}",
        prop_oneof![
            text().prop_map(Value::from),
            any::<i32>().prop_map(Value::from),
            any::<bool>().prop_map(Value::from),
        ],
        0..3,
    )
    .prop_map(|map| Value::Object(map.into_iter().collect()))
}

fn user_message() -> impl Strategy<Value = Value> {
    prop_oneof![
        text().prop_map(|t| json!({"role": "user", "content": t})),
        (text(), any::<bool>()).prop_map(|(t, image)| {
            let mut parts = vec![json!({"type": "text", "text": t})];
            if image {
                parts.push(json!({"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}));
            }
            json!({"role": "user", "content": parts})
        }),
    ]
}

/// One exchange after a user message: an assistant's text, or its tool calls and their
/// results (in any order), maybe followed by the assistant's text about them.
fn exchange(turn: usize) -> impl Strategy<Value = Vec<Value>> {
    let calls = prop::collection::vec((0..TOOLS.len(), arguments(), text()), 1..4);
    prop_oneof![
        text().prop_map(|t| vec![json!({"role": "assistant", "content": t})]),
        (calls, any::<bool>(), any::<bool>(), text()).prop_map(move |(calls, reverse, with_text, said)| {
            let ids: Vec<String> = (0..calls.len()).map(|k| format!("call_{turn}_{k}")).collect();
            let tool_calls: Vec<Value> = calls
                .iter()
                .zip(&ids)
                .map(|((tool, args, _), id)| json!({"id": id, "type": "function",
                    "function": {"name": TOOLS[*tool], "arguments": args.to_string()}}))
                .collect();
            let mut messages = vec![json!({"role": "assistant", "content": null, "tool_calls": tool_calls})];
            let mut results: Vec<Value> = calls
                .iter()
                .zip(&ids)
                .map(|((_, _, result), id)| json!({"role": "tool", "tool_call_id": id, "content": result}))
                .collect();
            if reverse {
                results.reverse();
            }
            messages.extend(results);
            if with_text {
                messages.push(json!({"role": "assistant", "content": said}));
            }
            messages
        }),
    ]
}

/// A valid chat request: an optional system prompt, turns of user messages and exchanges,
/// ending with the user's (or tool results'), tools, and common parameters.
fn chat_request() -> impl Strategy<Value = Value> {
    let turns =
        prop::collection::vec((user_message(), any::<bool>()), 1..4).prop_flat_map(|turns| {
            let n = turns.len();
            let exchanges: Vec<_> = (0..n).map(exchange).collect();
            (Just(turns), exchanges)
        });
    (
        prop::option::of(text()),
        turns,
        any::<bool>(),
        prop::option::of(0.0..1.0f64),
        prop::option::of(1..4096u64),
        prop::option::of(prop::collection::vec("[A-Z]{1,5}", 1..4)),
        any::<bool>(),
        prop_oneof![Just(None), Just(Some(json!("auto"))), Just(Some(json!("none")))],
    )
        .prop_map(|(system, (turns, exchanges), end_with_results, temperature, max_tokens, stop, stream, choice)| {
            let mut messages = Vec::new();
            if let Some(system) = system {
                messages.push(json!({"role": "system", "content": system}));
            }
            let last = turns.len() - 1;
            for (i, ((user, answered), exchange)) in turns.into_iter().zip(exchanges).enumerate() {
                messages.push(user);
                // The request ends with the user's turn, or with tool results when the last
                // exchange is tool calls cut after their results.
                if i < last && answered {
                    messages.extend(exchange);
                } else if i == last && end_with_results && exchange.len() > 1 {
                    let results_end = exchange
                        .iter()
                        .rposition(|m| m["role"] == "tool")
                        .map_or(0, |p| p + 1);
                    messages.extend(exchange.into_iter().take(results_end));
                }
            }
            let tools: Vec<Value> = TOOLS
                .iter()
                .map(|name| json!({"type": "function", "function": {"name": name, "description": format!("The {name} tool"),
                    "parameters": {"type": "object", "properties": {"q": {"type": "string"}}, "additionalProperties": false}}}))
                .collect();
            let mut request = json!({"model": "llama3.2", "messages": messages, "tools": tools, "stream": stream});
            for (name, value) in [
                ("temperature", temperature.map(Value::from)),
                ("max_tokens", max_tokens.map(Value::from)),
                ("stop", stop.map(Value::from)),
                ("tool_choice", choice),
            ] {
                if let Some(value) = value {
                    request[name] = value;
                }
            }
            request
        })
}

fn translated(api: TargetApi, request: &Value) -> Value {
    let body = serde_json::to_vec(request).unwrap();
    let translated = chat_for_target(api, &body)
        .unwrap_or_else(|e| panic!("{api:?} refused {request:#}: {e}"))
        .expect("a foreign API translates");
    serde_json::from_slice(&translated.body).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn every_valid_chat_request_written_for_anthropic_passes_its_validation(request in chat_request()) {
        let body = translated(TargetApi::Anthropic, &request);
        prop_assert!(common::anthropic::validate_request(&body).is_ok(),
            "{:?}\n{body:#}", common::anthropic::validate_request(&body));
    }

    #[test]
    fn every_valid_chat_request_written_for_gemini_passes_its_validation(request in chat_request()) {
        let body = translated(TargetApi::Gemini, &request);
        prop_assert!(common::gemini::validate_request(&body).is_ok(),
            "{:?}\n{body:#}", common::gemini::validate_request(&body));
    }

    #[test]
    fn every_valid_chat_request_written_for_ollama_passes_its_validation(request in chat_request()) {
        let body = translated(TargetApi::Ollama, &request);
        let checked = common::ollama::decode_chat_request(&body)
            .and_then(|()| common::ollama::check_chat_request(&body).map(|_| ()).map_err(|(_, m)| m));
        prop_assert!(checked.is_ok(), "{checked:?}\n{body:#}");
        prop_assert!(common::ollama::ignored_fields(&body).is_empty(), "{body:#}");
    }

    #[test]
    fn every_generated_anthropic_answer_comes_back_as_a_valid_chat_completion(
        blocks in prop::collection::vec(prop_oneof![
            text().prop_map(|t| json!({"type": "text", "text": t})),
            text().prop_map(|t| json!({"type": "thinking", "thinking": t, "signature": "sig"})),
            (0..TOOLS.len(), arguments()).prop_map(|(tool, input)| json!({"type": "tool_use", "id": "toolu_01", "name": TOOLS[tool], "input": input})),
        ], 0..4),
        stop in prop_oneof![Just("end_turn"), Just("max_tokens"), Just("tool_use"), Just("stop_sequence"), Just("refusal")],
        input_tokens in 0..100_000u64,
        output_tokens in 0..10_000u64,
        cached in prop::option::of(0..10_000u64),
    ) {
        let answer = json!({"id": "msg_01", "type": "message", "role": "assistant", "model": "claude",
            "content": blocks, "stop_reason": stop, "stop_sequence": null,
            "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens, "cache_read_input_tokens": cached}});
        let completion = normalized(&answer);
        prop_assert_eq!(&completion["usage"]["prompt_tokens"], &json!(input_tokens + cached.unwrap_or(0)));
        prop_assert_eq!(comparable(completion.clone()), comparable(generally_normalized(&answer)));
        let texts: String = blocks_of(&answer, "text");
        prop_assert_eq!(completion["choices"][0]["message"]["content"].as_str().unwrap_or_default(), texts);
    }

    #[test]
    fn every_generated_gemini_answer_comes_back_as_a_valid_chat_completion(
        parts in prop::collection::vec(prop_oneof![
            text().prop_map(|t| json!({"text": t})),
            text().prop_map(|t| json!({"text": t, "thought": true})),
            (0..TOOLS.len(), arguments()).prop_map(|(tool, args)| json!({"functionCall": {"name": TOOLS[tool], "args": args}})),
        ], 1..4),
        finish in prop_oneof![Just("STOP"), Just("MAX_TOKENS"), Just("SAFETY"), Just("RECITATION")],
        prompt_tokens in 0..100_000u64,
    ) {
        let answer = json!({"candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": finish, "index": 0}],
            "usageMetadata": {"promptTokenCount": prompt_tokens, "candidatesTokenCount": 3, "totalTokenCount": prompt_tokens + 3},
            "modelVersion": "gemini-2.5-flash", "responseId": "r1"});
        let completion = normalized(&answer);
        prop_assert_eq!(&completion["usage"]["prompt_tokens"], &json!(prompt_tokens));
    }

    #[test]
    fn every_generated_ollama_answer_comes_back_as_a_valid_chat_completion(
        content in text(),
        calls in prop::collection::vec((0..TOOLS.len(), arguments()), 0..3),
        done_reason in prop_oneof![Just("stop"), Just("length")],
    ) {
        let tool_calls: Vec<Value> = calls.iter().map(|(tool, args)| json!({"function": {"name": TOOLS[*tool], "arguments": args}})).collect();
        let answer = json!({"model": "llama3.2", "created_at": "2025-05-01T10:00:00.123456789Z",
            "message": {"role": "assistant", "content": content, "tool_calls": tool_calls},
            "done": true, "done_reason": done_reason, "prompt_eval_count": 9, "eval_count": 4});
        let completion = normalized(&answer);
        let finish = &completion["choices"][0]["finish_reason"];
        if calls.is_empty() {
            prop_assert_eq!(finish, &json!(if done_reason == "length" { "length" } else { "stop" }));
        } else {
            prop_assert_eq!(finish, &json!("tool_calls"));
        }
    }
}

/// `answer` through the general reading (a JSON tree), which typed fast readings must agree with.
fn generally_normalized(answer: &Value) -> Value {
    let context = RequestContext {
        model: "m".to_owned(),
        include_usage: false,
        answer_format: None,
        stamp: Stamp::now(),
    };
    let body = serde_json::to_vec(answer).unwrap();
    response_value(&body, Expected::ChatCompletion, &context)
        .unwrap()
        .0
}

/// A completion without what differs by design between two readings: the time, and how tool
/// arguments are spelled (the same JSON, maybe in another order).
fn comparable(mut completion: Value) -> Value {
    completion["created"] = Value::Null;
    for call in completion["choices"][0]["message"]["tool_calls"]
        .as_array_mut()
        .into_iter()
        .flatten()
    {
        let arguments: Value =
            serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
        call["function"]["arguments"] = arguments;
    }
    completion
}

/// `answer` through the proxy's normalization, checked against OpenAI's schema.
fn normalized(answer: &Value) -> Value {
    let context = RequestContext {
        model: "m".to_owned(),
        include_usage: false,
        answer_format: None,
        stamp: Stamp::now(),
    };
    let body = Bytes::from(serde_json::to_vec(answer).unwrap());
    let normalized = response(&body, Expected::ChatCompletion, &context).unwrap();
    let completion: Value = serde_json::from_slice(&normalized.body).unwrap();
    assert_schema("CreateChatCompletionResponse", &completion);
    completion
}

fn blocks_of(answer: &Value, kind: &str) -> String {
    answer["content"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["type"] == kind)
        .filter_map(|b| b["text"].as_str())
        .collect()
}

#[test]
fn recorded_anthropic_answers_read_typed_agree_with_the_general_reading() {
    for path in [
        "tests/fixtures/formats/anthropic.json",
        "tests/fixtures/anthropic/text.json",
        "tests/fixtures/anthropic/tool-use.json",
    ] {
        let body = std::fs::read(path).unwrap();
        let (typed, _) = llm_proxy::formats::anthropic::answer_bytes(&body, &Stamp::now())
            .unwrap_or_else(|| panic!("{path} is not read the typed way"));
        let typed: Value = serde_json::from_slice(&typed).unwrap();
        assert_schema("CreateChatCompletionResponse", &typed);
        let answer: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            comparable(typed),
            comparable(generally_normalized(&answer)),
            "{path}"
        );
        let context = RequestContext {
            model: "m".to_owned(),
            include_usage: false,
            answer_format: None,
            stamp: Stamp::now(),
        };
        let noted = response(
            &Bytes::from(body.clone()),
            Expected::ChatCompletion,
            &context,
        )
        .unwrap()
        .changes;
        let general = response_value(&body, Expected::ChatCompletion, &context)
            .unwrap()
            .1;
        assert_eq!(noted, Some(general), "{path}: the log's notes differ");
    }
}
