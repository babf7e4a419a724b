//! Dashboard sessions: a browser logs in once with the access token and then holds a session
//! cookie, so the token is not kept in page script.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, header};

pub const SESSION_COOKIE: &str = "llm_proxy_session";
/// How long a dashboard login lasts.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(12 * 3600);

/// Dashboard sessions, in memory: a restart logs everyone out, which is the safe direction.
#[derive(Debug, Default)]
pub struct Sessions {
    active: Mutex<HashMap<String, Instant>>,
}

impl Sessions {
    /// A new session id: 32 random bytes, unrelated to the token.
    pub fn create(&self) -> String {
        let id = crate::ids::random_hex(32);
        let mut active = self.lock();
        let now = Instant::now();
        active.retain(|_, expires| *expires > now);
        active.insert(id.clone(), now + SESSION_LIFETIME);
        id
    }

    pub fn is_valid(&self, id: &str) -> bool {
        self.lock()
            .get(id)
            .is_some_and(|expires| *expires > Instant::now())
    }

    pub fn end(&self, id: &str) {
        self.lock().remove(id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
        self.active
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

pub fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value)
}
