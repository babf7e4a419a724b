//! What the dashboard asks the log for: a page of calls, a page of events.

use super::Level;
use super::ServerEvent;
use super::record::ApiCall;

/// A page of `GET /api/logs/api-calls`: newest first, `before` an id to continue from.
#[derive(Debug, Clone, Default)]
pub struct CallQuery {
    pub limit: usize,
    pub before: Option<i64>,
    pub model: Option<String>,
    /// `2xx`, `4xx`, `5xx`...
    pub status_class: Option<u16>,
    pub text: Option<String>,
}

impl CallQuery {
    pub(super) fn status_range(&self) -> Option<(u16, u16)> {
        self.status_class
            .map(|class| (class * 100, class * 100 + 99))
    }

    /// Whether `call` is one this query asks for (the in-memory store's filter; SQLite's is
    /// its `WHERE`).
    pub(super) fn matches(&self, call: &ApiCall) -> bool {
        let text_matches = |text: &str| {
            let needle = text.to_lowercase();
            [
                Some(call.path.as_str()),
                call.model.as_deref(),
                call.error.as_deref(),
                call.request_body.as_deref(),
                call.response_body.as_deref(),
            ]
            .into_iter()
            .flatten()
            .any(|field| field.to_lowercase().contains(&needle))
        };
        self.before.is_none_or(|before| call.id < before)
            && self
                .model
                .as_ref()
                .is_none_or(|m| call.model.as_ref() == Some(m))
            && self
                .status_range()
                .is_none_or(|(low, high)| (low..=high).contains(&call.status))
            && self.text.as_deref().is_none_or(text_matches)
    }
}

/// A page of `GET /api/logs/server-events`: newest first, at `min_level` or above.
#[derive(Debug, Clone)]
pub struct EventQuery {
    pub limit: usize,
    pub min_level: Level,
}

impl EventQuery {
    pub(super) fn matches(&self, event: &ServerEvent) -> bool {
        event.level >= self.min_level
    }
}
