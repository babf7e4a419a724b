//! A chat request's prompt tokens counted with OpenAI's tokenizer (`o200k_base`, tiktoken's
//! own tables): exact for OpenAI's current models, an estimate for others, never a guess.

use serde_json::Value;
use tiktoken_rs::{CoreBPE, o200k_base_singleton};

/// What OpenAI's chat format adds around each message, and to prime the reply.
const PER_MESSAGE: u64 = 3;
const REPLY_PRIMING: u64 = 3;
/// An image at its smallest (low detail); larger ones cost more by their size, unknown here.
const IMAGE_MINIMUM: u64 = 85;

/// The prompt tokens of a chat request: its messages as OpenAI frames them, and its tools.
pub fn chat_prompt_tokens(chat: &Value) -> u64 {
    let bpe = o200k_base_singleton();
    let mut tokens = REPLY_PRIMING;
    for message in chat["messages"].as_array().into_iter().flatten() {
        tokens += PER_MESSAGE;
        tokens += text_tokens(bpe, message["role"].as_str().unwrap_or_default());
        match &message["content"] {
            Value::String(text) => tokens += text_tokens(bpe, text),
            Value::Array(parts) => {
                for part in parts {
                    tokens += match part["type"].as_str() {
                        Some("text") => text_tokens(bpe, part["text"].as_str().unwrap_or_default()),
                        Some("image_url") => IMAGE_MINIMUM,
                        _ => text_tokens(bpe, &part.to_string()),
                    };
                }
            }
            _ => {}
        }
        for key in ["tool_calls", "reasoning_content"] {
            if let Some(value) = message.get(key).filter(|v| !v.is_null()) {
                tokens += match value {
                    Value::String(text) => text_tokens(bpe, text),
                    other => text_tokens(bpe, &other.to_string()),
                };
            }
        }
        if let Some(id) = message["tool_call_id"].as_str() {
            tokens += text_tokens(bpe, id);
        }
    }
    if let Some(tools) = chat.get("tools").filter(|t| !t.is_null()) {
        tokens += text_tokens(bpe, &tools.to_string());
    }
    tokens
}

fn text_tokens(bpe: &CoreBPE, text: &str) -> u64 {
    bpe.encode_with_special_tokens(text).len() as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_chat_request_is_counted_as_openai_frames_it() {
        // "Hello" is one token, "user" one; 3 around the message and 3 for the reply.
        let hello = json!({"messages": [{"role": "user", "content": "Hello"}]});
        assert_eq!(chat_prompt_tokens(&hello), 3 + 3 + 1 + 1);
        let longer =
            json!({"messages": [{"role": "user", "content": "Hello there, how are you today?"}]});
        assert!(chat_prompt_tokens(&longer) > chat_prompt_tokens(&hello));
        let with_tools = json!({"messages": [{"role": "user", "content": "Hello"}],
            "tools": [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}]});
        assert!(chat_prompt_tokens(&with_tools) > chat_prompt_tokens(&hello));
    }
}
