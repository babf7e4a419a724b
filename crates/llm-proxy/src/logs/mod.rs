//! The request log and server events: captured on the request path without waiting, written
//! by one thread in batches to a store (SQLite, or memory when there is no database), served to
//! the dashboard, and streamed live.
//!
//! Nothing here can slow or fail a request. Records go through a bounded queue: when it is full
//! they are dropped and counted. When the database cannot be opened or written, the proxy keeps
//! serving, the log keeps its recent entries in memory, and `/health` says what went wrong.
//! Every call is counted in the statistics and metrics, whether or not calls are kept
//! (`LOG_REQUESTS`) and whether or not the queue had room for its record.

pub mod compact;
mod memory;
mod queries;
pub mod record;
mod sqlite;
mod store;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use serde::Serialize;
use serde_json::Value;
use tokio::sync::{broadcast, oneshot};

pub use self::queries::{CallQuery, EventQuery};
use self::record::{ApiCall, BodyPolicy, CallCapture, unix_ms};
use self::store::Retention;
pub use self::store::{LogStore, StoreError};
use crate::config::LogConfig;
use crate::metrics::Metrics;
use crate::stats::Stats;

/// Records waiting for the writer. Beyond this the request path drops records rather than wait.
const QUEUE_CAPACITY: usize = 8192;
/// Body bytes the records queued or being written may hold. Beyond this a call is queued
/// without its bodies (still recorded and counted), so a burst of large prompts faster than
/// the disk cannot hold them all in memory.
const QUEUE_BODY_BYTES: usize = 32 * 1024 * 1024;
const DATABASE_FILE: &str = "logs.sqlite3";

/// The policy for a call counted but not stored: nothing is made that only storing needs.
const COUNT_ONLY: BodyPolicy = BodyPolicy {
    keep: false,
    max_bytes: 0,
    stored: false,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

impl Level {
    pub const ALL: [Level; 4] = [Level::Debug, Level::Info, Level::Warn, Level::Error];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Debug => "debug",
            Self::Info => "info",
            Self::Warn => "warn",
            Self::Error => "error",
        }
    }

    pub fn parse(text: &str) -> Self {
        match text.to_ascii_lowercase().as_str() {
            "debug" => Self::Debug,
            "warn" | "warning" => Self::Warn,
            "error" => Self::Error,
            _ => Self::Info,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ServerEvent {
    pub id: i64,
    /// Unix milliseconds.
    pub time: i64,
    pub level: Level,
    pub message: String,
}

impl Serialize for ServerEvent {
    /// Ours, then the original project's names: its `timestamp`, and `details`, which our
    /// events put in their message.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Entry<'a> {
            id: i64,
            time: i64,
            level: Level,
            message: &'a str,
            timestamp: String,
            details: Option<()>,
        }
        Entry {
            id: self.id,
            time: self.time,
            level: self.level,
            message: &self.message,
            timestamp: record::iso_timestamp(self.time),
            details: None,
        }
        .serialize(serializer)
    }
}

/// Whether the database is in use, and why not.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StoreHealth {
    pub ok: bool,
    pub path: PathBuf,
    pub error: Option<String>,
    pub dropped_records: u64,
}

/// Something new, for `GET /api/events`.
#[derive(Debug, Clone)]
pub enum Live {
    Call(Arc<Value>),
    Event(Arc<ServerEvent>),
    Cleared,
}

enum Message {
    /// A call and the body bytes it holds against [`QUEUE_BODY_BYTES`].
    Call(Box<CallCapture>, usize),
    Event(Level, String, SystemTime),
    Clear(oneshot::Sender<()>),
    /// Answered once everything queued before it has been written and counted.
    Written(oneshot::Sender<()>),
    Stop,
}

/// The log. Cheap to clone; all clones share one writer.
#[derive(Clone)]
pub struct Log {
    state: Arc<LogState>,
}

/// What the request path, the writer and the readers share.
struct LogState {
    queue: SyncSender<Message>,
    dropped: AtomicU64,
    /// Body bytes of the calls queued or being written.
    queued_body_bytes: AtomicUsize,
    /// Where calls and events are kept; replaced by memory if the database fails.
    store: Mutex<Arc<dyn LogStore>>,
    /// Where stored Responses API answers are kept when prompts must not reach the disk
    /// (`LOG_BODIES=false` or `LOG_REQUESTS=false`): memory, for this run only.
    responses_in_memory: Option<Arc<memory::MemoryStore>>,
    health: Mutex<StoreHealth>,
    live: broadcast::Sender<Live>,
    metrics: Arc<Metrics>,
    /// Its own lock: a call the full queue dropped is counted on the request path.
    stats: Mutex<Stats>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl LogState {
    /// Counts a call in the statistics and metrics.
    fn count(&self, call: &ApiCall) {
        lock(&self.stats).record(call.sample());
        self.metrics.observe(call.observed());
    }
}

impl std::fmt::Debug for Log {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Log").finish_non_exhaustive()
    }
}

impl Log {
    /// Opens (creating and migrating) the database in `data_dir` and starts the writer. Never
    /// fails: a database that cannot be opened leaves the log in memory, and says so.
    pub fn open(data_dir: &Path, config: &LogConfig, metrics: Arc<Metrics>) -> Self {
        let path = data_dir.join(DATABASE_FILE);
        let retention = Retention {
            max_entries: config.max_entries,
            max_age_ms: config.max_age.as_millis() as i64,
        };
        let opened = std::fs::create_dir_all(data_dir)
            .map_err(|e| format!("cannot create {}: {e}", data_dir.display()))
            .and_then(|()| {
                sqlite::SqliteStore::open(&path, retention)
                    .map_err(|e| format!("cannot open {}: {e}", path.display()))
            });
        let mut stats = Stats::default();
        let (store, ids, error): (Arc<dyn LogStore>, _, _) = match opened {
            Ok(sqlite) => {
                let day_ago = unix_ms(SystemTime::now()) - 24 * 3600 * 1000;
                // A read that fails leaves the statistics to the calls read before it.
                let _ = sqlite.samples_since(day_ago, |sample| stats.record(sample));
                let ids = sqlite.last_ids();
                (Arc::new(sqlite), ids, None)
            }
            Err(error) => (
                Arc::new(memory::MemoryStore::new(config.max_entries)),
                (0, 0),
                Some(error),
            ),
        };
        Self::start(store, ids, stats, path, error, config, metrics)
    }

    fn start(
        store: Arc<dyn LogStore>,
        (last_call, last_event): (i64, i64),
        stats: Stats,
        path: PathBuf,
        error: Option<String>,
        config: &LogConfig,
        metrics: Arc<Metrics>,
    ) -> Self {
        let (queue, receiver) = std::sync::mpsc::sync_channel(QUEUE_CAPACITY);
        let (live, _) = broadcast::channel(1024);
        let state = Arc::new(LogState {
            queue,
            dropped: AtomicU64::new(0),
            queued_body_bytes: AtomicUsize::new(0),
            store: Mutex::new(store.clone()),
            responses_in_memory: (!config.bodies || !config.requests)
                .then(|| Arc::new(memory::MemoryStore::new(config.max_entries))),
            health: Mutex::new(StoreHealth {
                ok: error.is_none(),
                path,
                error: error.clone(),
                dropped_records: 0,
            }),
            live,
            metrics,
            stats: Mutex::new(stats),
            writer: Mutex::new(None),
        });
        let writer = writer::Writer {
            state: state.clone(),
            store,
            policy: BodyPolicy {
                keep: config.bodies,
                max_bytes: config.body_max_bytes,
                stored: true,
            },
            keep_calls: config.requests,
            max_entries: config.max_entries,
            next_call_id: last_call + 1,
            next_event_id: last_event + 1,
            reported_drops: 0,
        };
        let handle = std::thread::Builder::new()
            .name("llm-proxy-log-writer".into())
            .spawn(move || writer.run(receiver));
        let log = Self { state };
        match handle {
            Ok(handle) => *lock(&log.state.writer) = Some(handle),
            Err(e) => tracing::error!(error = %e, "cannot start the log writer thread"),
        }
        if let Some(error) = error {
            log.event(
                Level::Error,
                format!("request log unavailable, keeping recent entries in memory only: {error}"),
            );
        }
        log
    }

    /// Queues a call for recording and counting; never waits.
    pub fn record(&self, mut capture: CallCapture) {
        let queued = &self.state.queued_body_bytes;
        let mut bytes = capture.body_bytes();
        if queued.fetch_add(bytes, Ordering::Relaxed) + bytes > QUEUE_BODY_BYTES {
            queued.fetch_sub(bytes, Ordering::Relaxed);
            capture.shed_bodies();
            bytes = 0;
        }
        let capture = Box::new(capture);
        match self.state.queue.try_send(Message::Call(capture, bytes)) {
            Ok(()) => {}
            Err(TrySendError::Full(Message::Call(mut capture, _))) => {
                queued.fetch_sub(bytes, Ordering::Relaxed);
                self.state.dropped.fetch_add(1, Ordering::Relaxed);
                // Counted still: without its bodies nothing is parsed, so this costs little.
                capture.shed_bodies();
                self.state
                    .count(&ApiCall::from_capture(*capture, COUNT_ONLY));
            }
            Err(_) => {
                queued.fetch_sub(bytes, Ordering::Relaxed);
            }
        }
    }

    /// A server event: logged now through `tracing`, stored by the writer.
    pub fn event(&self, level: Level, message: impl Into<String>) {
        let message = message.into();
        trace_event(level, &message);
        if let Err(TrySendError::Full(_)) =
            self.state
                .queue
                .try_send(Message::Event(level, message, SystemTime::now()))
        {
            self.state.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn metrics(&self) -> &Metrics {
        &self.state.metrics
    }

    pub fn health(&self) -> StoreHealth {
        let mut health = lock(&self.state.health).clone();
        health.dropped_records = self.state.dropped.load(Ordering::Relaxed);
        health
    }

    pub fn stats(&self) -> Value {
        lock(&self.state.stats).snapshot(unix_ms(SystemTime::now()))
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Live> {
        self.state.live.subscribe()
    }

    /// The summaries (calls less headers and bodies) that `query` asks for, newest first; none
    /// when the store cannot be read.
    pub async fn call_summaries(&self, query: CallQuery) -> Vec<Value> {
        self.read(move |store| store.call_summaries(&query))
            .await
            .unwrap_or_default()
    }

    /// The whole calls (headers and bodies too) that `query` asks for, newest first.
    pub async fn calls(&self, query: CallQuery) -> Vec<ApiCall> {
        self.read(move |store| store.calls(&query))
            .await
            .unwrap_or_default()
    }

    pub async fn call(&self, id: i64) -> Option<ApiCall> {
        self.read(move |store| store.call(id)).await.ok().flatten()
    }

    pub async fn events(&self, query: EventQuery) -> Vec<ServerEvent> {
        self.read(move |store| store.events(&query))
            .await
            .unwrap_or_default()
    }

    /// Deletes every call and event, once everything queued before has been written.
    pub async fn clear(&self) {
        if let Some(memory) = &self.state.responses_in_memory {
            // A memory store cannot fail.
            let _ = memory.clear();
        }
        let (done, wait) = oneshot::channel();
        if self.enqueue_waiting(Message::Clear(done)).await {
            let _ = wait.await;
        }
    }

    /// Waits until every call and event queued before has been written and counted.
    pub async fn written(&self) {
        let (done, wait) = oneshot::channel();
        if self.enqueue_waiting(Message::Written(done)).await {
            let _ = wait.await;
        }
    }

    /// Writes what is queued and stops the writer.
    pub async fn close(&self) {
        let handle = lock(&self.state.writer).take();
        if self.enqueue_waiting(Message::Stop).await
            && let Some(handle) = handle
        {
            let _ = tokio::task::spawn_blocking(move || handle.join()).await;
        }
    }

    /// Queues a message that must not be lost, waiting for room off the async threads; false
    /// when the writer is gone.
    async fn enqueue_waiting(&self, message: Message) -> bool {
        let queue = self.state.queue.clone();
        tokio::task::spawn_blocking(move || queue.send(message).is_ok())
            .await
            .unwrap_or(false)
    }

    /// Keeps a Responses API answer (`record`, JSON) for `previous_response_id`.
    pub async fn put_response(&self, id: String, record: String) -> Result<(), StoreError> {
        let now = unix_ms(SystemTime::now());
        if let Some(memory) = &self.state.responses_in_memory {
            return memory.put_response(&id, now, &record);
        }
        self.read(move |store| store.put_response(&id, now, &record))
            .await
    }

    /// A stored Responses API answer's record.
    pub async fn response(&self, id: String) -> Result<Option<String>, StoreError> {
        if let Some(memory) = &self.state.responses_in_memory {
            return memory.response(&id);
        }
        self.read(move |store| store.response(&id)).await
    }

    /// Deletes a stored Responses API answer; whether there was one.
    pub async fn delete_response(&self, id: String) -> Result<bool, StoreError> {
        if let Some(memory) = &self.state.responses_in_memory {
            return memory.delete_response(&id);
        }
        self.read(move |store| store.delete_response(&id)).await
    }

    /// Runs a read (or a small write) of the store off the async threads.
    async fn read<T: Send + 'static>(
        &self,
        query: impl FnOnce(&dyn LogStore) -> Result<T, store::StoreError> + Send + 'static,
    ) -> Result<T, store::StoreError> {
        let store = lock(&self.state.store).clone();
        match tokio::task::spawn_blocking(move || query(store.as_ref())).await {
            Ok(result) => result,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }
}

impl crate::upstream::TokenObserver for Log {
    fn obtained(&self, lifetime: std::time::Duration, refresh_count: u64) {
        self.metrics().token_refreshed();
        self.event(
            Level::Info,
            format!(
                "OAuth token obtained (#{refresh_count}, valid for {} s)",
                lifetime.as_secs()
            ),
        );
    }

    fn failed(&self, error: &crate::upstream::TokenError, retry_in: std::time::Duration) {
        self.metrics().token_failed();
        self.event(
            Level::Warn,
            format!(
                "OAuth token request failed: {error}; retrying in {:.1} s",
                retry_in.as_secs_f64()
            ),
        );
    }
}

/// A server event through `tracing`, at its level.
fn trace_event(level: Level, message: &str) {
    match level {
        Level::Debug => tracing::debug!(%message, "server event"),
        Level::Info => tracing::info!(%message, "server event"),
        Level::Warn => tracing::warn!(%message, "server event"),
        Level::Error => tracing::error!(%message, "server event"),
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing panics while holding these locks; if something did, the data is still usable.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::http::{HeaderMap, Method};
    use bytes::Bytes;

    use super::compact::HeaderCopy;
    use super::memory::MemoryStore;
    use super::queries::{CallQuery, EventQuery};
    use super::record::{Collected, SHED_BODY};
    use super::*;
    use crate::formats::usage::Usage;
    use crate::notes::{CallNotes, KnownUsage};

    const MB: usize = 1024 * 1024;

    /// A store whose writes wait while the test holds its gate: a writer that is behind.
    #[derive(Default)]
    struct GatedStore {
        gate: Mutex<()>,
        kept: MemoryStore,
    }

    impl Default for MemoryStore {
        fn default() -> Self {
            Self::new(10_000)
        }
    }

    impl LogStore for GatedStore {
        fn write(&self, calls: &[ApiCall], events: &[ServerEvent]) -> Result<(), StoreError> {
            let _open = lock(&self.gate);
            self.kept.write(calls, events)
        }
        fn clear(&self) -> Result<(), StoreError> {
            self.kept.clear()
        }
        fn call_summaries(&self, query: &CallQuery) -> Result<Vec<Value>, StoreError> {
            self.kept.call_summaries(query)
        }
        fn calls(&self, query: &CallQuery) -> Result<Vec<ApiCall>, StoreError> {
            self.kept.calls(query)
        }
        fn call(&self, id: i64) -> Result<Option<ApiCall>, StoreError> {
            self.kept.call(id)
        }
        fn events(&self, query: &EventQuery) -> Result<Vec<ServerEvent>, StoreError> {
            self.kept.events(query)
        }
        fn put_response(&self, id: &str, time_ms: i64, record: &str) -> Result<(), StoreError> {
            self.kept.put_response(id, time_ms, record)
        }
        fn response(&self, id: &str) -> Result<Option<String>, StoreError> {
            self.kept.response(id)
        }
        fn delete_response(&self, id: &str) -> Result<bool, StoreError> {
            self.kept.delete_response(id)
        }
    }

    fn gated_log() -> (Log, Arc<GatedStore>) {
        let store = Arc::new(GatedStore::default());
        let log = Log::start(
            store.clone(),
            (0, 0),
            Stats::default(),
            PathBuf::from("gated"),
            None,
            &LogConfig::default(),
            Arc::default(),
        );
        (log, store)
    }

    fn capture(body_bytes: usize) -> CallCapture {
        CallCapture {
            started_at: SystemTime::now(),
            method: Method::POST,
            path: "/v1/chat/completions".into(),
            request_headers: HeaderCopy::of(&HeaderMap::new()),
            notes: Some(CallNotes {
                model: Some("m".into()),
                stream: false,
                request_body: Bytes::from(vec![b'x'; body_bytes]),
                translation: None,
            }),
            status: 200,
            event_stream: false,
            ttfb: None,
            total: Duration::from_millis(1),
            upstream: None,
            response: Collected::Body(Vec::new()),
            response_complete: true,
            disconnected: false,
            normalization: None,
            known_usage: Some(KnownUsage(Usage {
                prompt_tokens: 1,
                completion_tokens: 2,
                total_tokens: 3,
            })),
            bodies_shed: false,
        }
    }

    /// A closed log whose queue overflowed: more calls than the queue and one batch hold,
    /// recorded while the writer could not finish a batch.
    async fn overfilled_log() -> (Log, usize) {
        let (store, gated) = gated_log();
        let calls = QUEUE_CAPACITY + writer::BATCH + 100;
        {
            let _writer_held = lock(&gated.gate);
            for _ in 0..calls {
                store.record(capture(0));
            }
        }
        store.close().await;
        (store, calls)
    }

    #[tokio::test]
    async fn calls_the_full_queue_dropped_are_still_counted_in_stats_and_metrics() {
        let (store, calls) = overfilled_log().await;
        let dropped = store.health().dropped_records;
        assert!(dropped >= 100, "{dropped} dropped");
        let stats = store.stats();
        assert_eq!(stats["totals"]["requests"], calls, "{stats}");
        assert_eq!(
            stats["totals"]["promptTokens"], calls,
            "usage noted on the way"
        );
        let metrics = store.metrics().encode();
        let counted = format!(
            "llm_proxy_requests_total{{endpoint=\"/v1/chat/completions\",model=\"m\",status=\"200\"}} {calls}\n"
        );
        assert!(metrics.contains(&counted), "{metrics}");
        assert!(
            metrics.contains(&format!("llm_proxy_log_records_dropped_total {dropped}\n")),
            "{metrics}"
        );
    }

    #[tokio::test]
    async fn records_a_full_queue_dropped_are_counted_in_health_a_server_event_and_the_metric() {
        let (store, _) = overfilled_log().await;

        // `/health` shows the log store's health as it is serialized here.
        let health = serde_json::to_value(store.health()).unwrap();
        let dropped = health["droppedRecords"].as_u64().unwrap();
        assert!(dropped >= 100, "{health}");

        // The writer reports the drops once per batch; together the reports name them all.
        let events = store
            .events(EventQuery {
                limit: 100,
                min_level: Level::Warn,
            })
            .await;
        let reported: u64 = events
            .iter()
            .filter_map(|e| {
                let rest = e.message.strip_prefix("the log queue was full: ")?;
                assert_eq!(e.level, Level::Warn, "{e:?}");
                rest.split_once(" records were dropped")?
                    .0
                    .parse::<u64>()
                    .ok()
            })
            .sum();
        assert_eq!(reported, dropped, "{events:?}");

        let metrics = store.metrics().encode();
        assert!(
            metrics.contains(&format!("llm_proxy_log_records_dropped_total {dropped}\n")),
            "{metrics}"
        );
    }

    #[tokio::test]
    async fn a_writer_behind_gets_calls_without_their_bodies() {
        let (store, gated) = gated_log();
        let queued = &store.state.queued_body_bytes;
        {
            // A writer behind: it cannot finish writing a batch (the gate is held), so every
            // call stays counted, queued or taken.
            let _writer_held = lock(&gated.gate);
            for _ in 0..40 {
                store.record(capture(MB));
            }
            assert_eq!(queued.load(Ordering::Relaxed), QUEUE_BODY_BYTES);
        }
        store.close().await;
        assert_eq!(
            queued.load(Ordering::Relaxed),
            0,
            "the writer gave them back"
        );

        let kept = QUEUE_BODY_BYTES / MB;
        for id in 1..=40 {
            let call = store.call(id).await.unwrap();
            let shed = id > kept as i64;
            assert_eq!(
                call.request_body.as_deref() == Some(SHED_BODY),
                shed,
                "call {id}"
            );
            assert_eq!(call.response_body.as_deref() == Some(SHED_BODY), shed);
            assert_eq!(call.model.as_deref(), Some("m"), "noted by the handler");
            assert_eq!(
                call.usage.map(|u| u.total_tokens),
                Some(3),
                "read on the way"
            );
        }
        let events = store
            .events(EventQuery {
                limit: 10,
                min_level: Level::Warn,
            })
            .await;
        let expected = format!("{} calls were recorded without their bodies", 40 - kept);
        assert!(
            events.iter().any(|e| e.message.contains(&expected)),
            "{events:?}"
        );
    }
}
