//! The log's writer thread: takes what the request path queued, makes records of the captures,
//! counts every call, stores them in batches, and tells the dashboard.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::SystemTime;

use super::memory::MemoryStore;
use super::record::{ApiCall, BodyPolicy, unix_ms};
use super::store::LogStore;
use super::{COUNT_ONLY, Level, Live, LogState, Message, ServerEvent, lock, trace_event};

/// Records written in one transaction at most.
pub(super) const BATCH: usize = 512;
/// How long the writer gathers records before writing them: the delay before a call shows in
/// the dashboard, traded for one transaction per many calls.
const BATCH_WINDOW: std::time::Duration = std::time::Duration::from_millis(20);

pub(super) struct Writer {
    pub(super) state: Arc<LogState>,
    pub(super) store: Arc<dyn LogStore>,
    pub(super) policy: BodyPolicy,
    /// `LOG_REQUESTS`: calls are stored and shown, or only counted.
    pub(super) keep_calls: bool,
    pub(super) max_entries: usize,
    pub(super) next_call_id: i64,
    pub(super) next_event_id: i64,
    pub(super) reported_drops: u64,
}

impl Writer {
    pub(super) fn run(mut self, receiver: Receiver<Message>) {
        loop {
            let first = match receiver.try_recv() {
                // A backlog: write it at once.
                Ok(message) => message,
                Err(TryRecvError::Disconnected) => break,
                Err(TryRecvError::Empty) => match receiver.recv() {
                    // Let records gather for a moment, asleep rather than waiting on the
                    // queue: a writer blocked in `recv` is woken for every record, a system
                    // call on the request's own thread. A clear, wait or stop is not delayed.
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
            if self.write_batch(batch) {
                break;
            }
        }
    }

    /// Writes one batch; true when it held the order to stop.
    fn write_batch(&mut self, batch: Vec<Message>) -> bool {
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
                        COUNT_ONLY
                    };
                    let client_left = capture.disconnected;
                    let mut call = ApiCall::from_capture(*capture, policy);
                    if let Some(message) = target_failure(&call, client_left) {
                        events.push(self.new_event(Level::Warn, message, SystemTime::now()));
                    }
                    if self.keep_calls {
                        call.id = self.next_call_id;
                        self.next_call_id += 1;
                        calls.push(call);
                    } else {
                        self.state.count(&call);
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
        self.state
            .queued_body_bytes
            .fetch_sub(body_bytes, Ordering::Relaxed);
        for done in written {
            let _ = done.send(());
        }
        stop
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
        let dropped = self.state.dropped.load(Ordering::Relaxed);
        if dropped > self.reported_drops {
            let lost = dropped - self.reported_drops;
            self.reported_drops = dropped;
            self.state.metrics.log_dropped(lost);
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
        if let Err(error) = self.store.write(&calls, &events) {
            let message = format!(
                "writing the request log failed, keeping recent entries in memory only: {error}"
            );
            self.announce(&mut events, Level::Error, message.clone());
            self.fall_back_to_memory(message);
            // Memory takes anything.
            let _ = self.store.write(&calls, &events);
        }
        for call in &calls {
            self.state.count(call);
        }
        // Summaries are only made when a dashboard is listening.
        if self.state.live.receiver_count() > 0 {
            for call in &calls {
                let _ = self.state.live.send(Live::Call(Arc::new(call.summary())));
            }
        }
        for event in events {
            let _ = self.state.live.send(Live::Event(Arc::new(event)));
        }
    }

    /// From now on the log is kept in memory: the database failed, and says so in `/health`.
    fn fall_back_to_memory(&mut self, error: String) {
        let memory: Arc<dyn LogStore> = Arc::new(MemoryStore::new(self.max_entries));
        *lock(&self.state.store) = memory.clone();
        self.store = memory;
        let mut health = lock(&self.state.health);
        health.ok = false;
        health.error = Some(error);
    }

    fn clear(&mut self) {
        if let Err(error) = self.store.clear() {
            tracing::error!(%error, "clearing the request log failed");
        }
        lock(&self.state.stats).clear();
        let _ = self.state.live.send(Live::Cleared);
    }
}

/// A server event for a call the target failed: a 5xx, or a stream that broke while the
/// client was still there.
fn target_failure(call: &ApiCall, client_left: bool) -> Option<String> {
    let error = call.error.as_deref()?;
    let target_side = call.status >= 500 || (call.stream && call.status < 400 && !client_left);
    target_side.then(|| {
        format!(
            "target error on {} {} (HTTP {}): {error}",
            call.method, call.path, call.status
        )
    })
}
