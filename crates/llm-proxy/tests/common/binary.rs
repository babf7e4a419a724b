//! The headless binary run as a user runs it: its own environment, its banner, SIGTERM.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub const BIN: &str = env!("CARGO_BIN_EXE_llm-proxy");

pub fn command(dir: &Path) -> Command {
    let mut command = Command::new(BIN);
    command
        .current_dir(dir)
        .env_clear()
        .env("PROXY_PORT", "0")
        .env("PROXY_DATA_DIR", dir.join("data"));
    command
}

pub fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("llm-proxy-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A running binary and its banner lines.
pub struct Running {
    pub child: Child,
    pub banner: Vec<String>,
}

impl Running {
    pub fn start(mut command: Command) -> Self {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut banner = Vec::new();
        while !banner.iter().any(|l: &String| l.contains("Listening on:")) {
            let line = rx
                .recv_timeout(Duration::from_secs(30))
                .expect("no banner from llm-proxy");
            banner.push(line);
        }
        Self { child, banner }
    }

    pub fn field(&self, name: &str) -> String {
        let line = self
            .banner
            .iter()
            .find(|l| l.trim_start().starts_with(name))
            .unwrap();
        line.split_once(':').unwrap().1.trim().to_owned()
    }

    pub fn addr(&self) -> String {
        self.field("Listening on")
    }

    pub fn terminate(mut self) -> std::process::Output {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        let (tx, rx) = mpsc::channel();
        let child = std::mem::replace(&mut self.child, Command::new("true").spawn().unwrap());
        std::thread::spawn(move || {
            let _ = tx.send(child.wait_with_output());
        });
        rx.recv_timeout(Duration::from_secs(30))
            .expect("llm-proxy did not exit on SIGTERM")
            .unwrap()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}
