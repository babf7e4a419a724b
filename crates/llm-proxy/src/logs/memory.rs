//! The log in memory: the newest entries, for when the database cannot be opened or written.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};

use serde_json::Value;

use super::ServerEvent;
use super::queries::{CallQuery, EventQuery};
use super::record::ApiCall;
use super::store::{LogStore, StoreError};

/// Entries kept at most: a call holds its bodies (up to 256 KB each).
pub const MEMORY_ENTRIES: usize = 1000;

pub struct MemoryStore {
    calls: Mutex<VecDeque<ApiCall>>,
    events: Mutex<VecDeque<ServerEvent>>,
    /// Stored Responses API answers, oldest first.
    responses: Mutex<VecDeque<(String, String)>>,
    cap: usize,
}

impl MemoryStore {
    /// Keeps the newest `max_entries` of each, and never more than [`MEMORY_ENTRIES`].
    pub fn new(max_entries: usize) -> Self {
        Self {
            calls: Mutex::default(),
            events: Mutex::default(),
            responses: Mutex::default(),
            cap: max_entries.min(MEMORY_ENTRIES),
        }
    }
}

impl LogStore for MemoryStore {
    fn write(&self, calls: &[ApiCall], events: &[ServerEvent]) -> Result<(), StoreError> {
        keep_newest(&mut lock(&self.calls), calls, self.cap);
        keep_newest(&mut lock(&self.events), events, self.cap);
        Ok(())
    }

    fn clear(&self) -> Result<(), StoreError> {
        lock(&self.calls).clear();
        lock(&self.events).clear();
        lock(&self.responses).clear();
        Ok(())
    }

    fn call_summaries(&self, query: &CallQuery) -> Result<Vec<Value>, StoreError> {
        Ok(lock(&self.calls)
            .iter()
            .rev()
            .filter(|c| query.matches(c))
            .take(query.limit)
            .map(ApiCall::summary)
            .collect())
    }

    fn calls(&self, query: &CallQuery) -> Result<Vec<ApiCall>, StoreError> {
        Ok(lock(&self.calls)
            .iter()
            .rev()
            .filter(|c| query.matches(c))
            .take(query.limit)
            .cloned()
            .collect())
    }

    fn call(&self, id: i64) -> Result<Option<ApiCall>, StoreError> {
        Ok(lock(&self.calls).iter().find(|c| c.id == id).cloned())
    }

    fn events(&self, query: &EventQuery) -> Result<Vec<ServerEvent>, StoreError> {
        Ok(lock(&self.events)
            .iter()
            .rev()
            .filter(|e| query.matches(e))
            .take(query.limit)
            .cloned()
            .collect())
    }

    fn put_response(&self, id: &str, _time_ms: i64, record: &str) -> Result<(), StoreError> {
        let mut responses = lock(&self.responses);
        responses.retain(|(kept, _)| kept != id);
        keep_newest(
            &mut responses,
            &[(id.to_owned(), record.to_owned())],
            self.cap,
        );
        Ok(())
    }

    fn response(&self, id: &str) -> Result<Option<String>, StoreError> {
        Ok(lock(&self.responses)
            .iter()
            .find(|(kept, _)| kept == id)
            .map(|(_, record)| record.clone()))
    }

    fn delete_response(&self, id: &str) -> Result<bool, StoreError> {
        let mut responses = lock(&self.responses);
        let before = responses.len();
        responses.retain(|(kept, _)| kept != id);
        Ok(responses.len() < before)
    }
}

/// Appends `items`, dropping the oldest past `cap`.
fn keep_newest<T: Clone>(kept: &mut VecDeque<T>, items: &[T], cap: usize) {
    for item in items {
        kept.push_back(item.clone());
        if kept.len() > cap {
            kept.pop_front();
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing panics while holding these locks; if something did, the data is still usable.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
