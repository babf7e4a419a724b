//! The live feed: new calls, server events and a stats snapshot every few seconds, for
//! `/api/events` and the desktop window.

use std::time::Duration;

use tokio::sync::broadcast::error::RecvError;

use crate::logs::{Live, Log};
use crate::state::AppState;

/// How often the live feed sends a stats snapshot.
const STATS_TICK: Duration = Duration::from_secs(5);

/// One message of the live feed: its name (the SSE event name, the desktop event name) and
/// its data as JSON text.
#[derive(Debug)]
pub struct LiveUpdate {
    pub name: &'static str,
    pub data: String,
}

/// One subscriber's view of the live log: new calls, server events, a stats snapshot every
/// few seconds. Ends when the server stops.
pub struct LiveFeed {
    receiver: tokio::sync::broadcast::Receiver<Live>,
    ticks: tokio::time::Interval,
    log: Log,
    shutdown: tokio_util::sync::CancellationToken,
}

impl LiveFeed {
    pub fn new(state: &AppState) -> Self {
        Self {
            receiver: state.log().subscribe(),
            ticks: tokio::time::interval(STATS_TICK),
            log: state.log().clone(),
            shutdown: state.shutdown_token().clone(),
        }
    }

    /// The next update; `None` when the server is stopping.
    pub async fn next(&mut self) -> Option<LiveUpdate> {
        loop {
            let (name, data) = tokio::select! {
                () = self.shutdown.cancelled() => return None,
                _ = self.ticks.tick() => ("stats", serde_json::to_string(&self.log.stats())),
                received = self.receiver.recv() => match received {
                    Ok(Live::Call(call)) => ("call", serde_json::to_string(&*call)),
                    Ok(Live::Event(event)) => ("serverEvent", serde_json::to_string(&*event)),
                    Ok(Live::Cleared) => ("cleared", Ok("{}".to_owned())),
                    // A slow reader missed some: tell it to reload rather than show a gap.
                    Err(RecvError::Lagged(missed)) => ("lagged", Ok(missed.to_string())),
                    Err(RecvError::Closed) => return None,
                },
            };
            if let Ok(data) = data {
                return Some(LiveUpdate { name, data });
            }
        }
    }
}
