//! The typed "already valid" checks held to the full repair: whatever they call valid, the
//! repair would leave unchanged, on recorded bodies and streams and on each field removed,
//! nulled or retyped.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "in tests a failure should panic"
)]

use crate::formats::answer::Stamp;
use proptest::prelude::*;
use serde_json::{Value, json};

use super::RequestContext;
use super::stream::Transcoder;
use crate::formats::sse::Framing;

fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn context(include_usage: bool) -> RequestContext {
    RequestContext {
        model: "requested-model".into(),
        include_usage,
        answer_format: None,
        stamp: Stamp::now(),
    }
}

/// The fast check says "valid" exactly when the full repair pass would change nothing: on the
/// recorded bodies, and on the OpenAI recording with each field removed, nulled or retyped.
#[test]
fn the_fast_path_agrees_with_the_repair_pass() {
    let agree = |body: &[u8], label: &str| {
        let fast = super::is_valid_chat_completion(body);
        let slow = super::chat_changes(body, &context(false))
            .map(|c| c.is_empty())
            .unwrap_or(false);
        assert_eq!(
            fast,
            slow,
            "{label}: fast {fast}, repair needs nothing {slow}: {}",
            String::from_utf8_lossy(body)
        );
    };
    let mut names = vec!["openai/chat-completion.json".to_owned()];
    for entry in std::fs::read_dir(format!(
        "{}/tests/fixtures/formats",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
    {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if name.ends_with(".json") {
            names.push(format!("formats/{name}"));
        }
    }
    for name in &names {
        agree(fixture(name).as_bytes(), name);
    }
    let valid: Value = serde_json::from_str(&fixture("openai/chat-completion.json")).unwrap();
    let paths: [&[&str]; 18] = [
        &["choices", "0"],
        &["choices", "0", "message"],
        &["id"],
        &["object"],
        &["created"],
        &["model"],
        &["choices"],
        &["usage"],
        &["system_fingerprint"],
        &["usage", "total_tokens"],
        &["usage", "prompt_tokens_details"],
        &["usage", "prompt_tokens_details", "cached_tokens"],
        &["usage", "completion_tokens_details"],
        &["choices", "0", "index"],
        &["choices", "0", "logprobs"],
        &["choices", "0", "finish_reason"],
        &["choices", "0", "message", "refusal"],
        &["choices", "0", "message", "content"],
    ];
    for (label, body) in mutations(&valid, &paths) {
        agree(body.to_string().as_bytes(), &label);
    }
}

/// `value` with each of `paths` removed, nulled or given a value of each other kind (and a
/// few that look right in one place and wrong in another), labelled for failure messages.
fn mutations(value: &Value, paths: &[&[&str]]) -> Vec<(String, Value)> {
    let replacements = [
        None,
        Some(Value::Null),
        Some(json!(7)),
        Some(json!(-1.5)),
        Some(json!("")),
        Some(json!("stop")),
        Some(json!("eos")),
        Some(json!("assistant")),
        Some(json!([])),
        Some(json!([{"text": "a"}])),
        Some(json!({})),
        Some(json!({"message": "boom"})),
    ];
    let mut out = Vec::new();
    for path in paths {
        for replacement in &replacements {
            if let Some(changed) = mutated(value, path, replacement.as_ref()) {
                out.push((format!("{path:?} = {replacement:?}"), changed));
            }
        }
    }
    out
}

/// `value` with the field or list item at `path` removed (`None`) or replaced; `None` when
/// the path does not lead anywhere.
fn mutated(value: &Value, path: &[&str], replacement: Option<&Value>) -> Option<Value> {
    let mut out = value.clone();
    let (last, parents) = path.split_last()?;
    let mut node = &mut out;
    for key in parents {
        node = match key.parse::<usize>() {
            Ok(i) => node.get_mut(i)?,
            Err(_) => node.get_mut(*key)?,
        };
    }
    match (node, last.parse::<usize>(), replacement) {
        (Value::Array(items), Ok(i), None) if i < items.len() => {
            items.remove(i);
        }
        (Value::Array(items), Ok(i), Some(new)) if i < items.len() => items[i] = new.clone(),
        (Value::Object(map), _, None) => {
            map.remove(*last);
        }
        (Value::Object(map), _, Some(new)) => {
            map.insert((*last).to_owned(), new.clone());
        }
        _ => return None,
    }
    Some(out)
}

/// The SSE events of a recorded stream, each with its blank line.
fn sse_events(text: &str) -> Vec<String> {
    text.split_inclusive("\n\n")
        .filter(|e| !e.trim().is_empty())
        .map(str::to_owned)
        .collect()
}

/// Feeds `events` to a transcoder with the chunk fast path and to one without, and requires the
/// same output for every event, the same ending and the same notes.
fn streams_agree(events: &[String], label: &str) {
    let mut fast = Transcoder::new(Framing::Sse, &context(true));
    let mut slow = Transcoder::new(Framing::Sse, &context(true)).without_fast_path();
    for event in events {
        assert_eq!(
            fast.event(event.as_bytes()),
            slow.event(event.as_bytes()),
            "{label}: {event}"
        );
    }
    // The closing may carry a usage chunk built from what each one kept (id, created, model).
    assert_eq!(fast.finish(), slow.finish(), "{label}: the ending");
    assert_eq!(
        fast.changes().map(|c| serde_json::to_value(c).unwrap()),
        slow.changes().map(|c| serde_json::to_value(c).unwrap()),
        "{label}: the notes"
    );
}

/// Plain OpenAI chunks skip the JSON tree: the recorded streams and the recorded chunk with
/// each field removed, nulled or retyped must come out exactly as the full repair makes them.
#[test]
fn the_chunk_fast_path_agrees_with_the_full_repair() {
    let recorded = sse_events(&fixture("openai/chat-completion-stream.sse"));
    assert!(
        recorded[1..]
            .iter()
            .filter(|e| !e.contains("[DONE]"))
            .all(|e| super::plain_chunk(e.as_bytes()).is_some()),
        "the recorded chunks take the fast path"
    );
    streams_agree(&recorded, "openai recording");
    // OpenAI-like recordings only: a foreign stream gets a new random id in each transcoder.
    for name in ["azure.sse", "openai-no-done.sse", "llamacpp.sse"] {
        streams_agree(&sse_events(&fixture(&format!("formats/{name}"))), name);
    }

    let chunk: Value =
        serde_json::from_str(recorded[1].trim().strip_prefix("data: ").unwrap()).unwrap();
    let paths: [&[&str]; 17] = [
        &["choices", "0"],
        &["id"],
        &["object"],
        &["created"],
        &["model"],
        &["choices"],
        &["usage"],
        &["error"],
        &["system_fingerprint"],
        &["choices", "0", "index"],
        &["choices", "0", "delta"],
        &["choices", "0", "logprobs"],
        &["choices", "0", "finish_reason"],
        &["choices", "0", "delta", "role"],
        &["choices", "0", "delta", "content"],
        &["choices", "0", "delta", "refusal"],
        &["choices", "0", "delta", "tool_calls"],
    ];
    for (label, mutated) in mutations(&chunk, &paths) {
        // The mutated chunk comes second, once the stream is known to be OpenAI's, and is
        // followed by the rest of the recording.
        let mut events = vec![recorded[0].clone(), format!("data: {mutated}\n\n")];
        events.extend_from_slice(&recorded[1..]);
        streams_agree(&events, &label);
    }
}

include!("../../tests/support/arbitrary_json.rs");

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn any_second_chunk_comes_out_the_same_with_or_without_the_fast_path(event in arbitrary_json()) {
        let first = r#"data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}"#;
        streams_agree(&[format!("{first}\n\n"), format!("data: {event}\n\n")], &event.to_string());
    }
}
