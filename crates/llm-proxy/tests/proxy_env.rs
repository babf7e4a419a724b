//! The target reached through the corporate proxy the environment names (HTTPS_PROXY,
//! HTTP_PROXY, ALL_PROXY, NO_PROXY, read as curl reads them). The binary runs with an
//! environment of its own, as a user starts it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "in tests a failure should panic"
)]

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use common::binary::{Running, command, temp_dir};
use common::pki::{pki, tls_server};
use common::*;
use reqwest::StatusCode;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A corporate proxy on 127.0.0.1:0: CONNECT tunnels, and plain-HTTP requests in absolute
/// form. Every host name is 127.0.0.1 to it, so a target named `llm.corp.test` can only be
/// reached through it. It records the head of the first request on each connection.
struct HttpProxy {
    addr: SocketAddr,
    heads: Arc<Mutex<Vec<String>>>,
}

impl HttpProxy {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let heads = Arc::new(Mutex::new(Vec::new()));
        let seen = heads.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(relay(client, seen.clone()));
            }
        });
        Self { addr, heads }
    }

    fn heads(&self) -> Vec<String> {
        self.heads.lock().unwrap().clone()
    }
}

async fn relay(mut client: TcpStream, heads: Arc<Mutex<Vec<String>>>) {
    let mut read = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        let n = client.read(&mut buf).await.unwrap_or(0);
        if n == 0 {
            return;
        }
        read.extend_from_slice(&buf[..n]);
        if let Some(end) = read.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
    };
    let head = String::from_utf8_lossy(&read[..head_end]).into_owned();
    heads.lock().unwrap().push(head.clone());
    let tunnel = head.starts_with("CONNECT ");
    let target = head.split_whitespace().nth(1).unwrap_or_default();
    let authority = if tunnel {
        target
    } else {
        target
            .strip_prefix("http://")
            .and_then(|rest| rest.split('/').next())
            .unwrap_or_default()
    };
    let port = authority.rsplit(':').next().unwrap_or("80");
    let Ok(mut upstream) = TcpStream::connect(format!("127.0.0.1:{port}")).await else {
        return;
    };
    if tunnel {
        client
            .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
            .await
            .unwrap();
        upstream.write_all(&read[head_end..]).await.unwrap();
    } else {
        upstream.write_all(&read).await.unwrap();
    }
    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
}

/// The binary with `env` added to a bare environment, answering one chat completion.
async fn completion_through(name: &str, env: &[(&str, &str)]) -> (StatusCode, String) {
    let dir = temp_dir(name);
    let mut command = command(&dir);
    command.env("PROXY_ACCESS_TOKEN", ACCESS_TOKEN);
    for (key, value) in env {
        command.env(key, value);
    }
    let running = tokio::task::spawn_blocking(move || Running::start(command))
        .await
        .unwrap();
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let response = client
        .post(format!("http://{}/v1/chat/completions", running.addr()))
        .bearer_auth(ACCESS_TOKEN)
        .json(&json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    let answer = (response.status(), response.text().await.unwrap());
    drop(running);
    let _ = std::fs::remove_dir_all(&dir);
    answer
}

#[tokio::test]
async fn the_target_is_reached_through_the_proxy_the_environment_names() {
    let proxy = HttpProxy::start().await;
    let proxy_url = format!("http://{}", proxy.addr);

    // A plain-HTTP target: requests go to the proxy with the target's full URL, and carry the
    // proxy's credentials from its URL.
    let target = MockTarget::start().await;
    let port = target.addr.port();
    let with_credentials = format!("http://corp-user:corp-pass@{}", proxy.addr);
    let (status, body) = completion_through(
        "proxy-http",
        &[
            (
                "TARGET_ENDPOINT",
                &format!("http://llm.corp.test:{port}/v1"),
            ),
            ("HTTP_PROXY", &with_credentials),
            ("HTTPS_PROXY", "http://127.0.0.1:9"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let head = proxy.heads().pop().unwrap();
    assert!(
        head.starts_with(&format!(
            "POST http://llm.corp.test:{port}/v1/chat/completions HTTP/1.1\r\n"
        )),
        "{head}"
    );
    // base64("corp-user:corp-pass")
    assert!(
        head.to_ascii_lowercase()
            .contains("proxy-authorization: basic y29ycc11c2vyomnvcnatcgfzcw=="),
        "{head}"
    );

    // An HTTPS target: TLS with the target inside the proxy's CONNECT tunnel, its certificate
    // checked against TARGET_CA_CERT as on a direct connection.
    let pki = pki();
    let base = tls_server(&pki).await;
    let ca = std::env::temp_dir().join(format!("llm-proxy-env-ca-{}.pem", std::process::id()));
    std::fs::write(&ca, &pki.ca_pem).unwrap();
    let (status, body) = completion_through(
        "proxy-https",
        &[
            ("TARGET_ENDPOINT", &format!("{base}/v1")),
            ("TARGET_CA_CERT", ca.to_str().unwrap()),
            ("https_proxy", &proxy_url),
        ],
    )
    .await;
    let _ = std::fs::remove_file(&ca);
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, fixture("openai/chat-completion.json"));
    let authority = base.strip_prefix("https://").unwrap();
    let head = proxy.heads().pop().unwrap();
    assert!(
        head.starts_with(&format!("CONNECT {authority} HTTP/1.1\r\n")),
        "{head}"
    );

    // NO_PROXY naming the target's host: straight there, the proxy not asked.
    let asked = proxy.heads().len();
    let (status, body) = completion_through(
        "proxy-none",
        &[
            ("TARGET_ENDPOINT", &target.url()),
            ("HTTP_PROXY", &proxy_url),
            ("NO_PROXY", "example.test,127.0.0.1"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(proxy.heads().len(), asked);

    // A SOCKS proxy is not spoken: said at startup, with what to do.
    let dir = temp_dir("proxy-socks");
    let output = command(&dir)
        .env("TARGET_ENDPOINT", target.url())
        .env("ALL_PROXY", "socks5://127.0.0.1:1080")
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("socks5") && stderr.contains("NO_PROXY"),
        "{stderr}"
    );
}
