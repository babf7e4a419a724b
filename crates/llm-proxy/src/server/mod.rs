//! Builds the router from a [`Config`] and serves it: `start` binds and returns a
//! [`ServerHandle`] that reports the bound address and stops gracefully.
//!
//! Nothing here is global. Each server owns its state, its HTTP client and its tasks, so
//! several can run in one process (tests, or the desktop app restarting on a new port).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::middleware;
use axum::routing::{any, get, post};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpSocket};
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::auth::{require_access_token, require_dashboard_access};
use crate::clock::{Clock, SystemClock};
use crate::config::{Config, Limits};
use crate::connection::Protocols;
use crate::error::{method_not_allowed, not_found};
use crate::guard;
use crate::logs::Level;
use crate::routes::{anthropic, dashboard, health, openai, responses};
use crate::state::AppState;
use crate::timed_body::TimedBody;
use crate::ui;
use crate::upstream::BuildError;

use self::recorder::record_call;

mod recorder;

/// The whole HTTP surface. Public so tests can drive it without a socket.
pub fn router(state: AppState) -> Router {
    // Layers wrap from the inside out. On `/v1`: the recorder is outermost, so calls refused
    // for a missing token are recorded too; the token check comes next; a request slot is
    // taken only once the caller is known. The token layer also covers the fallback, so an
    // unknown `/v1` path reveals nothing to a client without the token.
    let v1 = Router::new()
        .route("/chat/completions", post(openai::chat_completions))
        .route("/completions", post(openai::completions))
        .route("/embeddings", post(openai::embeddings))
        .route("/models", get(openai::list_models))
        .route("/responses", post(responses::create))
        .route(
            "/responses/{id}",
            get(responses::get).delete(responses::delete),
        )
        .route("/responses/{id}/input_items", get(responses::input_items))
        .route("/messages", post(anthropic::messages))
        .route("/messages/count_tokens", post(anthropic::count_tokens))
        .route("/v1/messages", any(anthropic::doubled_v1))
        .route("/v1/messages/count_tokens", any(anthropic::doubled_v1))
        .route(
            "/models/{model}",
            get(openai::get_model).delete(openai::pass_through),
        )
        .fallback(any(openai::pass_through))
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            guard::limit_concurrency,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            require_access_token,
        ))
        .layer(middleware::from_fn(anthropic::anthropic_errors));
    // Always recorded: with `LOG_REQUESTS=false` calls are counted, not kept.
    let v1 = v1.layer(middleware::from_fn_with_state(state.clone(), record_call));
    let api = Router::new()
        .route("/config", get(dashboard::config))
        .route("/logs", get(dashboard::logs).delete(dashboard::clear_logs))
        .route("/logs/api-calls", get(dashboard::api_calls))
        .route("/logs/api-calls/{id}", get(dashboard::api_call))
        .route("/logs/server-events", get(dashboard::server_events))
        .route("/stats", get(dashboard::stats))
        .route("/events", get(dashboard::events))
        .route("/logout", post(dashboard::logout))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            require_dashboard_access,
        ))
        // Logging in is the one call that cannot need a session.
        .route("/login", post(dashboard::login))
        .route("/session", get(dashboard::session));
    let cors = guard::cors(&state.config().access.cors_origins);
    let app = Router::new()
        .route("/health", get(health::health))
        .route("/metrics", get(dashboard::metrics))
        .nest("/v1", v1)
        .nest("/api", api)
        .fallback(ui::fallback)
        .method_not_allowed_fallback(method_not_allowed)
        // Every request, the dashboard and `/health` included, must name this machine.
        .layer(middleware::from_fn_with_state(
            state.clone(),
            guard::check_host,
        ))
        .with_state(state);
    match cors {
        Some(cors) => app.layer(cors),
        None => app,
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(
        "port {port} on {host} is already in use: stop the program using it, or choose another port \
         with PROXY_PORT (or --port; 0 picks a free one)"
    )]
    PortInUse { host: std::net::IpAddr, port: u16 },
    #[error("cannot listen on {host}:{port}: {source}")]
    Bind {
        host: std::net::IpAddr,
        port: u16,
        source: std::io::Error,
    },
    #[error("cannot create the HTTP client for the target: {0}")]
    Client(#[from] BuildError),
}

/// A running server. Dropping it stops the server too (without waiting), so a test or a
/// restart can never leave one behind.
pub struct ServerHandle {
    local_addr: SocketAddr,
    state: AppState,
    base_url: String,
    shutdown: CancellationToken,
    task: JoinHandle<()>,
}

impl ServerHandle {
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The server's shared state, for callers that show its logs and stats without going
    /// through HTTP (the desktop window's commands).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// The URL users are told to use (`PROXY_BASE_URL`, or `http://localhost:<bound port>`).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Stops accepting connections, lets in-flight requests and streams finish within the
    /// configured grace period, then closes whatever is left.
    pub async fn shutdown(mut self) {
        self.shutdown.cancel();
        let _ = (&mut self.task).await;
    }

    /// Resolves when the server has stopped, whoever stopped it.
    pub async fn stopped(&mut self) {
        let _ = (&mut self.task).await;
    }

    /// A token that stops the server when cancelled (a signal handler, a tray menu).
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Binds `config.host:config.port` and starts serving.
pub async fn start(config: Config) -> Result<ServerHandle, StartError> {
    let (host, port) = (config.host, config.port);
    let listener = bind(SocketAddr::new(host, port)).map_err(|source| match source.kind() {
        std::io::ErrorKind::AddrInUse => StartError::PortInUse { host, port },
        _ => StartError::Bind { host, port, source },
    })?;
    serve(listener, config)
}

/// Connection attempts the kernel holds until they are accepted. Tools that open many
/// streams at once overflow tokio's default of 1024, and a dropped attempt is retried by the
/// client only a second later; the kernel caps this at `net.core.somaxconn`.
const ACCEPT_BACKLOG: u32 = 4096;

/// A listener like `TcpListener::bind`'s, with a longer accept queue.
fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    // As `TcpListener::bind` does on Unix: a restarted proxy need not wait out TIME_WAIT. (On
    // Windows the option would let another program take the port.)
    #[cfg(not(windows))]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(ACCEPT_BACKLOG)
}

/// Serves on a listener the caller bound (tests bind `127.0.0.1:0` first).
pub fn serve(listener: TcpListener, config: Config) -> Result<ServerHandle, StartError> {
    serve_with_clock(listener, config, Arc::new(SystemClock))
}

/// [`serve`] with the clock the token source reads, so tests can move time.
pub fn serve_with_clock(
    listener: TcpListener,
    config: Config,
    clock: Arc<dyn Clock>,
) -> Result<ServerHandle, StartError> {
    let local_addr = listener.local_addr().map_err(|source| StartError::Bind {
        host: config.host,
        port: config.port,
        source,
    })?;
    let base_url = config.public_base_url(local_addr.port());
    let limits = config.limits.clone();
    let state = AppState::new(config, clock, local_addr)?;
    let shutdown = state.shutdown_token().clone();
    let cut_off = state.cut_off_token().clone();
    // The token refresher lives exactly as long as the server. It starts before the first
    // request, so the token is usually there when that request comes.
    let refresher = state
        .upstream()
        .and_then(|up| up.token_source())
        .map(|source| tokio::spawn(source.clone().run(shutdown.clone())));
    let log = state.log().clone();
    log.event(Level::Info, startup_summary(state.config(), &base_url));
    let app = router(state.clone());
    let stop = shutdown.clone();
    let task = tokio::spawn(async move {
        accept_loop(listener, app, stop, cut_off, limits).await;
        if let Some(refresher) = refresher {
            refresher.abort();
        }
        log.event(Level::Info, "proxy stopped");
        log.close().await;
    });
    Ok(ServerHandle {
        local_addr,
        state,
        base_url,
        shutdown,
        task,
    })
}

/// The effective configuration, without secrets, for the server events.
fn startup_summary(config: &Config, base_url: &str) -> String {
    let limits = &config.limits;
    format!(
        "proxy started at {base_url}/v1: {}; limits: connect {} s, request {} s, stream idle {} s, body {} MB, \
         shutdown grace {} s; logs in {} ({}; keep {} entries, {} days)",
        config.mode_description(),
        limits.connect_timeout.as_secs(),
        limits.request_timeout.as_secs(),
        limits.stream_idle_timeout.as_secs(),
        limits.max_request_body_bytes / (1024 * 1024),
        limits.shutdown_grace.as_secs(),
        config.data_dir.display(),
        if config.logging.bodies {
            "with bodies"
        } else {
            "metadata only"
        },
        config.logging.max_entries,
        config.logging.max_age.as_secs() / 86_400,
    )
}

/// How long streams ended at the grace's end get to write their last event.
const CUT_OFF_FLUSH: Duration = Duration::from_secs(1);

/// Room for a request's headers (HTTP/1 read buffer, HTTP/2 header list).
const MAX_HEADER_BYTES: usize = 64 * 1024;

/// Accepts connections until shutdown, each served on its own task. The tasks live in a
/// `JoinSet` owned here, so that once the grace period is over they can all be ended: no
/// connection outlives its server.
async fn accept_loop(
    listener: TcpListener,
    app: Router,
    shutdown: CancellationToken,
    cut_off: CancellationToken,
    limits: Limits,
) {
    let grace = limits.shutdown_grace;
    // A client gets this long to send its headers, and this much room for them: slowloris
    // and giant-header attacks end here, before any of our code runs.
    let protocols = Arc::new(Protocols::new(MAX_HEADER_BYTES, limits.header_read_timeout));
    let body_idle_timeout = limits.body_idle_timeout;
    let graceful = GracefulShutdown::new();
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    // Streams are many small writes; Nagle would hold each one back.
                    let _ = stream.set_nodelay(true);
                    // The client's address, for the per-address limit on failed logins.
                    let app = app.clone().map_request(move |mut request: axum::extract::Request<hyper::body::Incoming>| {
                        request.extensions_mut().insert(ConnectInfo(peer));
                        request.map(|body| TimedBody::new(body, body_idle_timeout))
                    });
                    let protocols = protocols.clone();
                    let watcher = graceful.watcher();
                    let shutdown = shutdown.clone();
                    connections.spawn(async move {
                        protocols.serve(stream, app, watcher, &shutdown).await;
                    });
                }
                Err(err) => {
                    // Out of file descriptors and the like: pause instead of spinning.
                    tracing::warn!(error = %err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    let finished = graceful.shutdown();
    tokio::pin!(finished);
    tokio::select! {
        () = &mut finished => tracing::debug!("all connections finished"),
        () = tokio::time::sleep(grace) => {
            tracing::warn!(open = connections.len(), "shutdown grace period over; closing remaining connections");
            // Relayed streams end with an error event and a proper end; the rest are cut.
            cut_off.cancel();
            let _ = tokio::time::timeout(CUT_OFF_FLUSH, &mut finished).await;
        }
    }
    connections.abort_all();
    while connections.join_next().await.is_some() {}
}
