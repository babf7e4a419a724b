//! OpenAI's Responses API as clients speak it (Codex CLI, the SDKs' `responses`, the Agents
//! SDK): a request read into the canonical chat request, and a chat completion or chat stream
//! written back as a Response object or its event stream.

pub mod events;
pub mod object;
pub mod request;

pub use self::object::{Echo, Skeleton, State, ToolNames, response_from_completion};
pub use self::request::{ChatForm, ResponsesRequest, chat_request};

/// The built-in tools OpenAI runs itself: a chat target has nothing to run them with.
pub const BUILT_IN_TOOLS: [&str; 12] = [
    "web_search",
    "web_search_preview",
    "web_search_preview_2025_03_11",
    "file_search",
    "code_interpreter",
    "computer_use",
    "computer_use_preview",
    "image_generation",
    "mcp",
    "local_shell",
    "shell",
    "apply_patch",
];

/// An output item's id: the kind's prefix (`msg`, `fc`, `ctc`, `rs`), the answer's own random
/// part, and its place in the output.
pub fn item_id(prefix: &str, suffix: &str, index: usize) -> String {
    format!("{prefix}_{suffix}{index:02}")
}
