//! The fast path: whether a chat completion body is already exactly valid, decided by a typed,
//! borrowing parse instead of building a JSON tree. A profile showed the tree costing about
//! 40,000 instructions per request, most of the proxy's own share, for bodies that nearly always
//! need nothing. Anything this check is unsure of goes the slow way (`chat::repair`), which
//! decides the same questions; a property test holds the two to agreement.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::logs::record::Usage as TokenUsage;

#[derive(Deserialize)]
struct Chat<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(borrow)]
    object: Cow<'a, str>,
    #[expect(
        dead_code,
        reason = "present and a whole number is all that is checked"
    )]
    created: u64,
    #[serde(borrow)]
    #[expect(dead_code, reason = "present and a string is all that is checked")]
    model: Cow<'a, str>,
    #[serde(default, borrow, deserialize_with = "present")]
    system_fingerprint: Option<&'a RawValue>,
    #[serde(borrow)]
    choices: Vec<Choice<'a>>,
    usage: Usage<'a>,
}

#[derive(Deserialize)]
struct Choice<'a> {
    #[expect(
        dead_code,
        reason = "present and a whole number is all that is checked"
    )]
    index: u64,
    #[serde(borrow)]
    message: Message<'a>,
    #[serde(default, borrow, deserialize_with = "present")]
    logprobs: Option<&'a RawValue>,
    #[serde(borrow)]
    finish_reason: Cow<'a, str>,
}

#[derive(Deserialize)]
struct Message<'a> {
    #[serde(borrow)]
    role: Cow<'a, str>,
    #[serde(default, borrow, deserialize_with = "present")]
    content: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    refusal: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    annotations: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    function_call: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    tool_calls: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    reasoning: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    reasoning_content: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct ToolCall<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    #[expect(
        dead_code,
        reason = "a complete function object is all that is checked"
    )]
    function: Function<'a>,
}

#[derive(Deserialize)]
struct Function<'a> {
    #[serde(borrow)]
    #[expect(dead_code, reason = "present and a string is all that is checked")]
    name: Cow<'a, str>,
    #[serde(borrow)]
    #[expect(dead_code, reason = "present and a string is all that is checked")]
    arguments: Cow<'a, str>,
}

#[derive(Deserialize)]
struct Usage<'a> {
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: u64,
    #[serde(default, borrow, deserialize_with = "present")]
    prompt_tokens_details: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    completion_tokens_details: Option<&'a RawValue>,
}

/// A field's raw JSON when the field is there, `null` included (plain `Option` would read a
/// null as absent, and repair treats the two differently).
fn present<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(deserializer).map(Some)
}

/// True only when `body` is a chat completion that `chat::repair` would leave untouched.
pub fn is_valid_chat_completion(body: &[u8]) -> bool {
    valid_chat_completion(body).is_some()
}

/// The token usage of a chat completion that `chat::repair` would leave untouched, `None` for
/// any other body. The request log takes the usage from here rather than parsing the body a
/// second time.
pub fn valid_chat_completion(body: &[u8]) -> Option<TokenUsage> {
    let chat = serde_json::from_slice::<Chat<'_>>(body).ok()?;
    let valid = !chat.id.is_empty()
        && chat.object == "chat.completion"
        && chat
            .system_fingerprint
            .is_none_or(|f| is_null(f) || is_string(f))
        && chat.choices.iter().all(valid_choice)
        && [
            chat.usage.prompt_tokens_details,
            chat.usage.completion_tokens_details,
        ]
        .into_iter()
        .flatten()
        .all(counts_only);
    valid.then_some(TokenUsage {
        prompt_tokens: chat.usage.prompt_tokens,
        completion_tokens: chat.usage.completion_tokens,
        total_tokens: chat.usage.total_tokens,
    })
}

fn valid_choice(choice: &Choice<'_>) -> bool {
    let message = &choice.message;
    choice.logprobs.is_some()
        && matches!(choice.finish_reason.as_ref(), "stop" | "length" | "tool_calls" | "content_filter")
        && message.role == "assistant"
        && message.content.is_some_and(|c| is_null(c) || is_string(c))
        && message.refusal.is_some()
        && [message.annotations, message.function_call].into_iter().flatten().all(|v| !is_null(v))
        && message.tool_calls.is_none_or(valid_calls)
        // repair copies `reasoning` into `reasoning_content` when only the former is there.
        && !(message.reasoning.is_some_and(is_string) && message.reasoning_content.is_none())
}

/// A non-empty list of complete function calls (repair removes null and empty lists).
fn valid_calls(raw: &RawValue) -> bool {
    serde_json::from_str::<Vec<ToolCall<'_>>>(raw.get())
        .is_ok_and(|calls| !calls.is_empty() && calls.iter().all(valid_call))
}

fn valid_call(call: &ToolCall<'_>) -> bool {
    !call.id.is_empty() && call.kind == "function"
}

/// Token details must be objects of whole numbers.
fn counts_only(details: &RawValue) -> bool {
    serde_json::from_str::<std::collections::BTreeMap<Cow<'_, str>, u64>>(details.get()).is_ok()
}

fn is_null(raw: &RawValue) -> bool {
    raw.get() == "null"
}

fn is_string(raw: &RawValue) -> bool {
    raw.get().starts_with('"')
}
