//! Turning the proxy on and off: the one place that owns the running server.
//!
//! The server is the core's (`llm_proxy::start`), on the core's one-thread runtime on a thread
//! of its own (`llm_proxy::runtime`), as in the headless server; the window and tray keep
//! Tauri's runtime. Turning it off closes the port at once and lets in-flight requests finish
//! within the grace period; applying new settings is a stop then a start. Every change of state
//! is reported through the `Observer`, which the app turns into the tray's icon and menu and a
//! window event.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, PoisonError, RwLock};

use llm_proxy::config::Config;
use llm_proxy::dashboard::{LiveFeed, LiveUpdate};
use llm_proxy::runtime::OwnThread;
use llm_proxy::state::AppState;
use llm_proxy::{ServerHandle, StartError};
use serde::Serialize;
use tokio::sync::Mutex;

/// What the tray's status line and the window's toggle show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "camelCase")]
pub enum ProxyStatus {
    Stopped,
    #[serde(rename_all = "camelCase")]
    Running {
        /// Where the socket is bound, e.g. `127.0.0.1:3000`.
        address: String,
        port: u16,
        /// What tools are told to use (`http://localhost:3000` unless `PROXY_BASE_URL` says).
        base_url: String,
    },
    #[serde(rename_all = "camelCase")]
    Failed {
        message: String,
        /// The port that was in use, and a free one nearby to offer instead.
        port_in_use: Option<u16>,
        suggested_port: Option<u16>,
    },
}

impl ProxyStatus {
    pub fn is_running(&self) -> bool {
        matches!(self, Self::Running { .. })
    }

    /// The `.../v1` URL tools are told to use, while running.
    pub fn api_base_url(&self) -> Option<String> {
        match self {
            Self::Running { base_url, .. } => Some(format!("{base_url}/v1")),
            _ => None,
        }
    }
}

/// Told about every state change and every live log update.
pub trait Observer: Send + Sync {
    fn status_changed(&self, status: &ProxyStatus);
    fn live(&self, update: LiveUpdate);
}

/// A started server and the task relaying its live feed, which ends with it.
struct Running {
    server: ServerHandle,
    live: tokio::task::JoinHandle<()>,
}

pub struct ProxyController {
    /// Where servers run; `None` only if that thread could not be started, and then they run
    /// on the caller's runtime.
    runtime: Option<OwnThread>,
    running: Mutex<Option<Running>>,
    /// A copy of the latest status, readable without waiting for a start or stop to finish.
    status: RwLock<ProxyStatus>,
    observer: Arc<dyn Observer>,
}

impl ProxyController {
    pub fn new(observer: Arc<dyn Observer>) -> Self {
        let runtime = OwnThread::start()
            .inspect_err(|err| tracing::warn!(error = %err, "no thread of its own for the proxy"))
            .ok();
        Self {
            runtime,
            running: Mutex::new(None),
            status: RwLock::new(ProxyStatus::Stopped),
            observer,
        }
    }

    pub fn status(&self) -> ProxyStatus {
        self.status
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn set_status(&self, status: ProxyStatus) {
        *self.status.write().unwrap_or_else(PoisonError::into_inner) = status.clone();
        self.observer.status_changed(&status);
    }

    /// The running server's state, for the window's data views.
    pub async fn state(&self) -> Option<AppState> {
        self.running
            .lock()
            .await
            .as_ref()
            .map(|running| running.server.state().clone())
    }

    /// Starts the proxy with `config`, stopping the one that runs first. A failure to bind is
    /// reported as the status (with a free port to suggest), not only returned.
    pub async fn start(&self, config: Config) -> ProxyStatus {
        let mut running = self.running.lock().await;
        shut_down(&mut running).await;
        let (host, port) = (config.host, config.port);
        let started = match &self.runtime {
            Some(runtime) => runtime
                .handle()
                .spawn(llm_proxy::start(config))
                .await
                .map_err(|err| err.to_string()),
            None => Ok(llm_proxy::start(config).await),
        };
        let status = match started {
            Err(message) => ProxyStatus::Failed {
                message: format!("the proxy's thread stopped: {message}"),
                port_in_use: None,
                suggested_port: None,
            },
            Ok(Ok(server)) => {
                let status = ProxyStatus::Running {
                    address: server.local_addr().to_string(),
                    port: server.local_addr().port(),
                    base_url: server.base_url().to_owned(),
                };
                let live = self.forward_live(server.state());
                *running = Some(Running { server, live });
                status
            }
            Ok(Err(StartError::PortInUse { .. })) => ProxyStatus::Failed {
                message: format!("port {port} is in use"),
                port_in_use: Some(port),
                suggested_port: free_port_near(host, port),
            },
            Ok(Err(err)) => ProxyStatus::Failed {
                message: err.to_string(),
                port_in_use: None,
                suggested_port: None,
            },
        };
        self.set_status(status.clone());
        status
    }

    /// Reports a configuration that cannot be served (the server was never started).
    pub async fn fail(&self, message: String) -> ProxyStatus {
        shut_down(&mut *self.running.lock().await).await;
        let status = ProxyStatus::Failed {
            message,
            port_in_use: None,
            suggested_port: None,
        };
        self.set_status(status.clone());
        status
    }

    /// Closes the port and waits for in-flight requests (up to the grace period).
    pub async fn stop(&self) -> ProxyStatus {
        shut_down(&mut *self.running.lock().await).await;
        self.set_status(ProxyStatus::Stopped);
        ProxyStatus::Stopped
    }

    /// Relays the server's live feed to the observer until the server stops.
    fn forward_live(&self, state: &AppState) -> tokio::task::JoinHandle<()> {
        let mut feed = LiveFeed::new(state);
        let observer = self.observer.clone();
        tokio::spawn(async move {
            while let Some(update) = feed.next().await {
                observer.live(update);
            }
        })
    }
}

/// Stops the server in `running`, if any: the port closes at once, in-flight requests get the
/// grace period.
async fn shut_down(running: &mut Option<Running>) {
    if let Some(Running { server, live }) = running.take() {
        server.shutdown().await;
        // The feed's sender lives in state that requests may still hold: end the relay here.
        live.abort();
    }
}

/// The first port after `port` that can be bound on `host`, to offer when `port` is taken.
pub fn free_port_near(host: IpAddr, port: u16) -> Option<u16> {
    (port.saturating_add(1)..=port.saturating_add(50))
        .filter(|&p| p != port)
        .find(|&p| std::net::TcpListener::bind(SocketAddr::new(host, p)).is_ok())
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;
    use std::sync::Mutex as StdMutex;

    use super::*;

    #[derive(Default)]
    struct Recorder {
        statuses: StdMutex<Vec<ProxyStatus>>,
        live: StdMutex<Vec<&'static str>>,
    }

    impl Observer for Recorder {
        fn status_changed(&self, status: &ProxyStatus) {
            self.statuses.lock().unwrap().push(status.clone());
        }
        fn live(&self, update: LiveUpdate) {
            self.live.lock().unwrap().push(update.name);
        }
    }

    fn config(port: u16, dir: &std::path::Path) -> Config {
        let mut config = Config::placeholder(port);
        config.data_dir = dir.to_path_buf();
        config
    }

    fn connects(port: u16) -> bool {
        std::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn on_off_and_restart_really_open_and_close_the_port() {
        let dir = tempfile::tempdir().unwrap();
        let recorder = Arc::new(Recorder::default());
        let proxy = ProxyController::new(recorder.clone());
        assert_eq!(proxy.status(), ProxyStatus::Stopped);

        let ProxyStatus::Running { port, address, .. } = proxy.start(config(0, dir.path())).await
        else {
            panic!("not running: {:?}", proxy.status());
        };
        assert_eq!(address, format!("127.0.0.1:{port}"));
        assert!(connects(port));
        assert!(proxy.state().await.is_some());
        // The live feed reaches the observer (its first stats snapshot comes at once).
        tokio::time::timeout(std::time::Duration::from_secs(10), async {
            while !recorder.live.lock().unwrap().contains(&"stats") {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("no live update reached the observer");

        // A restart on another port leaves the first one closed.
        let ProxyStatus::Running { port: second, .. } = proxy.start(config(0, dir.path())).await
        else {
            panic!("not running after restart");
        };
        assert_ne!(port, second);
        assert!(!connects(port), "the old port is still open");
        assert!(connects(second));

        assert_eq!(proxy.stop().await, ProxyStatus::Stopped);
        assert!(!connects(second), "stopped but the port is open");
        assert!(proxy.state().await.is_none());
        let statuses = recorder.statuses.lock().unwrap().clone();
        assert_eq!(statuses.len(), 3);
        assert!(statuses[0].is_running() && statuses[1].is_running());
        assert_eq!(statuses[2], ProxyStatus::Stopped);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_port_in_use_is_a_status_with_a_free_port_to_offer() {
        let dir = tempfile::tempdir().unwrap();
        let taken = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = taken.local_addr().unwrap().port();
        let proxy = ProxyController::new(Arc::new(Recorder::default()));
        let status = proxy.start(config(port, dir.path())).await;
        let ProxyStatus::Failed {
            message,
            port_in_use,
            suggested_port,
        } = status
        else {
            panic!("expected a failure, got {status:?}");
        };
        assert_eq!(message, format!("port {port} is in use"));
        assert_eq!(port_in_use, Some(port));
        let suggested = suggested_port.unwrap();
        assert_ne!(suggested, port);
        assert!(std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, suggested)).is_ok());
    }

    #[test]
    fn status_json_is_what_the_window_reads() {
        let running = ProxyStatus::Running {
            address: "127.0.0.1:3000".into(),
            port: 3000,
            base_url: "http://localhost:3000".into(),
        };
        let json = serde_json::to_value(&running).unwrap();
        assert_eq!(json["state"], "running");
        assert_eq!(json["baseUrl"], "http://localhost:3000");
        let failed = ProxyStatus::Failed {
            message: "port 3000 is in use".into(),
            port_in_use: Some(3000),
            suggested_port: Some(3001),
        };
        let json = serde_json::to_value(&failed).unwrap();
        assert_eq!(json["state"], "failed");
        assert_eq!(json["suggestedPort"], 3001);
    }
}
