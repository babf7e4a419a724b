//! The request log and server events: captured on the request path without waiting, written
//! by one thread in batches to SQLite, served to the dashboard, and streamed live.
//!
//! Nothing here can slow or fail a request. Records go through a bounded queue: when it is full
//! they are dropped and counted. When the database cannot be opened or written, the proxy keeps
//! serving, the log keeps its recent entries in memory, and `/health` says what went wrong.
//!
//! Every call is counted in the statistics and metrics, whether or not calls are kept
//! (`LOG_REQUESTS`) and whether or not the queue had room for its record.

pub mod assemble;
pub mod compact;
pub mod record;
mod sqlite;

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, TrySendError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use rusqlite::Connection;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::{broadcast, oneshot};

use self::record::{ApiCall, BodyPolicy, CallCapture, unix_ms};
use crate::config::LogConfig;
use crate::metrics::Metrics;
use crate::stats::Stats;

/// Records waiting for the writer. Beyond this the request path drops records rather than wait.
const QUEUE_CAPACITY: usize = 8192;
/// Body bytes the records queued or being written may hold. Beyond this a call is queued
/// without its bodies (still recorded and counted): a burst of large prompts (coding agents
/// send 50-200 KB each) faster than the disk takes them held every one in memory until
/// written, 148 MB for 3,000 calls of 50 KB, and the memory stayed with the process after.
const QUEUE_BODY_BYTES: usize = 32 * 1024 * 1024;
/// Records written in one transaction at most.
const BATCH: usize = 512;
/// How long the writer gathers records before writing them: the delay before a call shows in
/// the dashboard, traded for one transaction per many calls.
const BATCH_WINDOW: std::time::Duration = std::time::Duration::from_millis(20);
/// How often entries past `LOG_MAX_AGE_DAYS` are deleted: days of retention need no finer grain.
const AGE_CHECK_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);
/// Entries kept in memory when there is no database (it could not be opened, or a write
/// failed): then the dashboard shows these.
const MEMORY_ENTRIES: usize = 1000;
const DATABASE_FILE: &str = "logs.sqlite3";

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

#[derive(Debug, Clone, Serialize)]
pub struct ServerEvent {
    pub id: i64,
    /// Unix milliseconds.
    pub time: i64,
    pub level: Level,
    pub message: String,
}

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
    fn status_range(&self) -> Option<(u16, u16)> {
        self.status_class
            .map(|class| (class * 100, class * 100 + 99))
    }

    fn matches(&self, call: &ApiCall) -> bool {
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

#[derive(Debug, Clone)]
pub struct EventQuery {
    pub limit: usize,
    pub min_level: Level,
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
pub struct LogStore {
    shared: Arc<Shared>,
}

struct Shared {
    queue: SyncSender<Message>,
    dropped: AtomicU64,
    /// Body bytes of the calls queued or being written.
    queued_body_bytes: AtomicUsize,
    view: Mutex<View>,
    /// A second connection for the dashboard's reads; WAL lets them run beside the writer.
    reader: Mutex<Option<Connection>>,
    live: broadcast::Sender<Live>,
    metrics: Arc<Metrics>,
    /// Its own lock: a call the full queue dropped is counted on the request path.
    stats: Mutex<Stats>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// What the writer keeps up to date for readers.
struct View {
    /// The newest calls and events while there is no database, empty while there is one: a
    /// call holds its bodies (up to 256 KB each), and a thousand coding-agent prompts kept
    /// for a fallback that is never read were a hundred megabytes of memory.
    calls: VecDeque<ApiCall>,
    events: VecDeque<ServerEvent>,
    health: StoreHealth,
}

impl std::fmt::Debug for LogStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogStore").finish_non_exhaustive()
    }
}

impl LogStore {
    /// Opens (creating and migrating) the database in `data_dir` and starts the writer. Never
    /// fails: a database that cannot be opened leaves the log in memory, and says so.
    pub fn open(data_dir: &Path, config: &LogConfig, metrics: Arc<Metrics>) -> Self {
        let path = data_dir.join(DATABASE_FILE);
        let opened = std::fs::create_dir_all(data_dir)
            .map_err(|e| format!("cannot create {}: {e}", data_dir.display()))
            .and_then(|()| {
                let writer = sqlite::open(&path)
                    .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
                let reader = sqlite::open(&path)
                    .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
                Ok((writer, reader))
            });
        let mut stats = Stats::default();
        let (writer_conn, reader_conn, error, ids) = match opened {
            Ok((writer, reader)) => {
                let ids = sqlite::last_ids(&writer).unwrap_or((0, 0));
                let day_ago = unix_ms(SystemTime::now()) - 24 * 3600 * 1000;
                // A read that fails leaves the statistics to the calls read before it.
                let _ = sqlite::samples_since(&writer, day_ago, |sample| stats.record(sample));
                (Some(writer), Some(reader), None, ids)
            }
            Err(error) => (None, None, Some(error), (0, 0)),
        };
        let (queue, receiver) = std::sync::mpsc::sync_channel(QUEUE_CAPACITY);
        let (live, _) = broadcast::channel(1024);
        let shared = Arc::new(Shared {
            queue,
            dropped: AtomicU64::new(0),
            queued_body_bytes: AtomicUsize::new(0),
            view: Mutex::new(View {
                calls: VecDeque::new(),
                events: VecDeque::new(),
                health: StoreHealth {
                    ok: error.is_none(),
                    path: path.clone(),
                    error: error.clone(),
                    dropped_records: 0,
                },
            }),
            reader: Mutex::new(reader_conn),
            live,
            metrics,
            stats: Mutex::new(stats),
            writer: Mutex::new(None),
        });
        let writer = Writer {
            shared: shared.clone(),
            conn: writer_conn,
            policy: BodyPolicy {
                keep: config.bodies,
                max_bytes: config.body_max_bytes,
            },
            keep_calls: config.requests,
            max_entries: config.max_entries,
            max_age_ms: config.max_age.as_millis() as i64,
            calls_cut: i64::MIN,
            events_cut: i64::MIN,
            age_checked: None,
            next_call_id: ids.0 + 1,
            next_event_id: ids.1 + 1,
            reported_drops: 0,
        };
        let handle = std::thread::Builder::new()
            .name("llm-proxy-log-writer".into())
            .spawn(move || writer.run(receiver));
        let store = Self { shared };
        match handle {
            Ok(handle) => *lock(&store.shared.writer) = Some(handle),
            Err(e) => tracing::error!(error = %e, "cannot start the log writer thread"),
        }
        if let Some(error) = error {
            store.event(
                Level::Error,
                format!("request log unavailable, keeping recent entries in memory only: {error}"),
            );
        }
        store
    }

    /// Queues a call for recording and counting; never waits.
    pub fn record(&self, mut capture: CallCapture) {
        let queued = &self.shared.queued_body_bytes;
        let mut bytes = capture.body_bytes();
        if queued.fetch_add(bytes, Ordering::Relaxed) + bytes > QUEUE_BODY_BYTES {
            queued.fetch_sub(bytes, Ordering::Relaxed);
            capture.shed_bodies();
            bytes = 0;
        }
        let capture = Box::new(capture);
        match self.shared.queue.try_send(Message::Call(capture, bytes)) {
            Ok(()) => {}
            Err(TrySendError::Full(Message::Call(mut capture, _))) => {
                queued.fetch_sub(bytes, Ordering::Relaxed);
                self.shared.dropped.fetch_add(1, Ordering::Relaxed);
                // Counted still: without its bodies nothing is parsed, so this costs little.
                capture.shed_bodies();
                self.shared
                    .count(&ApiCall::from_capture(*capture, NO_BODIES));
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
        self.send(Message::Event(level, message, SystemTime::now()));
    }

    fn send(&self, message: Message) {
        if let Err(TrySendError::Full(_)) = self.shared.queue.try_send(message) {
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    pub fn health(&self) -> StoreHealth {
        let mut health = lock(&self.shared.view).health.clone();
        health.dropped_records = self.shared.dropped.load(Ordering::Relaxed);
        health
    }

    pub fn stats(&self) -> Value {
        lock(&self.shared.stats).snapshot(unix_ms(SystemTime::now()))
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Live> {
        self.shared.live.subscribe()
    }

    /// The summaries (calls less headers and bodies) that `query` asks for, newest first.
    pub async fn call_summaries(&self, query: CallQuery) -> Vec<Value> {
        self.read(move |shared| {
            if let Some(conn) = lock(&shared.reader).as_ref()
                && let Ok(summaries) = sqlite::call_summaries(conn, &query)
            {
                return summaries;
            }
            lock(&shared.view)
                .calls
                .iter()
                .rev()
                .filter(|c| query.matches(c))
                .take(query.limit)
                .map(ApiCall::summary)
                .collect()
        })
        .await
    }

    pub async fn call(&self, id: i64) -> Option<ApiCall> {
        self.read(move |shared| {
            if let Some(conn) = lock(&shared.reader).as_ref()
                && let Ok(call) = sqlite::call(conn, id)
            {
                return call;
            }
            lock(&shared.view)
                .calls
                .iter()
                .find(|c| c.id == id)
                .cloned()
        })
        .await
    }

    pub async fn events(&self, query: EventQuery) -> Vec<ServerEvent> {
        self.read(move |shared| {
            if let Some(conn) = lock(&shared.reader).as_ref()
                && let Ok(events) = sqlite::events(conn, &query)
            {
                return events;
            }
            let view = lock(&shared.view);
            view.events
                .iter()
                .rev()
                .filter(|e| e.level >= query.min_level)
                .take(query.limit)
                .cloned()
                .collect()
        })
        .await
    }

    /// Deletes every call and event, once everything queued before has been written.
    pub async fn clear(&self) {
        let (done, wait) = oneshot::channel();
        if self.shared.queue.try_send(Message::Clear(done)).is_ok() {
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
        let handle = lock(&self.shared.writer).take();
        if self.enqueue_waiting(Message::Stop).await
            && let Some(handle) = handle
        {
            let _ = tokio::task::spawn_blocking(move || handle.join()).await;
        }
    }

    /// Queues a message that must not be lost, waiting for room off the async threads; false
    /// when the writer is gone.
    async fn enqueue_waiting(&self, message: Message) -> bool {
        let queue = self.shared.queue.clone();
        tokio::task::spawn_blocking(move || queue.send(message).is_ok())
            .await
            .unwrap_or(false)
    }

    async fn read<T: Send + 'static>(
        &self,
        query: impl FnOnce(&Shared) -> T + Send + 'static,
    ) -> T {
        let shared = self.shared.clone();
        match tokio::task::spawn_blocking(move || query(&shared)).await {
            Ok(result) => result,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }
}

impl crate::upstream::TokenObserver for LogStore {
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

impl Shared {
    /// Counts a call in the statistics and metrics.
    fn count(&self, call: &ApiCall) {
        lock(&self.stats).record(call.sample());
        self.metrics.observe(call.observed());
    }
}

/// The policy for a call counted but not stored.
const NO_BODIES: BodyPolicy = BodyPolicy {
    keep: false,
    max_bytes: 0,
};

/// The writer thread's state.
struct Writer {
    shared: Arc<Shared>,
    conn: Option<Connection>,
    policy: BodyPolicy,
    /// `LOG_REQUESTS`: calls are stored and shown, or only counted.
    keep_calls: bool,
    max_entries: usize,
    max_age_ms: i64,
    /// The id cuts already applied, and when the age cut last ran (see `flush`).
    calls_cut: i64,
    events_cut: i64,
    age_checked: Option<std::time::Instant>,
    next_call_id: i64,
    next_event_id: i64,
    reported_drops: u64,
}

impl Writer {
    fn run(mut self, receiver: Receiver<Message>) {
        loop {
            let first = match receiver.try_recv() {
                // A backlog: write it at once.
                Ok(message) => message,
                Err(TryRecvError::Disconnected) => break,
                Err(TryRecvError::Empty) => match receiver.recv() {
                    // Let records gather for a moment, asleep rather than waiting on the
                    // queue: a writer blocked in `recv` is woken for every record, a system
                    // call on the request's own thread, while a sleeping one costs the request
                    // path nothing. One transaction then writes them all. A clear or stop is
                    // not delayed.
                    Ok(message) => {
                        if matches!(message, Message::Call(..) | Message::Event(..)) {
                            std::thread::sleep(BATCH_WINDOW);
                        }
                        message
                    }
                    Err(_) => break,
                },
            };
            let mut batch = vec![first];
            batch.extend(receiver.try_iter().take(BATCH - 1));
            let mut calls = Vec::new();
            let mut events = Vec::new();
            let mut stop = false;
            let mut written = Vec::new();
            let (mut shed, mut body_bytes) = (0, 0);
            for message in batch {
                match message {
                    Message::Call(capture, bytes) => {
                        shed += usize::from(capture.bodies_shed);
                        body_bytes += bytes;
                        let policy = if self.keep_calls {
                            self.policy
                        } else {
                            NO_BODIES
                        };
                        let mut call = ApiCall::from_capture(*capture, policy);
                        if let Some(message) = target_failure(&call) {
                            events.push(self.new_event(Level::Warn, message, SystemTime::now()));
                        }
                        if self.keep_calls {
                            call.id = self.next_call_id;
                            self.next_call_id += 1;
                            calls.push(call);
                        } else {
                            self.shared.count(&call);
                        }
                    }
                    Message::Event(level, message, time) => {
                        events.push(self.new_event(level, message, time))
                    }
                    Message::Clear(done) => {
                        self.flush(std::mem::take(&mut calls), std::mem::take(&mut events));
                        self.clear();
                        let _ = done.send(());
                    }
                    Message::Written(done) => written.push(done),
                    Message::Stop => stop = true,
                }
            }
            self.report_drops(&mut events);
            if shed > 0 {
                let message = format!(
                    "the request log was behind: {shed} calls were recorded without their bodies \
                     (requests were not affected)"
                );
                self.announce(&mut events, Level::Warn, message);
            }
            self.flush(calls, events);
            // Counted until written: the records made from the captures hold the bodies too.
            self.shared
                .queued_body_bytes
                .fetch_sub(body_bytes, Ordering::Relaxed);
            for done in written {
                let _ = done.send(());
            }
            if stop {
                break;
            }
        }
    }

    fn new_event(&mut self, level: Level, message: String, time: SystemTime) -> ServerEvent {
        let event = ServerEvent {
            id: self.next_event_id,
            time: unix_ms(time),
            level,
            message,
        };
        self.next_event_id += 1;
        event
    }

    /// Says once per batch how many records the full queue cost since the last report.
    fn report_drops(&mut self, events: &mut Vec<ServerEvent>) {
        let dropped = self.shared.dropped.load(Ordering::Relaxed);
        if dropped > self.reported_drops {
            let lost = dropped - self.reported_drops;
            self.reported_drops = dropped;
            self.shared.metrics.log_dropped(lost);
            let message = format!(
                "the log queue was full: {lost} records were dropped (requests were not affected)"
            );
            self.announce(events, Level::Warn, message);
        }
    }

    /// A server event of the writer's own: logged now through `tracing`, stored with the batch.
    fn announce(&mut self, events: &mut Vec<ServerEvent>, level: Level, message: String) {
        trace_event(level, &message);
        events.push(self.new_event(level, message, SystemTime::now()));
    }

    fn flush(&mut self, calls: Vec<ApiCall>, mut events: Vec<ServerEvent>) {
        if calls.is_empty() && events.is_empty() {
            return;
        }
        if let Some(conn) = self.conn.as_mut() {
            // Ids are ours and sequential, so "keep the newest N" is a delete below an id:
            // an index range, cheap enough to run with every batch.
            // Only what can have changed is deleted: the id cuts once the tables are over the
            // cap (then with every batch, exactly), the age cut once a minute. A batch often
            // holds one call, so four deletes each time would cost more than the insert.
            let keep = self.max_entries as i64;
            let calls_below = Some(self.next_call_id - keep).filter(|&b| b > self.calls_cut);
            let events_below = Some(self.next_event_id - keep).filter(|&b| b > self.events_cut);
            let age_due = self
                .age_checked
                .is_none_or(|at| at.elapsed() >= AGE_CHECK_INTERVAL);
            let cutoff = age_due.then(|| unix_ms(SystemTime::now()) - self.max_age_ms);
            let written = sqlite::insert(conn, &calls, &events)
                .and_then(|()| sqlite::retain(conn, calls_below, events_below, cutoff));
            if written.is_ok() {
                self.calls_cut = self.calls_cut.max(calls_below.unwrap_or(i64::MIN));
                self.events_cut = self.events_cut.max(events_below.unwrap_or(i64::MIN));
                if age_due {
                    self.age_checked = Some(std::time::Instant::now());
                }
            }
            if let Err(error) = written {
                self.conn = None;
                *lock(&self.shared.reader) = None;
                let message = format!(
                    "writing the request log failed, keeping recent entries in memory only: {error}"
                );
                self.announce(&mut events, Level::Error, message.clone());
                let mut view = lock(&self.shared.view);
                view.health.ok = false;
                view.health.error = Some(message);
            }
        }
        // Summaries are only built when a dashboard is listening.
        let listening = self.shared.live.receiver_count() > 0;
        let summaries: Vec<Arc<Value>> = if listening {
            calls.iter().map(|c| Arc::new(c.summary())).collect()
        } else {
            Vec::new()
        };
        {
            let mut view = lock(&self.shared.view);
            for call in &calls {
                self.shared.count(call);
            }
            if self.conn.is_none() {
                let memory_cap = self.max_entries.min(MEMORY_ENTRIES);
                keep_newest(&mut view.calls, calls, memory_cap);
                keep_newest(&mut view.events, events.iter().cloned(), memory_cap);
            }
        }
        for summary in summaries {
            let _ = self.shared.live.send(Live::Call(summary));
        }
        for event in events {
            let _ = self.shared.live.send(Live::Event(Arc::new(event)));
        }
    }

    fn clear(&mut self) {
        if let Some(conn) = &self.conn
            && let Err(error) = sqlite::clear(conn)
        {
            tracing::error!(%error, "clearing the request log failed");
        }
        let mut view = lock(&self.shared.view);
        view.calls.clear();
        view.events.clear();
        drop(view);
        lock(&self.shared.stats).clear();
        let _ = self.shared.live.send(Live::Cleared);
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

/// Appends `items`, dropping the oldest past `cap`.
fn keep_newest<T>(kept: &mut VecDeque<T>, items: impl IntoIterator<Item = T>, cap: usize) {
    for item in items {
        kept.push_back(item);
        if kept.len() > cap {
            kept.pop_front();
        }
    }
}

/// A server event for a call the target failed: a 5xx, or a stream that broke.
fn target_failure(call: &ApiCall) -> Option<String> {
    let error = call.error.as_deref()?;
    let target_side = call.status >= 500
        || (call.stream && call.status < 400 && !error.contains("client disconnected"));
    target_side.then(|| {
        format!(
            "target error on {} {} (HTTP {}): {error}",
            call.method, call.path, call.status
        )
    })
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
    use super::record::{Collected, SHED_BODY};
    use super::*;
    use crate::formats::usage::Usage;
    use crate::notes::{CallNotes, KnownUsage};

    const MB: usize = 1024 * 1024;

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

    #[tokio::test]
    async fn calls_the_full_queue_dropped_are_still_counted_in_stats_and_metrics() {
        let dir =
            std::env::temp_dir().join(format!("llm-proxy-unit-dropped-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = LogStore::open(&dir, &LogConfig::default(), Arc::default());
        // More than the queue and one batch can hold while the writer cannot finish a batch.
        let calls = QUEUE_CAPACITY + BATCH + 100;
        {
            let _writer_held = lock(&store.shared.view);
            for _ in 0..calls {
                store.record(capture(0));
            }
        }
        store.close().await;
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
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn a_writer_behind_gets_calls_without_their_bodies() {
        let dir = std::env::temp_dir().join(format!("llm-proxy-unit-shed-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = LogStore::open(&dir, &LogConfig::default(), Arc::default());
        let queued = &store.shared.queued_body_bytes;
        {
            // A writer behind: it cannot finish writing a batch (the view is held), so every
            // call stays counted, queued or taken.
            let _writer_held = lock(&store.shared.view);
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
        let _ = std::fs::remove_dir_all(&dir);
    }
}
