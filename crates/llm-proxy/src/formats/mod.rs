//! Facts of the API formats, below every layer that speaks them: OpenAI's error envelope, its
//! event streams, token usage, the chat request every translation starts from, and requests
//! written for targets that speak another API.

pub mod anthropic;
pub mod chat;
pub mod chat_stream;
pub mod openai;
pub mod raw;
pub mod sse;
pub mod usage;

use crate::config::TargetApi;

/// A chat completion request as a target of `api` takes it: `None` when it goes as the client
/// sent it, else its path after `/v1`, its body and the hints it dropped.
pub fn chat_for_target(
    api: TargetApi,
    body: &[u8],
) -> Result<Option<anthropic::Translated>, chat::Untranslatable> {
    match api {
        TargetApi::OpenAi => Ok(None),
        TargetApi::Anthropic => {
            let chat: chat::ChatRequest =
                serde_json::from_slice(body).map_err(|e| chat::Untranslatable::unreadable(&e))?;
            anthropic::request(chat).map(Some)
        }
    }
}
