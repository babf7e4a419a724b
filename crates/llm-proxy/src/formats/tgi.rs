//! Hugging Face Text Generation Inference (`/generate`): its answers and streams read as OpenAI's.

use serde_json::Value;

use crate::formats::answer::{Event, Stamp, completion, finish_reason, message, usage};

/// A `/generate` answer (an object, or a list of one) as a chat completion.
pub fn answer(v: &Value, stamp: &Stamp) -> Value {
    let one = if v.is_array() { &v[0] } else { v };
    let details = &one["details"];
    let usage = usage(
        details["prefill"]
            .as_array()
            .map(|p| p.len() as u64)
            .filter(|n| *n > 0),
        details["generated_tokens"].as_u64(),
    );
    let text = one["generated_text"].as_str().map(str::to_owned);
    completion(
        None,
        None,
        message(text, vec![], None),
        finish_reason(details["finish_reason"].as_str().unwrap_or("stop")),
        usage,
        stamp,
    )
}

/// One event of a `/generate_stream` stream, in the canonical terms.
pub fn stream_event<'a>(value: &'a Value, emit: &mut impl FnMut(Event<'a>)) {
    if let Some(message) = value["error"].as_str() {
        emit(Event::Error(message));
        return;
    }
    let token = &value["token"];
    if token["special"] != true {
        emit(Event::Text(token["text"].as_str().unwrap_or_default()));
    }
    let details = &value["details"];
    if details.is_object() {
        emit(Event::Usage {
            prompt: None,
            completion: details["generated_tokens"].as_u64(),
        });
        emit(Event::Finish(
            details["finish_reason"].as_str().unwrap_or("stop"),
        ));
    }
}
