//! Time as the token source sees it: read and waited on through a [`Clock`], so tests can move
//! it forward by hours without sleeping ("time is a source of non-determinism").

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::watch;

pub type SleepFuture = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> SystemTime;
    /// Resolves once `now() >= deadline`.
    fn sleep_until(&self, deadline: SystemTime) -> SleepFuture;
}

/// The real wall clock. Wall time rather than a monotonic instant because token lifetimes are
/// wall-clock facts, and the status shown to users is a wall-clock time.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }

    fn sleep_until(&self, deadline: SystemTime) -> SleepFuture {
        let wait = deadline
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO);
        Box::pin(tokio::time::sleep(wait))
    }
}

/// A clock that moves only when told to. Waiters wake as soon as an `advance` passes their
/// deadline.
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<watch::Sender<SystemTime>>,
}

impl ManualClock {
    pub fn new(start: SystemTime) -> Self {
        Self {
            now: Arc::new(watch::Sender::new(start)),
        }
    }

    pub fn advance(&self, by: Duration) {
        self.now.send_modify(|now| *now += by);
    }
}

impl Default for ManualClock {
    /// Starts at 2026-01-01T00:00:00Z, so tests read the same times every run.
    fn default() -> Self {
        Self::new(SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600))
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        *self.now.borrow()
    }

    fn sleep_until(&self, deadline: SystemTime) -> SleepFuture {
        let mut changes = self.now.subscribe();
        Box::pin(async move {
            // The sender lives as long as the clock; if it is gone, time stops and so do we.
            let _ = changes.wait_for(|now| *now >= deadline).await;
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn manual_sleepers_wake_when_time_passes_their_deadline() {
        let clock = ManualClock::default();
        let deadline = clock.now() + Duration::from_secs(60);
        let mut sleeper = tokio::spawn(clock.sleep_until(deadline));
        clock.advance(Duration::from_secs(59));
        tokio::task::yield_now().await;
        assert!(futures_util::poll!(&mut sleeper).is_pending());
        clock.advance(Duration::from_secs(1));
        sleeper.await.unwrap();
    }
}
