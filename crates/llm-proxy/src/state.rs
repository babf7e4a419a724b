//! What every request of one server shares: its configuration, the target client, the log,
//! sessions, the failed-authentication limiter and the request slots.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use secrecy::ExposeSecret;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::auth_limiter::AuthLimiter;
use crate::clock::Clock;
use crate::config::{Config, UpstreamConfig};
use crate::logs::{Level, Log};
use crate::metrics::Metrics;
use crate::sessions::Sessions;
use crate::upstream::{BuildError, UpstreamClient};

/// Shared by every request of one server. Cloning is one `Arc` increment.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    /// `None` in placeholder mode.
    upstream: Option<UpstreamClient>,
    log: Log,
    sessions: Sessions,
    auth_limiter: AuthLimiter,
    /// One permit per request being served (see `guard::limit_concurrency`).
    request_slots: Arc<Semaphore>,
    /// Cancelled when the server begins to stop: endless responses (the dashboard's event
    /// stream) end on it instead of holding shutdown for the whole grace period.
    shutdown: CancellationToken,
    /// Cancelled when the shutdown grace is over: relayed streams still open end with an
    /// error event instead of being cut.
    cut_off: CancellationToken,
    /// Where the server listens (the real port when 0 was asked for).
    local_addr: SocketAddr,
    started: Instant,
}

impl AppState {
    pub fn new(
        config: Config,
        clock: Arc<dyn Clock>,
        local_addr: SocketAddr,
    ) -> Result<Self, BuildError> {
        let log = Log::open(
            &config.data_dir,
            &config.logging,
            Arc::new(Metrics::default()),
        );
        let upstream = match &config.upstream {
            UpstreamConfig::Placeholder => None,
            UpstreamConfig::Target(target) => Some(UpstreamClient::new(
                target,
                &config.limits,
                clock,
                Arc::new(log.clone()),
            )?),
        };
        Ok(Self {
            inner: Arc::new(Inner {
                request_slots: Arc::new(Semaphore::new(
                    config.limits.max_concurrency.min(Semaphore::MAX_PERMITS),
                )),
                config,
                upstream,
                log,
                sessions: Sessions::default(),
                auth_limiter: AuthLimiter::default(),
                shutdown: CancellationToken::new(),
                cut_off: CancellationToken::new(),
                local_addr,
                started: Instant::now(),
            }),
        })
    }

    pub fn log(&self) -> &Log {
        &self.inner.log
    }

    pub fn sessions(&self) -> &Sessions {
        &self.inner.sessions
    }

    pub fn auth_limiter(&self) -> &AuthLimiter {
        &self.inner.auth_limiter
    }

    pub fn request_slots(&self) -> &Arc<Semaphore> {
        &self.inner.request_slots
    }

    pub fn shutdown_token(&self) -> &CancellationToken {
        &self.inner.shutdown
    }

    pub fn cut_off_token(&self) -> &CancellationToken {
        &self.inner.cut_off
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local_addr
    }

    /// The URL users are told to use, with the port actually bound.
    pub fn public_base_url(&self) -> String {
        self.inner
            .config
            .public_base_url(self.inner.local_addr.port())
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    pub fn upstream(&self) -> Option<&UpstreamClient> {
        self.inner.upstream.as_ref()
    }

    pub fn access_token(&self) -> &[u8] {
        self.inner
            .config
            .access_token
            .secret
            .expose_secret()
            .as_bytes()
    }

    /// A warning from the program around the server (the desktop app's startup warnings): a
    /// server event like the server's own.
    pub fn warn(&self, message: impl Into<String>) {
        self.inner.log.event(Level::Warn, message);
    }

    pub fn uptime(&self) -> Duration {
        self.inner.started.elapsed()
    }
}
