//! Where the log keeps its calls and events: one trait, with a SQLite implementation
//! (`sqlite.rs`) and an in-memory one (`memory.rs`) for when there is no database.

use serde_json::Value;

use super::ServerEvent;
use super::queries::{CallQuery, EventQuery};
use super::record::ApiCall;

/// A place for calls and events. Written by the log's writer thread alone, read by the
/// dashboard from any thread.
pub trait LogStore: Send + Sync {
    /// Stores a batch of calls and events (their ids given), then applies retention.
    fn write(&self, calls: &[ApiCall], events: &[ServerEvent]) -> Result<(), StoreError>;
    /// Deletes every call and event.
    fn clear(&self) -> Result<(), StoreError>;
    /// The summaries (calls less headers and bodies) that `query` asks for, newest first.
    fn call_summaries(&self, query: &CallQuery) -> Result<Vec<Value>, StoreError>;
    /// The whole calls (headers and bodies too) that `query` asks for, newest first.
    fn calls(&self, query: &CallQuery) -> Result<Vec<ApiCall>, StoreError>;
    fn call(&self, id: i64) -> Result<Option<ApiCall>, StoreError>;
    /// The events `query` asks for, newest first.
    fn events(&self, query: &EventQuery) -> Result<Vec<ServerEvent>, StoreError>;
    /// Keeps a Responses API answer the client asked to store (`record` is its JSON), for
    /// `previous_response_id`; kept as long as calls are.
    fn put_response(&self, id: &str, time_ms: i64, record: &str) -> Result<(), StoreError>;
    fn response(&self, id: &str) -> Result<Option<String>, StoreError>;
    /// Whether there was one to delete.
    fn delete_response(&self, id: &str) -> Result<bool, StoreError>;
}

/// A store that could not do what was asked.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct StoreError(#[from] rusqlite::Error);

/// How many entries a store keeps, and for how long.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    pub max_entries: usize,
    pub max_age_ms: i64,
}
