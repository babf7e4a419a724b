//! Anthropic's Messages API, both ways: as a target (`target`: chat requests written as
//! Messages requests for `TARGET_API=anthropic`, its answers, streams and errors read back) and
//! as clients speak it (`client`: Messages requests read into the canonical chat request, chat
//! answers written back as Messages).

pub mod client;
pub mod events;
mod target;

pub use target::*;
