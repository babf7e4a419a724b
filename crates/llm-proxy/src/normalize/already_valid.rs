//! Whether a chat completion body or chunk is already exactly valid, decided by a typed,
//! borrowing parse: building a JSON tree for bodies that nearly always need nothing was most of
//! the proxy's own cost. Anything this check is unsure of goes to `chat::repair`, which decides
//! the same questions; a property test holds the two to agreement.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::formats::raw::{Obj, as_str, is_null, present};
use crate::formats::usage::Usage as TokenUsage;

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
    choices: Vec<Obj<Choice<'a>>>,
    usage: Obj<Usage>,
}

#[derive(Deserialize)]
struct Choice<'a> {
    #[expect(
        dead_code,
        reason = "present and a whole number is all that is checked"
    )]
    index: u64,
    #[serde(borrow)]
    message: Obj<Message<'a>>,
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
    function: Obj<Function<'a>>,
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
struct Usage {
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: u64,
    #[serde(default, deserialize_with = "counts_only")]
    #[expect(
        dead_code,
        reason = "an object of whole numbers is all that is checked"
    )]
    prompt_tokens_details: Option<CountsOnly>,
    #[serde(default, deserialize_with = "counts_only")]
    #[expect(
        dead_code,
        reason = "an object of whole numbers is all that is checked"
    )]
    completion_tokens_details: Option<CountsOnly>,
}

/// Token details: an object of whole numbers, checked as it is read, with no map built.
struct CountsOnly;

/// Token details when the field is there. Repair rewrites anything but an object of whole
/// numbers, `null` included, which a plain `Option` would read as absent.
fn counts_only<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<CountsOnly>, D::Error> {
    CountsOnly::deserialize(deserializer).map(Some)
}

impl<'de> Deserialize<'de> for CountsOnly {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = CountsOnly;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object of whole numbers")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<CountsOnly, A::Error> {
                while map.next_entry::<serde::de::IgnoredAny, u64>()?.is_some() {}
                Ok(CountsOnly)
            }
        }
        deserializer.deserialize_map(Visitor)
    }
}

/// True only when `body` is a chat completion that `chat::repair` would leave untouched.
#[cfg(test)]
pub fn is_valid_chat_completion(body: &[u8]) -> bool {
    valid_chat_completion(body).is_some()
}

/// The token usage of a chat completion that `chat::repair` would leave untouched, `None` for
/// any other body. The request log takes the usage from here rather than parsing the body a
/// second time.
pub fn valid_chat_completion(body: &[u8]) -> Option<TokenUsage> {
    let Obj(chat) = parse::<Obj<Chat<'_>>>(body)?;
    let valid = !chat.id.is_empty()
        && chat.object == "chat.completion"
        && chat
            .system_fingerprint
            .is_none_or(|f| is_null(f) || is_string(f))
        && chat.choices.iter().all(|c| valid_choice(c));
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
    serde_json::from_str::<Vec<Obj<ToolCall<'_>>>>(raw.get())
        .is_ok_and(|calls| !calls.is_empty() && calls.iter().all(|c| valid_call(c)))
}

fn valid_call(call: &ToolCall<'_>) -> bool {
    !call.id.is_empty() && call.kind == "function"
}

/// `T` from JSON bytes, checked for UTF-8 once: from a `&str`, serde_json borrows strings and
/// raw values without checking each of them again (a profile showed those checks at a sixth of
/// the fast path). Bytes that are not UTF-8 are not a valid body either way.
fn parse<'a, T: Deserialize<'a>>(json: &'a [u8]) -> Option<T> {
    serde_json::from_str(std::str::from_utf8(json).ok()?).ok()
}

fn is_string(raw: &RawValue) -> bool {
    raw.get().starts_with('"')
}

/// What the stream transcoder keeps from a chunk that passes unchanged.
pub struct PlainChunk<'a> {
    pub id: Cow<'a, str>,
    pub created: u64,
    pub model: Cow<'a, str>,
    /// A choice carries its finish reason.
    pub finished: bool,
    /// The first choice's text and finish reason, for the stream's assembled answer.
    pub text: Option<Cow<'a, str>>,
    pub finish_reason: Option<&'a str>,
}

#[derive(Deserialize)]
struct Chunk<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(borrow)]
    object: Cow<'a, str>,
    created: u64,
    #[serde(borrow)]
    model: Cow<'a, str>,
    #[serde(default, borrow, deserialize_with = "present")]
    system_fingerprint: Option<&'a RawValue>,
    #[serde(borrow)]
    choices: Vec<Obj<ChunkChoice<'a>>>,
    #[serde(default, borrow, deserialize_with = "present")]
    usage: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    error: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct ChunkChoice<'a> {
    #[expect(
        dead_code,
        reason = "present and a whole number is all that is checked"
    )]
    index: u64,
    #[serde(borrow)]
    delta: Obj<Delta<'a>>,
    #[serde(default, borrow, deserialize_with = "present")]
    finish_reason: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    logprobs: Option<&'a RawValue>,
}

/// Only the fields of plain text deltas: anything else (tool calls, reasoning, audio) fails the
/// parse and takes the full way.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Delta<'a> {
    #[serde(default, borrow, deserialize_with = "present")]
    role: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    content: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    refusal: Option<&'a RawValue>,
}

/// An OpenAI chunk event (one `data:` line) that the transcoder's full repair would pass
/// unchanged, with what the transcoder keeps from it; `None` for anything else, which then
/// takes the full way. The full way builds a JSON tree per event, which a profile showed as
/// most of the proxy's work on a stream; this check borrows and builds nothing. Tool calls,
/// logprobs, usage and error events always take the full way: a stream has few of them.
pub fn plain_chunk(event: &[u8]) -> Option<PlainChunk<'_>> {
    let data = event.strip_prefix(b"data:")?.trim_ascii();
    if !data.starts_with(b"{") || memchr::memchr2(b'\n', b'\r', data).is_some() {
        return None;
    }
    let Obj(chunk) = parse::<Obj<Chunk<'_>>>(data)?;
    let valid = !chunk.id.is_empty()
        && chunk.object == "chat.completion.chunk"
        && !chunk.model.is_empty()
        && chunk
            .system_fingerprint
            .is_none_or(|f| is_null(f) || is_string(f))
        && chunk.usage.is_none_or(is_null)
        && chunk.error.is_none_or(is_null)
        && chunk.choices.iter().all(|c| plain_choice(c));
    if !valid {
        return None;
    }
    let first = chunk.choices.first();
    Some(PlainChunk {
        finished: chunk
            .choices
            .iter()
            .any(|c| c.finish_reason.is_some_and(is_string)),
        text: first.and_then(|c| c.delta.content).and_then(as_str),
        // One of a few plain words (checked above): no escapes to undo.
        finish_reason: first
            .and_then(|c| c.finish_reason)
            .filter(|r| is_string(r))
            .map(|r| r.get().trim_matches('"')),
        id: chunk.id,
        created: chunk.created,
        model: chunk.model,
    })
}

fn plain_choice(choice: &ChunkChoice<'_>) -> bool {
    let delta = &choice.delta;
    choice.finish_reason.is_some_and(|r| {
        matches!(
            r.get(),
            "null" | r#""stop""# | r#""length""# | r#""tool_calls""# | r#""content_filter""#
        )
    }) && choice.logprobs.is_none_or(is_null)
        && delta.role.is_none_or(|r| {
            matches!(
                r.get(),
                r#""developer""# | r#""system""# | r#""user""# | r#""assistant""# | r#""tool""#
            )
        })
        && delta.content.is_none_or(|c| is_null(c) || is_string(c))
        && delta.refusal.is_none_or(|r| is_null(r) || is_string(r))
}
