//! The headless binary as a user runs it: flags and environment, `.env`, the banner, mistakes
//! reported in one line, and a clean exit on SIGTERM.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "in tests a failure should panic"
)]

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::mpsc;
use std::time::Duration;

use common::binary::*;

/// The status of one plain HTTP/1.0 GET: enough to see the server answer, with no client crate.
fn get(addr: &str, path: &str, token: &str) -> u16 {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

#[test]
fn help_lists_every_variable() {
    let output = Command::new(BIN).arg("--help").output().unwrap();
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for var in [
        "PROXY_PORT",
        "PROXY_HOST",
        "PROXY_BASE_URL",
        "PROXY_ACCESS_TOKEN",
        "TARGET_ENDPOINT",
        "USE_PLACEHOLDER_MODE",
        "TARGET_API_KEY",
        "OAUTH_TOKEN_ENDPOINT",
        "OAUTH_CLIENT_ID",
        "OAUTH_CLIENT_SECRET",
        "OAUTH_SCOPE",
        "OAUTH_REFRESH_BUFFER_MINUTES",
        "PROXY_DATA_DIR",
        "TARGET_CONNECT_TIMEOUT_SECONDS",
        "TARGET_TIMEOUT_SECONDS",
        "STREAM_IDLE_TIMEOUT_SECONDS",
        "MAX_REQUEST_BODY_MB",
        "SHUTDOWN_GRACE_SECONDS",
        "OAUTH_AUDIENCE",
        "OAUTH_CLIENT_AUTH",
        "TARGET_CA_CERT",
        "LOG_BODIES",
        "LOG_BODY_MAX_KB",
        "LOG_MAX_ENTRIES",
        "LOG_MAX_AGE_DAYS",
        "METRICS_PUBLIC",
        "PROXY_ALLOWED_HOSTS",
        "PROXY_CORS_ORIGINS",
        "PROXY_MAX_CONCURRENCY",
        "LOG_REQUESTS",
    ] {
        assert!(help.contains(var), "--help does not mention {var}");
    }
}

#[test]
fn starts_in_placeholder_mode_with_a_generated_token_shown_in_full() {
    let dir = temp_dir("default");
    let running = Running::start(command(&dir));
    let token = running
        .field("Access token")
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    assert!(
        token.starts_with("llm-proxy-") && token.len() == "llm-proxy-".len() + 64,
        "{token}"
    );
    assert!(running.field("Mode").starts_with("placeholder"));
    let addr = running.addr();
    assert_eq!(
        running.field("API base URL"),
        format!("http://localhost:{}/v1", addr.rsplit(':').next().unwrap())
    );
    assert_eq!(get(&addr, "/v1/models", &token), 200);
    assert_eq!(get(&addr, "/v1/models", "wrong"), 401);
    let output = running.terminate();
    assert!(output.status.success(), "exit status {:?}", output.status);
}

#[test]
fn dotenv_is_read_and_the_real_environment_wins() {
    let dir = temp_dir("dotenv");
    std::fs::write(
        dir.join(".env"),
        "# comment\nPROXY_ACCESS_TOKEN=token-from-dotenv-file\nPROXY_BASE_URL=http://from-dotenv.test\n",
    )
    .unwrap();
    let mut command = command(&dir);
    command.env("PROXY_BASE_URL", "http://from-environment.test:8080");
    let running = Running::start(command);
    assert_eq!(
        running.field("API base URL"),
        "http://from-environment.test:8080/v1"
    );
    // A supplied token is masked in the banner, and works.
    let shown = running.field("Access token");
    assert!(!shown.contains("token-from-dotenv-file"), "{shown}");
    assert_eq!(
        get(&running.addr(), "/v1/models", "token-from-dotenv-file"),
        200
    );
    assert!(running.terminate().status.success());
}

#[test]
fn forwarding_mode_names_the_host_and_auth_kind() {
    let dir = temp_dir("forwarding");
    let mut command = command(&dir);
    command
        .env("TARGET_ENDPOINT", "https://llm.corp.example/v1")
        .env("TARGET_API_KEY", "sk-banner-secret");
    let running = Running::start(command);
    assert_eq!(
        running.field("Mode"),
        "forwarding to llm.corp.example with api-key auth"
    );
    assert!(!running.banner.concat().contains("sk-banner-secret"));
    let output = running.terminate();
    assert!(!String::from_utf8_lossy(&output.stderr).contains("sk-banner-secret"));
}

/// Runs the binary with a bad setting and returns its exit code and stderr.
fn fails_with(vars: &[(&str, &str)]) -> (i32, String) {
    let dir = temp_dir("bad");
    let output = command(&dir).envs(vars.iter().copied()).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        !stderr.contains("panicked") && !stderr.contains("backtrace"),
        "{stderr}"
    );
    (output.status.code().unwrap_or(-1), stderr)
}

#[test]
fn configuration_mistakes_exit_non_zero_with_a_line_naming_the_variable() {
    for (vars, needle) in [
        (vec![("PROXY_PORT", "eighty")], "PROXY_PORT"),
        (vec![("TARGET_ENDPOINT", "not a url")], "TARGET_ENDPOINT"),
        (vec![("TARGET_ENDPOINT", "ftp://x/v1")], "TARGET_ENDPOINT"),
        (
            vec![("TARGET_ENDPOINT", "https://svc:hunter2-url-secret@t/v1")],
            "TARGET_ENDPOINT",
        ),
        (
            vec![("TARGET_TIMEOUT_SECONDS", "-1")],
            "TARGET_TIMEOUT_SECONDS",
        ),
        (vec![("MAX_REQUEST_BODY_MB", "lots")], "MAX_REQUEST_BODY_MB"),
        (vec![("PROXY_CORS_ORIGINS", "*")], "PROXY_CORS_ORIGINS"),
        (
            vec![(
                "PROXY_CORS_ORIGINS",
                "https://ok.example,https://bad.example/path",
            )],
            "PROXY_CORS_ORIGINS",
        ),
        (
            vec![
                ("TARGET_ENDPOINT", "http://t/v1"),
                ("OAUTH_CLIENT_ID", "id"),
            ],
            "OAUTH_TOKEN_ENDPOINT, OAUTH_CLIENT_SECRET",
        ),
    ] {
        let (code, stderr) = fails_with(&vars);
        assert_ne!(code, 0, "{vars:?}");
        assert!(!stderr.contains("hunter2-url-secret"), "{stderr}");
        let first = stderr.lines().next().unwrap_or_default();
        assert!(
            first.starts_with("error:") && first.contains(needle),
            "{vars:?}: {stderr}"
        );
    }
}

#[test]
fn a_port_in_use_is_named_with_how_to_choose_another() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let (code, stderr) = fails_with(&[("PROXY_PORT", &port)]);
    assert_ne!(code, 0);
    assert!(
        stderr.contains(&format!("port {port}")) && stderr.contains("PROXY_PORT"),
        "{stderr}"
    );
}

#[test]
fn a_corporate_http_proxy_from_the_environment_is_used() {
    use std::io::{Read, Write};
    // A stand-in for the corporate proxy: it records the request line and answers a model list.
    let corporate = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let corporate_addr = corporate.local_addr().unwrap();
    let (seen_tx, seen_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let (mut socket, _) = corporate.accept().unwrap();
        let mut buf = [0u8; 4096];
        let n = socket.read(&mut buf).unwrap();
        let _ = seen_tx.send(
            String::from_utf8_lossy(&buf[..n])
                .lines()
                .next()
                .unwrap_or_default()
                .to_owned(),
        );
        let body = r#"{"object":"list","data":[]}"#;
        let _ = write!(
            socket,
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
    });
    let dir = temp_dir("http-proxy");
    let mut command = command(&dir);
    command
        .env("TARGET_ENDPOINT", "http://llm.corp.invalid/v1")
        .env("PROXY_ACCESS_TOKEN", "corp-proxy-test-token")
        .env("HTTP_PROXY", format!("http://{corporate_addr}"));
    let running = Running::start(command);
    assert_eq!(
        get(&running.addr(), "/v1/models", "corp-proxy-test-token"),
        200
    );
    let request_line = seen_rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(
        request_line,
        "GET http://llm.corp.invalid/v1/models HTTP/1.1"
    );
    assert!(running.terminate().status.success());
}

#[test]
fn listening_beyond_loopback_is_announced() {
    let dir = temp_dir("exposed");
    let mut command = command(&dir);
    command.env("PROXY_HOST", "0.0.0.0");
    let running = Running::start(command);
    let banner = running.banner.join("\n");
    assert!(banner.contains("reachable from the network"), "{banner}");
    assert!(running.terminate().status.success());
}

/// The body of one plain HTTP/1.0 GET.
fn get_body(addr: &str, path: &str, token: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default()
}

#[test]
fn a_kill_during_heavy_logging_leaves_a_database_that_opens() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let dir = temp_dir("sigkill");
    let start = || {
        let mut command = command(&dir);
        command.env("PROXY_ACCESS_TOKEN", "kill-test-token");
        Running::start(command)
    };
    let mut running = start();
    let addr = running.addr();
    let done = Arc::new(AtomicUsize::new(0));
    // Told once 300 calls are answered; dropped unsent if the load stops before that.
    let (reached, heavy) = mpsc::channel::<()>();
    let load = {
        let done = done.clone();
        std::thread::spawn(move || {
            for _ in 0..2000 {
                if std::panic::catch_unwind(|| get(&addr, "/v1/models", "kill-test-token")).is_err()
                {
                    break;
                }
                if done.fetch_add(1, Ordering::Relaxed) + 1 == 300 {
                    let _ = reached.send(());
                }
            }
        })
    };
    match heavy.recv_timeout(Duration::from_secs(120)) {
        Ok(()) => {}
        Err(mpsc::RecvTimeoutError::Timeout) => panic!(
            "only {} calls answered in 120 s, not the 300 to kill the proxy under",
            done.load(Ordering::Relaxed)
        ),
        Err(mpsc::RecvTimeoutError::Disconnected) => panic!(
            "the proxy stopped answering after {} calls, before the 300 to kill it under",
            done.load(Ordering::Relaxed)
        ),
    }
    Command::new("kill")
        .args(["-KILL", &running.child.id().to_string()])
        .status()
        .unwrap();
    let _ = running.child.wait();
    let _ = load.join();

    let restarted = start();
    let addr = restarted.addr();
    let health: serde_json::Value = serde_json::from_str(&get_body(&addr, "/health", "")).unwrap();
    assert_eq!(health["logStore"]["ok"], true, "{health}");
    let calls: serde_json::Value = serde_json::from_str(&get_body(
        &addr,
        "/api/logs/api-calls?limit=1000",
        "kill-test-token",
    ))
    .unwrap();
    assert!(
        !calls["data"].as_array().unwrap().is_empty(),
        "calls written before the kill are there"
    );
    assert!(restarted.terminate().status.success());
}

/// Every variable `--help` knows is documented in docs/configuration.md and in `.env.example`,
/// and every variable the documentation's table names exists.
#[test]
fn the_docs_and_help_name_the_same_variables() {
    let help = String::from_utf8(Command::new(BIN).arg("--help").output().unwrap().stdout).unwrap();
    let from_help: Vec<String> = help
        .split("[env: ")
        .skip(1)
        .filter_map(|rest| rest.split(['=', ']']).next())
        .map(str::to_owned)
        .collect();
    assert!(from_help.len() > 25, "{from_help:?}");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let docs = std::fs::read_to_string(root.join("docs/configuration.md")).unwrap();
    let example = std::fs::read_to_string(root.join(".env.example")).unwrap();
    for var in &from_help {
        assert!(
            docs.contains(&format!("`{var}`")) || docs.contains(&format!("{var},")),
            "docs/configuration.md does not document {var}"
        );
        assert!(
            example.contains(&format!("{var}=")),
            ".env.example does not list {var}"
        );
    }
    // Variables in the documentation's table that are not flags are read elsewhere: say which.
    let not_flags = [
        "LOG_LEVEL",
        "HTTPS_PROXY",
        "HTTP_PROXY",
        "ALL_PROXY",
        "NO_PROXY",
    ];
    for line in docs.lines().filter(|l| l.starts_with("| `")) {
        for name in line.split('`').skip(1).step_by(2) {
            let is_var =
                name.chars().all(|c| c.is_ascii_uppercase() || c == '_') && name.contains('_');
            if is_var && !not_flags.contains(&name) {
                assert!(
                    from_help.iter().any(|v| v == name),
                    "docs/configuration.md names {name}, which --help does not know"
                );
            }
        }
    }
}
