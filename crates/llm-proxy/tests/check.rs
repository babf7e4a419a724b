//! `llm-proxy check` as users run it: each step's success and each distinct failure produce
//! the documented line and exit code, against the mock token server and mock target.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "in tests a failure should panic"
)]

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_llm-proxy");

/// Runs `llm-proxy check --json` with `vars`; returns the exit success, the steps by name, and
/// everything it printed.
async fn check(vars: Vec<(&'static str, String)>, proxy: &str) -> (bool, Vec<Value>, String) {
    let proxy = proxy.to_owned();
    tokio::task::spawn_blocking(move || {
        let output = std::process::Command::new(BIN)
            .env_clear()
            .envs(vars)
            .args(["check", "--json", "--proxy", &proxy])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let all = format!("{stdout}{}", String::from_utf8_lossy(&output.stderr));
        let report: Value =
            serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {all}"));
        assert_eq!(
            report["passed"].as_bool().unwrap(),
            output.status.success(),
            "exit code matches the report"
        );
        (
            output.status.success(),
            report["steps"].as_array().unwrap().clone(),
            all,
        )
    })
    .await
    .unwrap()
}

/// Runs `llm-proxy check` without `--json`, as users read it; returns the exit code, what it
/// printed to stdout with each step's time replaced by `(… ms)`, and everything it printed.
async fn check_text(vars: Vec<(&'static str, String)>, proxy: &str) -> (i32, Vec<String>, String) {
    let proxy = proxy.to_owned();
    tokio::task::spawn_blocking(move || {
        let output = std::process::Command::new(BIN)
            .env_clear()
            .envs(vars)
            .args(["check", "--proxy", &proxy])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let all = format!("{stdout}{}", String::from_utf8_lossy(&output.stderr));
        let lines = stdout
            .lines()
            .map(|line| without_time(line, &all))
            .collect();
        (output.status.code().unwrap(), lines, all)
    })
    .await
    .unwrap()
}

/// A step's line with its time, `(12.3 ms)` at the end, as `(… ms)`; other lines as they are.
fn without_time(line: &str, all: &str) -> String {
    if !line.starts_with('[') {
        return line.to_owned();
    }
    let (text, time) = line
        .rsplit_once(" (")
        .unwrap_or_else(|| panic!("no time in {line:?}: {all}"));
    time.strip_suffix(" ms)")
        .and_then(|ms| ms.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no time in {line:?}: {all}"));
    format!("{text} (… ms)")
}

fn step<'a>(steps: &'a [Value], name: &str) -> &'a Value {
    steps
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no step {name}: {steps:#?}"))
}

fn oauth_vars(target: &MockTarget, tokens: &MockTokenServer) -> Vec<(&'static str, String)> {
    vec![
        ("TARGET_ENDPOINT", target.url()),
        ("OAUTH_TOKEN_ENDPOINT", tokens.url.clone()),
        ("OAUTH_CLIENT_ID", CLIENT_ID.into()),
        ("OAUTH_CLIENT_SECRET", CLIENT_SECRET.into()),
        ("OAUTH_SCOPE", SCOPE.into()),
        ("PROXY_ACCESS_TOKEN", ACCESS_TOKEN.into()),
    ]
}

#[tokio::test]
async fn every_step_passes_for_a_working_setup_and_no_secret_is_printed() {
    let target = MockTarget::start().await;
    let tokens = MockTokenServer::start(Some(3600)).await;
    target.require_tokens(tokens.state.live.clone());
    target.always(Reply::Json(
        axum::http::StatusCode::OK,
        fixture("openai/chat-completion.json"),
    ));
    target.once(Reply::Json(axum::http::StatusCode::OK, r#"{"object":"list","data":[{"id":"corp-llm","object":"model","created":1,"owned_by":"corp"}]}"#.into()));
    target.once(Reply::Json(
        axum::http::StatusCode::OK,
        fixture("formats/anthropic.json"),
    ));
    let proxy = TestProxy::placeholder().await;
    let (passed, steps, printed) = check(oauth_vars(&target, &tokens), &proxy.url).await;
    assert!(passed, "{steps:#?}");
    let names: Vec<&str> = steps.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "configuration",
            "token server",
            "target models",
            "target chat",
            "target stream",
            "proxy health",
            "proxy auth",
            "proxy chat",
            "proxy stream",
            "dashboard"
        ]
    );
    assert!(
        step(&steps, "configuration")["detail"]
            .as_str()
            .unwrap()
            .contains("OAuth")
    );
    assert!(
        step(&steps, "token server")["detail"]
            .as_str()
            .unwrap()
            .contains("valid for")
    );
    assert!(
        step(&steps, "target models")["detail"]
            .as_str()
            .unwrap()
            .contains("corp-llm")
    );
    assert!(
        step(&steps, "target chat")["detail"]
            .as_str()
            .unwrap()
            .contains("normalized from anthropic")
    );
    for secret in [CLIENT_SECRET, ACCESS_TOKEN] {
        assert!(!printed.contains(secret), "{secret} printed");
    }
    for token in tokens.issued() {
        assert!(!printed.contains(&token), "a token was printed");
    }
}

#[tokio::test]
async fn token_server_failures_name_the_likely_cause() {
    let target = MockTarget::start().await;
    let proxy = TestProxy::placeholder().await;

    let tokens = MockTokenServer::start(Some(3600)).await;
    let mut vars = oauth_vars(&target, &tokens);
    vars.retain(|(k, _)| *k != "OAUTH_TOKEN_ENDPOINT");
    vars.push((
        "OAUTH_TOKEN_ENDPOINT",
        format!("{}/token", refused_target().await),
    ));
    let (passed, steps, _) = check(vars, &proxy.url).await;
    assert!(!passed);
    let failed = step(&steps, "token server");
    assert_eq!(failed["ok"], false);
    assert!(
        failed["hint"]
            .as_str()
            .unwrap()
            .contains("OAUTH_TOKEN_ENDPOINT"),
        "{failed}"
    );
    assert!(
        steps.iter().all(|s| s["name"] != "target models"),
        "the target is not tried without a token"
    );

    let mut vars = oauth_vars(&target, &tokens);
    vars.retain(|(k, _)| *k != "OAUTH_CLIENT_SECRET");
    vars.push(("OAUTH_CLIENT_SECRET", "expired-secret".into()));
    let (_, steps, printed) = check(vars, &proxy.url).await;
    let failed = step(&steps, "token server");
    assert!(
        failed["detail"]
            .as_str()
            .unwrap()
            .contains("invalid_client"),
        "{failed}"
    );
    assert!(
        failed["hint"]
            .as_str()
            .unwrap()
            .contains("OAUTH_CLIENT_SECRET")
    );
    assert!(!printed.contains("expired-secret"));

    let mut vars = oauth_vars(&target, &tokens);
    vars.retain(|(k, _)| *k != "OAUTH_SCOPE");
    vars.push(("OAUTH_SCOPE", "api://wrong/.default".into()));
    let (_, steps, _) = check(vars, &proxy.url).await;
    assert!(
        step(&steps, "token server")["hint"]
            .as_str()
            .unwrap()
            .contains("OAUTH_SCOPE")
    );
}

#[tokio::test]
async fn target_failures_name_the_likely_cause() {
    let target = MockTarget::start().await;
    let proxy = TestProxy::placeholder().await;
    let vars = || {
        vec![
            ("TARGET_ENDPOINT", target.url()),
            ("TARGET_API_KEY", TARGET_KEY.to_owned()),
            ("PROXY_ACCESS_TOKEN", ACCESS_TOKEN.to_owned()),
        ]
    };
    target.always(Reply::Json(
        axum::http::StatusCode::UNAUTHORIZED,
        r#"{"error":{"message":"Invalid key","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}"#.into(),
    ));
    let (passed, steps, printed) = check(vars(), &proxy.url).await;
    assert!(!passed);
    assert!(
        step(&steps, "target models")["hint"]
            .as_str()
            .unwrap()
            .contains("TARGET_API_KEY")
    );
    assert!(!printed.contains(TARGET_KEY));

    target.always(Reply::Body {
        status: axum::http::StatusCode::NOT_FOUND,
        content_type: "text/html",
        body: bytes::Bytes::from_static(b"<title>404 Not Found</title>"),
        headers: vec![],
    });
    let (_, steps, _) = check(vars(), &proxy.url).await;
    assert!(
        step(&steps, "target models")["hint"]
            .as_str()
            .unwrap()
            .contains("/v1")
    );
}

#[tokio::test]
async fn proxy_failures_name_the_likely_cause() {
    let vars = vec![("PROXY_ACCESS_TOKEN", ACCESS_TOKEN.to_owned())];
    let (passed, steps, _) = check(vars.clone(), &refused_target().await.replace("/v1", "")).await;
    assert!(!passed);
    assert!(
        step(&steps, "proxy health")["detail"]
            .as_str()
            .unwrap()
            .contains("no proxy is running")
    );

    let proxy = TestProxy::placeholder().await;
    let (passed, steps, _) = check(
        vec![("PROXY_ACCESS_TOKEN", "not-the-running-token".to_owned())],
        &proxy.url,
    )
    .await;
    assert!(!passed);
    assert!(
        step(&steps, "proxy auth")["hint"]
            .as_str()
            .unwrap()
            .contains("PROXY_ACCESS_TOKEN")
    );
    assert_eq!(
        proxy.get("/health").send().await.unwrap().status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn an_anthropic_target_set_up_as_openai_is_named_and_works_once_target_api_is_set() {
    let target = common::anthropic::MockAnthropic::start().await;
    let vars = |api: &str| {
        vec![
            ("TARGET_ENDPOINT", target.url()),
            ("TARGET_API_KEY", TARGET_KEY.to_owned()),
            ("TARGET_API", api.to_owned()),
        ]
    };
    let (_, steps, printed) = check(vars("openai"), "http://127.0.0.1:9").await;
    let chat = step(&steps, "target chat");
    assert_eq!(chat["ok"], false, "{printed}");
    assert!(
        chat["hint"]
            .as_str()
            .unwrap()
            .contains("set TARGET_API=anthropic"),
        "{printed}"
    );

    let (_, steps, printed) = check(vars("anthropic"), "http://127.0.0.1:9").await;
    for name in ["target models", "target chat", "target stream"] {
        assert_eq!(step(&steps, name)["ok"], true, "{name}: {printed}");
    }
    assert!(!printed.contains(TARGET_KEY), "{printed}");
}

/// Checks a target of `api` set up as OpenAI's, then with `TARGET_API` set: the first names
/// the value to set, the second passes every target step.
async fn foreign_target_named_then_working(endpoint: String, api: &str) {
    let vars = |value: &str| {
        vec![
            ("TARGET_ENDPOINT", endpoint.clone()),
            ("TARGET_API_KEY", TARGET_KEY.to_owned()),
            ("TARGET_API", value.to_owned()),
        ]
    };
    let (_, steps, printed) = check(vars("openai"), "http://127.0.0.1:9").await;
    let hint = step(&steps, "target chat")["hint"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(hint.contains(&format!("set TARGET_API={api}")), "{printed}");

    let (_, steps, printed) = check(vars(api), "http://127.0.0.1:9").await;
    for name in ["target models", "target chat", "target stream"] {
        assert_eq!(step(&steps, name)["ok"], true, "{name}: {printed}");
    }
    assert!(!printed.contains(TARGET_KEY), "{printed}");
}

#[tokio::test]
async fn a_gemini_target_set_up_as_openai_is_named_and_works_once_target_api_is_set() {
    let target = common::gemini::MockGemini::start().await;
    foreign_target_named_then_working(target.url(), "gemini").await;
}

#[tokio::test]
async fn an_ollama_target_set_up_as_openai_is_named_and_works_once_target_api_is_set() {
    let target = common::ollama::MockOllama::with_key(TARGET_KEY).await;
    foreign_target_named_then_working(target.url(), "ollama").await;
}

const PLACEHOLDER_CONFIGURATION: &str = "valid; placeholder (no target configured; answers are generated locally); because no TARGET_ENDPOINT or OAUTH_TOKEN_ENDPOINT, or USE_PLACEHOLDER_MODE=true";

#[tokio::test]
async fn without_json_a_passing_check_prints_one_ok_line_per_step_and_exits_0() {
    let proxy = TestProxy::placeholder().await;
    let url = &proxy.url;
    let version = env!("CARGO_PKG_VERSION");
    let (code, lines, all) =
        check_text(vec![("PROXY_ACCESS_TOKEN", ACCESS_TOKEN.to_owned())], url).await;
    assert_eq!(code, 0, "{all}");
    assert_eq!(
        lines,
        [
            format!("[ok  ] configuration  {PLACEHOLDER_CONFIGURATION} (… ms)"),
            format!(
                "[ok  ] proxy health   running at {url}, placeholder mode, version {version} (… ms)"
            ),
            "[ok  ] proxy auth     the access token is accepted; 5 model(s) listed (… ms)"
                .to_owned(),
            "[ok  ] proxy chat     a completion came through (… ms)".to_owned(),
            "[ok  ] proxy stream   a stream came through, ending with [DONE] (… ms)".to_owned(),
            format!("[ok  ] dashboard      {url}/ and its API answer (… ms)"),
            "All checks passed.".to_owned(),
        ],
        "{all}"
    );
    assert!(!all.contains(ACCESS_TOKEN), "the access token was printed");
}

#[tokio::test]
async fn without_json_a_failing_check_prints_the_failure_with_its_likely_cause_and_exits_1() {
    let proxy = TestProxy::placeholder().await;
    let url = &proxy.url;
    let version = env!("CARGO_PKG_VERSION");
    let (code, lines, all) = check_text(
        vec![("PROXY_ACCESS_TOKEN", "not-the-running-token".to_owned())],
        url,
    )
    .await;
    assert_eq!(code, 1, "{all}");
    // The steps after the failed one, which need it, are not run.
    assert_eq!(
        lines,
        [
            format!("[ok  ] configuration  {PLACEHOLDER_CONFIGURATION} (… ms)"),
            format!(
                "[ok  ] proxy health   running at {url}, placeholder mode, version {version} (… ms)"
            ),
            "[FAIL] proxy auth     the running proxy refused this configuration's access token (401) (… ms)"
                .to_owned(),
            "       likely cause and fix: PROXY_ACCESS_TOKEN here differs from the running proxy's: use the token its banner or window shows"
                .to_owned(),
            "Some checks failed: see the likely causes above.".to_owned(),
        ],
        "{all}"
    );
    assert!(
        !all.contains("not-the-running-token"),
        "the access token was printed"
    );
}
