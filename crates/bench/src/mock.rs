//! The mock targets: `mock-target` over plain HTTP, and its HTTPS twin for the slow streams.

use std::path::{Path, PathBuf};

use anyhow::Result;
use tokio::process::{Child, Command};

use crate::process::spawn_line;

/// Starts a plain mock target; returns it and its base URL (with `/v1`).
pub async fn start(program: &Path) -> Result<(Child, String)> {
    let (child, addr) = spawn_line(Command::new(program), "listening on ").await?;
    Ok((child, format!("http://{addr}/v1")))
}

/// The HTTPS twin of the mock (HTTP/2 offered), with the CA it wrote for the proxy.
pub struct TlsMock {
    child: Child,
    pub url: String,
    pub ca_file: PathBuf,
    pub ca_pem: Vec<u8>,
}

impl TlsMock {
    pub async fn start(program: &Path) -> Result<Self> {
        let ca_file =
            std::env::temp_dir().join(format!("llm-proxy-bench-ca-{}.pem", std::process::id()));
        let mut command = Command::new(program);
        command.arg("--tls-ca").arg(&ca_file);
        let (child, addr) = spawn_line(command, "listening on ").await?;
        let ca_pem = std::fs::read(&ca_file)?;
        Ok(Self {
            child,
            url: format!("https://{addr}/v1"),
            ca_file,
            ca_pem,
        })
    }

    pub async fn stop(mut self) -> Result<()> {
        self.child.kill().await?;
        let _ = std::fs::remove_file(&self.ca_file);
        Ok(())
    }
}
