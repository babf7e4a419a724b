//! The proxy under test: a `llm-proxy` process started for one part of the benchmark, with its
//! own data directory, optionally under `--wrap`.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tokio::process::{Child, Command};

use crate::process::spawn_line;

/// The access token every benchmark proxy is started with and every client sends.
pub const TOKEN: &str = "bench-access-token";

/// `--wrap`, split into words; set once at start.
static WRAP: OnceLock<Vec<String>> = OnceLock::new();

pub fn set_wrap(wrap: Option<&str>) {
    if let Some(wrap) = wrap {
        let _ = WRAP.set(wrap.split_whitespace().map(str::to_owned).collect());
    }
}

/// How a proxy is started: which binary, against which target, with which settings.
#[derive(Debug, Clone)]
pub struct Launch {
    /// The `llm-proxy` binary: this build's, or `--baseline`.
    pub program: PathBuf,
    pub target: String,
    pub logging: bool,
    /// The CA of an HTTPS target (`TARGET_CA_CERT`).
    pub ca_file: Option<PathBuf>,
    /// `TARGET_API_KEY`: with it the proxy sends it and masks it in the target's answers.
    pub target_api_key: Option<String>,
    /// `TARGET_API` (the proxy's default, `openai`, when unset).
    pub target_api: Option<String>,
}

impl Launch {
    pub fn new(program: &Path, target: &str, logging: bool) -> Self {
        Self {
            program: program.to_owned(),
            target: target.to_owned(),
            logging,
            ca_file: None,
            target_api_key: None,
            target_api: None,
        }
    }

    pub fn ca_file(mut self, ca_file: &Path) -> Self {
        self.ca_file = Some(ca_file.to_owned());
        self
    }

    pub fn target_api_key(mut self, key: &str) -> Self {
        self.target_api_key = Some(key.to_owned());
        self
    }

    pub fn target_api(mut self, api: &str) -> Self {
        self.target_api = Some(api.to_owned());
        self
    }
}

/// A proxy process started for one part of the benchmark, with its own data directory.
pub struct Proxy {
    child: Child,
    pub pid: u32,
    pub url: String,
    pub data_dir: PathBuf,
}

impl Proxy {
    pub async fn start(launch: &Launch) -> Result<Self> {
        static STARTED: AtomicU64 = AtomicU64::new(0);
        let data_dir = std::env::temp_dir().join(format!(
            "llm-proxy-bench-{}-{}",
            std::process::id(),
            STARTED.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&data_dir);
        Self::start_in(launch, data_dir).await
    }

    /// Starts and waits until it answers `/v1/models`.
    pub async fn start_ready(launch: &Launch, client: &reqwest::Client) -> Result<Self> {
        let proxy = Self::start(launch).await?;
        wait_for_models(client, &proxy.url).await?;
        Ok(proxy)
    }

    /// Starts on `data_dir` as it is: a restart keeps the request log.
    pub async fn start_in(launch: &Launch, data_dir: PathBuf) -> Result<Self> {
        let mut command = match WRAP.get().and_then(|w| w.split_first()) {
            Some((tool, tool_args)) => {
                let mut command = Command::new(tool);
                command.args(tool_args).arg(&launch.program);
                command
            }
            None => Command::new(&launch.program),
        };
        command
            .env_clear()
            .env("PROXY_PORT", "0")
            .env("PROXY_ACCESS_TOKEN", TOKEN)
            .env("TARGET_ENDPOINT", &launch.target)
            .env("PROXY_DATA_DIR", &data_dir)
            .env("LOG_LEVEL", "error")
            .env("LOG_REQUESTS", launch.logging.to_string());
        if let Some(ca_file) = &launch.ca_file {
            command.env("TARGET_CA_CERT", ca_file);
        }
        if let Some(key) = &launch.target_api_key {
            command.env("TARGET_API_KEY", key);
        }
        if let Some(api) = &launch.target_api {
            command.env("TARGET_API", api);
        }
        let (child, addr) = spawn_line(command, "Listening on:")
            .await
            .with_context(|| format!("starting {}", launch.program.display()))?;
        let pid = child.id().context("proxy pid")?;
        Ok(Self {
            child,
            pid,
            url: format!("http://{}/v1", addr.trim()),
            data_dir,
        })
    }

    /// Stops the proxy the way a user does (SIGTERM: the log writes what it holds) and keeps
    /// its data directory.
    pub async fn terminate(&mut self) -> Result<()> {
        std::process::Command::new("kill")
            .arg("-TERM")
            .arg(self.pid.to_string())
            .status()?;
        self.child.wait().await?;
        Ok(())
    }

    pub async fn stop(&mut self) -> Result<()> {
        if WRAP.get().is_some() {
            // A profiler writes its output only when the proxy exits on its own.
            let _ = std::process::Command::new("kill")
                .arg("-TERM")
                .arg(self.pid.to_string())
                .status();
            let _ = self.child.wait().await;
        }
        self.child.kill().await?;
        let _ = std::fs::remove_dir_all(&self.data_dir);
        Ok(())
    }
}

/// Waits until the proxy answers `/v1/models` (the caller times from the spawn).
pub async fn wait_for_models(client: &reqwest::Client, proxied: &str) -> Result<()> {
    let started = Instant::now();
    loop {
        let ok = client
            .get(format!("{proxied}/models"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if ok {
            return Ok(());
        }
        if started.elapsed() > Duration::from_secs(10) {
            bail!("the proxy never answered /v1/models");
        }
        tokio::task::yield_now().await;
    }
}
