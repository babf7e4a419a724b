//! Child processes: starting one and waiting for its ready line, and reading its memory and CPU
//! time from /proc.

use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Starts a program and waits for the stdout line with `marker`; returns what follows it.
pub async fn spawn_line(mut command: Command, marker: &str) -> Result<(Child, String)> {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()?;
    let stdout = child.stdout.take().context("stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let found = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await? {
            if let Some((_, rest)) = line.split_once(marker) {
                return Ok::<_, anyhow::Error>(rest.trim().to_owned());
            }
        }
        bail!("{marker:?} never printed")
    })
    .await??;
    // Keep draining stdout so the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok((child, found))
}

/// The highest RSS (kB) seen every 50 ms until `sampling` is cleared.
pub async fn peak_rss(pid: u32, sampling: Arc<AtomicBool>) -> Result<u64> {
    let mut peak = 0;
    while sampling.load(Ordering::Relaxed) {
        peak = peak.max(rss_kb(pid)?);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(peak.max(rss_kb(pid)?))
}

pub fn rss_kb(pid: u32) -> Result<u64> {
    status_kb(pid, "VmRSS:")
}

/// The most memory the process has held since it started.
pub fn peak_rss_so_far(pid: u32) -> Result<u64> {
    status_kb(pid, "VmHWM:")
}

/// A kB figure from /proc/<pid>/status.
fn status_kb(pid: u32, field: &str) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .with_context(|| format!("no {field}"))?;
    Ok(line
        .split_whitespace()
        .nth(1)
        .context(field.to_owned())?
        .parse()?)
}

/// User plus system CPU seconds of a process, from /proc/<pid>/stat.
pub fn cpu_seconds(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may hold spaces) start at ") ".
    let rest = stat.rsplit_once(") ").context("stat")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>()? + fields[12].parse::<u64>()?;
    Ok(ticks as f64 / clock_ticks())
}

fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}
