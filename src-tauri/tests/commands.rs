//! The window's commands through Tauri's IPC on the mock runtime (no display): what the
//! window receives, the capability that limits it, and the same core functions answering as
//! over HTTP.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on purpose"
)]

use local_llm_proxy::desktop::Paths;
use local_llm_proxy::secrets::MemoryBackend;
use local_llm_proxy::{Options, builder};
use serde_json::{Value, json};
use tauri::test::{INVOKE_KEY, MockRuntime, get_ipc_response, mock_builder};
use tauri::webview::InvokeRequest;
use tauri::{App, WebviewWindow, WebviewWindowBuilder};

struct Harness {
    _app: App<MockRuntime>,
    window: WebviewWindow<MockRuntime>,
    dir: tempfile::TempDir,
}

/// The app on the mock runtime, with settings asking for a free port.
fn app() -> Harness {
    app_with_settings(r#"{"port": 0}"#)
}

/// The app on the mock runtime, with `settings` as its saved settings file.
fn app_with_settings(settings: &str) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let config_dir = dir.path().join("config");
    std::fs::create_dir_all(&config_dir).unwrap();
    std::fs::write(config_dir.join("settings.json"), settings).unwrap();
    let app = builder(
        mock_builder(),
        Options {
            paths: Paths {
                config_dir,
                data_dir: Some(dir.path().join("data")),
            },
            keychain: Box::<MemoryBackend>::default(),
            shell: false,
            show_window: false,
        },
    )
    .build(tauri::generate_context!())
    .unwrap();
    let window = WebviewWindowBuilder::new(&app, "main", Default::default())
        .build()
        .unwrap();
    Harness {
        _app: app,
        window,
        dir,
    }
}

fn invoke(window: &WebviewWindow<MockRuntime>, cmd: &str, args: Value) -> Result<Value, Value> {
    let request = InvokeRequest {
        cmd: cmd.into(),
        callback: tauri::ipc::CallbackFn(0),
        error: tauri::ipc::CallbackFn(1),
        url: "tauri://localhost".parse().unwrap(),
        body: tauri::ipc::InvokeBody::Json(args),
        headers: Default::default(),
        invoke_key: INVOKE_KEY.to_string(),
    };
    get_ipc_response(window, request).map(|body| body.deserialize::<Value>().unwrap())
}

#[test]
fn the_window_turns_the_proxy_on_and_reads_its_logs_through_the_core() {
    let h = app();
    let status = invoke(&h.window, "status", json!({})).unwrap();
    assert_eq!(status["proxy"]["state"], "stopped");
    assert_eq!(status["apiBaseUrl"], Value::Null);

    // While off, data views get a clear error, not a hang or a crash.
    let err = invoke(&h.window, "api_calls", json!({})).unwrap_err();
    assert_eq!(err["status"], 503);
    assert!(err["message"].as_str().unwrap().contains("proxy is off"));

    let status = invoke(&h.window, "set_proxy_enabled", json!({"enabled": true})).unwrap();
    assert_eq!(status["proxy"]["state"], "running", "{status}");
    let port = status["proxy"]["port"].as_u64().unwrap();
    assert_eq!(
        status["apiBaseUrl"],
        format!("http://localhost:{port}/v1").as_str()
    );
    let token = invoke(&h.window, "access_token", json!({})).unwrap();
    let token = token.as_str().unwrap().to_owned();
    assert!(token.starts_with("llm-proxy-"));

    // A real call through the proxy shows up in the window's log view.
    let response = http_get(port, "/v1/models", &token);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let calls = wait_for_calls(&h.window, 1);
    assert_eq!(calls[0]["path"], "/v1/models");
    assert_eq!(calls[0]["status"], 200);
    let config = invoke(&h.window, "api_config", json!({})).unwrap();
    assert_eq!(config["secrets"]["accessToken"], "set");
    assert!(!config.to_string().contains(&token), "the token leaked");

    // The same validation as over HTTP.
    let err = invoke(&h.window, "api_calls", json!({"params": {"status": "9xx"}})).unwrap_err();
    assert_eq!(err["status"], 400);
    let err = invoke(&h.window, "api_call", json!({"id": 999_999})).unwrap_err();
    assert_eq!(err["status"], 404);

    let status = invoke(&h.window, "set_proxy_enabled", json!({"enabled": false})).unwrap();
    assert_eq!(status["proxy"]["state"], "stopped");
    assert!(std::net::TcpStream::connect(("127.0.0.1", port as u16)).is_err());
}

#[test]
fn regenerating_the_token_while_the_proxy_runs_refuses_the_old_token_and_accepts_the_new_one() {
    // A fixed port, as a user's is: the tools keep calling the same address across the restart
    // that puts the new token in effect.
    let port = {
        let free = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
        free.local_addr().unwrap().port()
    };
    let h = app_with_settings(&format!(r#"{{"port": {port}}}"#));
    let status = invoke(&h.window, "set_proxy_enabled", json!({"enabled": true})).unwrap();
    assert_eq!(status["proxy"]["state"], "running", "{status}");
    assert_eq!(status["proxy"]["port"], port, "{status}");
    let old = invoke(&h.window, "access_token", json!({})).unwrap();
    let old = old.as_str().unwrap().to_owned();
    let response = http_get(port.into(), "/v1/models", &old);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");

    let status = invoke(&h.window, "regenerate_access_token", json!({})).unwrap();
    assert_eq!(status["proxy"]["state"], "running", "{status}");
    assert_eq!(status["proxy"]["port"], port, "{status}");
    let new = invoke(&h.window, "access_token", json!({})).unwrap();
    let new = new.as_str().unwrap().to_owned();
    assert!(new.starts_with("llm-proxy-"), "{new}");
    assert_ne!(new, old, "the token did not change");

    // Real requests to the running proxy: the old token is refused, the new one works.
    let response = http_get(port.into(), "/v1/models", &old);
    assert!(response.starts_with("HTTP/1.1 401"), "{response}");
    assert!(response.contains("invalid_api_key"), "{response}");
    let response = http_get(port.into(), "/v1/models", &new);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");

    invoke(&h.window, "set_proxy_enabled", json!({"enabled": false})).unwrap();
}

/// One plain HTTP/1.1 request, answered in full (the connection closes after it).
fn http_get(port: u64, path: &str, token: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port as u16)).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

fn wait_for_calls(window: &WebviewWindow<MockRuntime>, count: usize) -> Vec<Value> {
    // The log writer batches; poll its answer, bounded, instead of sleeping a guessed time.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let page = invoke(window, "api_calls", json!({"params": {"limit": 10}})).unwrap();
        let calls = page["data"].as_array().unwrap().clone();
        if calls.len() >= count || std::time::Instant::now() > deadline {
            return calls;
        }
        std::thread::yield_now();
    }
}

#[test]
fn settings_are_validated_field_by_field_and_secrets_never_come_back() {
    let h = app();
    let err = invoke(
        &h.window,
        "save_settings",
        json!({"settings": {"port": 0, "auth": "oauth", "targetEndpoint": "https://llm.example.com/v1"}}),
    )
    .unwrap_err();
    let fields: Vec<&str> = err["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        [
            "port",
            "oauth.tokenEndpoint",
            "oauth.clientId",
            "oauthClientSecret"
        ]
    );

    let saved = invoke(
        &h.window,
        "save_settings",
        json!({
            "settings": {"port": 3999, "auth": "api-key", "targetEndpoint": "https://llm.example.com/v1"},
            "secrets": {"targetApiKey": "sk-desktop-secret-value"},
        }),
    )
    .unwrap();
    assert_eq!(
        saved["proxy"]["state"], "stopped",
        "saving must not turn it on"
    );
    let view = invoke(&h.window, "get_settings", json!({})).unwrap();
    assert_eq!(view["settings"]["port"], 3999);
    assert_eq!(view["secretsSet"]["targetApiKey"], true);
    // The harness's secret store has a memory backend where the OS keychain would be: this
    // checks that the secret went to that primary backend (reported as kind "keychain"), not
    // to the fallback file; the OS keychain itself is tested in e2e/desktop.
    assert_eq!(view["secretStorage"]["kind"], "keychain");
    assert!(!h.dir.path().join("config/secrets.json").exists());
    assert!(!view.to_string().contains("sk-desktop-secret-value"));
    let on_disk = std::fs::read_to_string(h.dir.path().join("config/settings.json")).unwrap();
    assert!(on_disk.contains("3999"));
    assert!(!on_disk.contains("sk-desktop-secret-value"));
}

/// What Tauri's ACL answers for a command the window's capability does not grant: in debug
/// builds the reason, in release builds only the refusal.
fn acl_refusal(command: &str, debug_reason: &str) -> String {
    if cfg!(debug_assertions) {
        debug_reason.to_owned()
    } else {
        format!("Command {command} not allowed by ACL")
    }
}

#[test]
fn the_window_may_call_only_what_its_capability_grants() {
    let h = app();
    // A plugin command the capability does not list is refused by the ACL before it runs.
    let err = invoke(&h.window, "plugin:clipboard-manager|read_text", json!({})).unwrap_err();
    assert_eq!(
        err.as_str(),
        Some(
            acl_refusal(
                "plugin:clipboard-manager|read_text",
                "clipboard-manager.read_text not allowed. Permissions associated with this command: clipboard-manager:allow-read-text"
            )
            .as_str()
        ),
        "{err}"
    );
    // A command the app does not have is refused by the ACL too, as one no permission names.
    let err = invoke(&h.window, "delete_everything", json!({})).unwrap_err();
    assert_eq!(
        err.as_str(),
        Some(
            acl_refusal(
                "delete_everything",
                "delete_everything not allowed. Command not found"
            )
            .as_str()
        ),
        "{err}"
    );
    // A granted one works.
    assert!(invoke(&h.window, "status", json!({})).is_ok());
}
