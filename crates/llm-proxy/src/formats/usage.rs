//! Token usage as OpenAI reports it, and the estimate used where a target does not say.

use serde::Serialize;
use serde_json::Value;

/// A call's tokens, as OpenAI's `usage` reports them.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
}

/// The `usage` of an OpenAI response or chunk, if it has one.
pub fn usage_of(value: &Value) -> Option<Usage> {
    let usage = value.get("usage")?;
    // Chat completions' names, or the Responses and Messages APIs'.
    let prompt = usage
        .get("prompt_tokens")
        .or_else(|| usage.get("input_tokens"))
        .and_then(Value::as_u64)?;
    let completion = usage
        .get("completion_tokens")
        .or_else(|| usage.get("output_tokens"))
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let total = usage
        .get("total_tokens")
        .and_then(Value::as_u64)
        .unwrap_or(prompt + completion);
    Some(Usage {
        prompt_tokens: prompt,
        completion_tokens: completion,
        total_tokens: total,
    })
}

/// About four characters a token (OpenAI's rule of thumb): used only where the target did not
/// say, never zero for text that is not empty.
pub fn estimate_tokens(chars: usize) -> u64 {
    (chars as u64).div_ceil(4)
}
