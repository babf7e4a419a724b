//! The request log, server events, stats and metrics through the dashboard API: what is
//! recorded, what is never stored, paging and filters, persistence, retention, a store that
//! cannot be written, the live event stream, and auth on every route.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "in tests a failure should panic"
)]

mod common;

use common::*;
use llm_proxy::config::{Config, UpstreamConfig};
use reqwest::StatusCode;
use serde_json::{Value, json};

fn chat(model: &str, content: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": content}]})
}

async fn detail(proxy: &TestProxy, id: &Value) -> Value {
    proxy.get_json(&format!("/api/logs/api-calls/{id}")).await
}

#[tokio::test]
async fn a_call_is_recorded_with_every_field() {
    let proxy = TestProxy::placeholder().await;
    let mut feed = LiveFeed::open(&proxy).await;
    let body = chat("gpt-4o", "record me");
    proxy
        .post("/v1/chat/completions", &body)
        .header("user-agent", "OpenAI/Python 3.57.0")
        .send()
        .await
        .unwrap();
    let summary = feed.calls(1).await.remove(0);
    assert_eq!(summary["path"], "/v1/chat/completions");
    assert!(
        summary.get("requestBody").is_none(),
        "the live summary leaves bodies out"
    );

    let call = detail(&proxy, &summary["id"]).await;
    assert_eq!(call["method"], "POST");
    assert_eq!(call["model"], "gpt-4o");
    assert_eq!(call["stream"], false);
    assert_eq!(call["client"], "OpenAI/Python 3.57.0");
    assert_eq!(call["status"], 200);
    assert!(call["latencyMs"].as_f64().unwrap() > 0.0);
    assert!(call["ttfbMs"].as_f64().unwrap() <= call["latencyMs"].as_f64().unwrap());
    assert_eq!(call["usageSource"], "response");
    assert!(call["usage"]["totalTokens"].as_u64().unwrap() > 0);
    assert_eq!(call["requestHeaders"]["authorization"], "[redacted]");
    // Bodies that are JSON are served as JSON.
    assert_eq!(call["requestBody"], body);
    let response = &call["responseBody"];
    assert!(
        response["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .contains("record me")
    );
    assert!(call["error"].is_null());
    assert!(call["time"].as_i64().unwrap() > 1_700_000_000_000);
}

#[tokio::test]
async fn streams_are_recorded_assembled_with_usage_from_the_stream_or_estimated() {
    let proxy = TestProxy::placeholder().await;
    let mut feed = LiveFeed::open(&proxy).await;
    let with_usage = json!({"model": "m", "stream": true, "stream_options": {"include_usage": true},
                            "messages": [{"role": "user", "content": "stream this"}]});
    proxy.post_text("/v1/chat/completions", &with_usage).await;
    let without = json!({"model": "m", "stream": true, "messages": [{"role": "user", "content": "and this"}]});
    proxy.post_text("/v1/chat/completions", &without).await;
    let calls = feed.calls(2).await;

    let first = detail(&proxy, &calls[0]["id"]).await;
    assert_eq!(first["stream"], true);
    assert_eq!(first["usageSource"], "stream");
    assert!(first["chunkCount"].as_u64().unwrap() > 5);
    let message = &first["responseBody"];
    assert!(message["content"].as_str().unwrap().contains("stream this"));
    assert_eq!(message["finish_reason"], "stop");

    let second = detail(&proxy, &calls[1]["id"]).await;
    assert_eq!(second["usageSource"], "estimated");
    assert!(second["usage"]["completionTokens"].as_u64().unwrap() > 0);
}

/// A valid completion passes the fast path, which hands its usage to the log: the record must
/// still carry the target's exact counts, and repeated headers must all be kept.
#[tokio::test]
async fn a_forwarded_completion_is_recorded_with_the_targets_usage() {
    let target = MockTarget::start().await;
    let completion = fixture("openai/chat-completion.json");
    let usage = serde_json::from_str::<Value>(&completion).unwrap()["usage"].clone();
    target.always(Reply::Json(StatusCode::OK, completion));
    let proxy = TestProxy::forwarding(&target.url(), |_| {}).await;
    let mut feed = LiveFeed::open(&proxy).await;
    proxy
        .post("/v1/chat/completions", &chat("gpt-4o", "count me"))
        .header("x-trace", "one")
        .header("x-trace", "two")
        .send()
        .await
        .unwrap();
    let call = detail(&proxy, &feed.calls(1).await[0]["id"]).await;
    assert_eq!(call["usageSource"], "response");
    assert_eq!(call["usage"]["promptTokens"], usage["prompt_tokens"]);
    assert_eq!(
        call["usage"]["completionTokens"],
        usage["completion_tokens"]
    );
    assert_eq!(call["usage"]["totalTokens"], usage["total_tokens"]);
    assert_eq!(call["requestHeaders"]["x-trace"], "one, two");
    assert_eq!(call["requestHeaders"]["authorization"], "[redacted]");
}

#[tokio::test]
async fn target_failures_are_recorded_and_reported_as_server_events() {
    let proxy = TestProxy::forwarding(&refused_target().await, |_| {}).await;
    let mut feed = LiveFeed::open(&proxy).await;
    proxy
        .post("/v1/chat/completions", &chat("m", "x"))
        .send()
        .await
        .unwrap();
    let call = feed.calls(1).await.remove(0);
    assert_eq!(call["status"], 502);
    assert!(
        call["error"]
            .as_str()
            .unwrap()
            .contains("could not connect")
    );
    // The startup event may come first: the writer batches what arrives together.
    let mut event = feed.next("serverEvent").await;
    while event["message"]
        .as_str()
        .unwrap()
        .starts_with("proxy started")
    {
        event = feed.next("serverEvent").await;
    }
    assert_eq!(event["level"], "warn");
    assert!(event["message"].as_str().unwrap().contains("target error"));
    let events: Value = proxy.get_json("/api/logs/server-events?level=warn").await;
    let events = events["data"].as_array().unwrap();
    assert!(
        events
            .iter()
            .all(|e| e["level"] == "warn" || e["level"] == "error")
    );
    assert!(
        events
            .iter()
            .any(|e| e["message"].as_str().unwrap().contains("target error"))
    );
}

#[tokio::test]
async fn no_secret_is_stored_in_any_byte_of_the_database() {
    let target = MockTarget::start().await;
    let proxy = TestProxy::forwarding(&target.url(), |_| {}).await;
    let mut feed = LiveFeed::open(&proxy).await;
    proxy
        .post("/v1/chat/completions", &chat("m", "x"))
        .header("x-api-key", ACCESS_TOKEN)
        .send()
        .await
        .unwrap();
    let wrong = "sk-mistyped-client-key-31337";
    proxy
        .http
        .post(format!("{}/v1/chat/completions", proxy.url))
        .bearer_auth(wrong)
        .json(&chat("m", "y"))
        .send()
        .await
        .unwrap();
    proxy
        .post("/v1/chat/completions", &chat("m", "z"))
        .header("cookie", "llm_proxy_session=abc; other=1")
        .send()
        .await
        .unwrap();
    let calls = feed.calls(3).await;
    assert_eq!(calls[1]["status"], 401, "refused calls are recorded too");
    let data_dir = proxy_data_dir(&proxy).await;
    proxy.handle.shutdown().await;

    let mut stored = Vec::new();
    for entry in std::fs::read_dir(&data_dir).unwrap() {
        stored.extend(std::fs::read(entry.unwrap().path()).unwrap());
    }
    assert!(stored.len() > 4096, "the database holds the calls");
    for secret in [ACCESS_TOKEN, TARGET_KEY, wrong, "llm_proxy_session=abc"] {
        assert!(
            memchr::memmem::find(&stored, secret.as_bytes()).is_none(),
            "{secret} was stored"
        );
    }
}

async fn proxy_data_dir(proxy: &TestProxy) -> std::path::PathBuf {
    let config: Value = proxy.get_json("/api/config").await;
    std::path::PathBuf::from(config["dataDir"].as_str().unwrap())
}

#[tokio::test]
async fn bodies_are_capped_visibly_or_not_kept_at_all() {
    let mut capped = config(UpstreamConfig::Placeholder);
    capped.logging.body_max_bytes = 1024;
    let proxy = TestProxy::start(capped).await;
    let mut feed = LiveFeed::open(&proxy).await;
    proxy
        .post("/v1/chat/completions", &chat("m", &"long ".repeat(1000)))
        .send()
        .await
        .unwrap();
    let call = detail(&proxy, &feed.calls(1).await[0]["id"]).await;
    let body = call["requestBody"].as_str().unwrap();
    assert!(body.len() < 1200, "{}", body.len());
    assert!(body.contains("…[truncated: "), "{body}");

    let mut metadata_only = config(UpstreamConfig::Placeholder);
    metadata_only.logging.bodies = false;
    let proxy = TestProxy::start(metadata_only).await;
    let mut feed = LiveFeed::open(&proxy).await;
    proxy
        .post("/v1/chat/completions", &chat("m", "private prompt"))
        .send()
        .await
        .unwrap();
    let call = detail(&proxy, &feed.calls(1).await[0]["id"]).await;
    assert!(call["requestBody"].is_null() && call["responseBody"].is_null());
    assert_eq!(
        call["usageSource"], "response",
        "usage is still read from the body"
    );
}

#[tokio::test]
async fn retention_keeps_the_newest_entries() {
    let mut small = config(UpstreamConfig::Placeholder);
    small.logging.max_entries = 5;
    let proxy = TestProxy::start(small).await;
    let mut feed = LiveFeed::open(&proxy).await;
    for i in 0..8 {
        proxy
            .post("/v1/chat/completions", &chat("m", &format!("n{i}")))
            .send()
            .await
            .unwrap();
    }
    let live = feed.calls(8).await;
    let listed: Value = proxy.get_json("/api/logs/api-calls?limit=100").await;
    let ids: Vec<&Value> = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| &c["id"])
        .collect();
    let newest: Vec<&Value> = live.iter().rev().take(5).map(|c| &c["id"]).collect();
    assert_eq!(ids, newest);
}

#[tokio::test]
async fn logs_survive_a_restart_with_the_same_data_dir() {
    let dir = unique_data_dir();
    let mut first = config(UpstreamConfig::Placeholder);
    first.data_dir = dir.clone();
    let proxy = TestProxy::start(first).await;
    let mut feed = LiveFeed::open(&proxy).await;
    proxy
        .post(
            "/v1/chat/completions",
            &chat("persist-model", "remember me"),
        )
        .send()
        .await
        .unwrap();
    let before = feed.calls(1).await.remove(0);
    proxy.handle.shutdown().await;

    let mut second = config(UpstreamConfig::Placeholder);
    second.data_dir = dir;
    let proxy = TestProxy::start(second).await;
    let listed: Value = proxy.get_json("/api/logs/api-calls").await;
    let found = &listed["data"][0];
    assert_eq!(found["id"], before["id"]);
    assert_eq!(found["model"], "persist-model");
    let stats: Value = proxy.get_json("/api/stats").await;
    assert_eq!(
        stats["windows"]["24h"]["requests"], 1,
        "stats are rebuilt from the stored calls"
    );

    let mut feed = LiveFeed::open(&proxy).await;
    proxy
        .post("/v1/chat/completions", &chat("m", "again"))
        .send()
        .await
        .unwrap();
    let after = feed.calls(1).await.remove(0);
    assert!(
        after["id"].as_i64().unwrap() > before["id"].as_i64().unwrap(),
        "ids continue after a restart"
    );
    let events: Value = proxy.get_json("/api/logs/server-events").await;
    let messages: Vec<&str> = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["message"].as_str().unwrap())
        .collect();
    assert!(
        messages.iter().any(|m| m.starts_with("proxy stopped")),
        "{messages:?}"
    );
    assert!(
        messages
            .iter()
            .filter(|m| m.starts_with("proxy started"))
            .count()
            >= 2,
        "{messages:?}"
    );
}

/// A data directory that cannot exist (it would be inside a regular file), and a database
/// file that is not a database: the proxy serves regardless and says why the log is in memory.
#[tokio::test]
async fn a_store_that_cannot_be_opened_leaves_the_proxy_serving() {
    let blocker = unique_data_dir();
    std::fs::create_dir_all(blocker.parent().unwrap()).unwrap();
    std::fs::write(&blocker, "a file, not a directory").unwrap();
    let corrupt = unique_data_dir();
    std::fs::create_dir_all(&corrupt).unwrap();
    std::fs::write(corrupt.join("logs.sqlite3"), vec![0x5a; 8192]).unwrap();

    for data_dir in [blocker.join("data"), corrupt] {
        let mut config: Config = config(UpstreamConfig::Placeholder);
        config.data_dir = data_dir;
        let proxy = TestProxy::start(config).await;
        let mut feed = LiveFeed::open(&proxy).await;
        let response = proxy
            .post("/v1/chat/completions", &chat("m", "still served"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let live = feed.calls(1).await.remove(0);

        let health: Value = proxy
            .http
            .get(format!("{}/health", proxy.url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(health["logStore"]["ok"], false);
        assert!(
            health["logStore"]["error"]
                .as_str()
                .unwrap()
                .contains("cannot")
        );
        let listed: Value = proxy.get_json("/api/logs/api-calls").await;
        assert_eq!(
            listed["data"][0]["id"], live["id"],
            "recent entries are kept in memory"
        );
        let events: Value = proxy.get_json("/api/logs/server-events?level=error").await;
        assert!(
            events["data"][0]["message"]
                .as_str()
                .unwrap()
                .contains("memory")
        );
    }
}

#[tokio::test]
async fn paging_and_filters() {
    let proxy = TestProxy::placeholder().await;
    let mut feed = LiveFeed::open(&proxy).await;
    for i in 0..9 {
        let model = if i % 3 == 0 { "alpha" } else { "beta" };
        proxy
            .post("/v1/chat/completions", &chat(model, &format!("needle-{i}")))
            .send()
            .await
            .unwrap();
    }
    for _ in 0..3 {
        proxy
            .post("/v1/chat/completions", &json!({"model": "alpha"}))
            .send()
            .await
            .unwrap();
    }
    feed.calls(12).await;

    let mut cursor: Option<i64> = None;
    let mut seen = Vec::new();
    loop {
        let path = match cursor {
            Some(c) => format!("/api/logs/api-calls?limit=5&cursor={c}"),
            None => "/api/logs/api-calls?limit=5".to_owned(),
        };
        let page: Value = proxy.get(&path).send().await.unwrap().json().await.unwrap();
        seen.extend(
            page["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["id"].as_i64().unwrap()),
        );
        match page["nextCursor"].as_i64() {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(seen.len(), 12);
    assert!(
        seen.windows(2).all(|w| w[0] > w[1]),
        "newest first, no repeats: {seen:?}"
    );

    let count = |query: &'static str| {
        let proxy = &proxy;
        async move {
            let page: Value = proxy
                .get_json(&format!("/api/logs/api-calls?{query}"))
                .await;
            page["data"].as_array().unwrap().len()
        }
    };
    assert_eq!(count("model=alpha").await, 6);
    assert_eq!(count("status=4xx").await, 3);
    assert_eq!(count("status=2xx&model=beta").await, 6);
    assert_eq!(count("q=needle-4").await, 1);
    assert_eq!(count("q=NEEDLE").await, 9);
    let bad = proxy
        .get("/api/logs/api-calls?status=abc")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    assert_envelope(&bad.json().await.unwrap());
}

#[tokio::test]
async fn the_original_logs_shape_and_clearing() {
    let proxy = TestProxy::placeholder().await;
    let mut feed = LiveFeed::open(&proxy).await;
    proxy
        .post("/v1/chat/completions", &chat("m", "x"))
        .send()
        .await
        .unwrap();
    feed.calls(1).await;
    let logs: Value = proxy.get_json("/api/logs").await;
    assert_eq!(logs["apiCalls"].as_array().unwrap().len(), 1);
    assert!(!logs["serverEvents"].as_array().unwrap().is_empty());

    let cleared = proxy
        .http
        .delete(format!("{}/api/logs", proxy.url))
        .bearer_auth(ACCESS_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(cleared.status(), StatusCode::OK);
    let logs: Value = proxy.get_json("/api/logs").await;
    assert!(logs["apiCalls"].as_array().unwrap().is_empty());
    let stats: Value = proxy.get_json("/api/stats").await;
    assert_eq!(stats["totals"]["requests"], 0);
}

#[tokio::test]
async fn stats_and_metrics_count_calls_by_model() {
    let proxy = TestProxy::placeholder().await;
    let mut feed = LiveFeed::open(&proxy).await;
    for model in ["a", "a", "b"] {
        proxy
            .post("/v1/chat/completions", &chat(model, "x"))
            .send()
            .await
            .unwrap();
    }
    proxy
        .post("/v1/chat/completions", &json!({"model": "a"}))
        .send()
        .await
        .unwrap();
    feed.calls(4).await;
    let stats: Value = proxy.get_json("/api/stats").await;
    let minute = &stats["windows"]["1m"];
    assert_eq!(minute["requests"], 4);
    assert_eq!(minute["errors"], 1);
    assert_eq!(minute["errorRate"], 0.25);
    assert!(minute["latencyMs"]["p50"].as_f64().unwrap() > 0.0);
    assert_eq!(stats["models"][0]["model"], "a");
    assert_eq!(stats["models"][0]["requests"], 3);
    assert!(stats["totals"]["promptTokens"].as_u64().unwrap() > 0);

    let metrics = proxy.get_text("/metrics").await;
    assert!(
        metrics.contains(
            r#"llm_proxy_requests_total{endpoint="/v1/chat/completions",model="a",status="200"} 2"#
        ),
        "{metrics}"
    );
    assert!(metrics.contains(r#"status="400"} 1"#));
    assert!(metrics.contains("llm_proxy_request_duration_seconds_bucket"));
    assert!(metrics.contains(r#"llm_proxy_tokens_total{model="b",kind="prompt"}"#));
    assert!(metrics.contains("llm_proxy_log_records_dropped_total 0"));
}

#[tokio::test]
async fn with_log_requests_off_calls_are_counted_in_stats_and_metrics_and_none_is_kept() {
    let mut off = config(UpstreamConfig::Placeholder);
    off.logging.requests = false;
    let data_dir = off.data_dir.clone();
    let proxy = TestProxy::start(off).await;
    for model in ["a", "a", "b"] {
        let response = proxy
            .post("/v1/chat/completions", &chat(model, "x"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    let refused = proxy
        .post("/v1/chat/completions", &json!({"model": "a"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    proxy.handle.state().log().written().await;

    let stats: Value = proxy.get_json("/api/stats").await;
    assert_eq!(
        stats["windows"]["1m"]["requests"], 4,
        "{}",
        stats["windows"]
    );
    assert_eq!(stats["windows"]["1m"]["errors"], 1);
    assert!(stats["totals"]["promptTokens"].as_u64().unwrap() > 0);
    let metrics = proxy.get_text("/metrics").await;
    assert!(
        metrics.contains(
            "llm_proxy_requests_total{endpoint=\"/v1/chat/completions\",model=\"a\",status=\"200\"} 2\n"
        ),
        "{metrics}"
    );
    assert!(metrics.contains(
        "llm_proxy_requests_total{endpoint=\"/v1/chat/completions\",model=\"a\",status=\"400\"} 1\n"
    ));
    let listed: Value = proxy.get_json("/api/logs/api-calls").await;
    assert_eq!(listed["data"], json!([]), "{listed}");
    proxy.handle.shutdown().await;

    let db = rusqlite::Connection::open(data_dir.join("logs.sqlite3")).unwrap();
    let stored: i64 = db
        .query_row("SELECT count(*) FROM api_calls", [], |row| row.get(0))
        .unwrap();
    assert_eq!(stored, 0, "the database keeps no calls");
}

#[tokio::test]
async fn client_chosen_model_names_are_capped_and_their_labels_bounded() {
    let proxy = TestProxy::placeholder().await;
    let huge = "m".repeat(900 * 1024);
    let response = proxy
        .post("/v1/chat/completions", &chat(&huge, "x"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    for i in 0..120 {
        let model = format!("model-{i:03}-{}", "x".repeat(2000));
        proxy
            .post("/v1/chat/completions", &chat(&model, "x"))
            .send()
            .await
            .unwrap();
    }
    proxy.handle.state().log().written().await;

    let listed: Value = proxy.get_json("/api/logs/api-calls?limit=1000").await;
    let calls = listed["data"].as_array().unwrap();
    assert_eq!(calls.len(), 121);
    for call in calls {
        let model = call["model"].as_str().unwrap();
        assert!(model.len() <= 256 + "…[truncated]".len(), "{}", model.len());
        assert!(model.ends_with("…[truncated]"), "the cut is visible");
    }
    let metrics = proxy.get_text("/metrics").await;
    let labels: std::collections::HashSet<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("llm_proxy_requests_total{"))
        .filter_map(|l| l.split("model=\"").nth(1)?.split('"').next())
        .collect();
    assert!(labels.len() <= 101, "{} model labels", labels.len());
    assert!(labels.contains("other"));
    assert!(
        metrics.len() < 256 * 1024,
        "/metrics is {} bytes",
        metrics.len()
    );
    let stats = proxy.get_text("/api/stats").await;
    let stats_json: Value = serde_json::from_str(&stats).unwrap();
    assert_eq!(stats_json["models"].as_array().unwrap().len(), 100);
    assert!(
        stats.len() < 256 * 1024,
        "/api/stats is {} bytes",
        stats.len()
    );
}

#[tokio::test]
async fn a_credential_in_the_query_string_is_never_stored() {
    let proxy = TestProxy::placeholder().await;
    let data_dir = proxy_data_dir(&proxy).await;
    let key = "sk-in-the-url-4242";
    for param in ["api_key", "key", "token"] {
        let refused = proxy
            .http
            .get(format!("{}/v1/models?limit=2&{param}={key}", proxy.url))
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    }
    proxy.handle.state().log().written().await;
    let listed: Value = proxy.get_json("/api/logs/api-calls").await;
    let paths: Vec<&str> = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|call| call["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        [
            "/v1/models?limit=2&token=[redacted]",
            "/v1/models?limit=2&key=[redacted]",
            "/v1/models?limit=2&api_key=[redacted]"
        ]
    );
    proxy.handle.shutdown().await;
    for entry in std::fs::read_dir(&data_dir).unwrap() {
        let stored = std::fs::read(entry.unwrap().path()).unwrap();
        assert!(memchr::memmem::find(&stored, key.as_bytes()).is_none());
    }
}

#[tokio::test]
async fn every_api_route_and_metrics_need_the_token_or_a_session() {
    let proxy = TestProxy::placeholder().await;
    let routes = [
        ("GET", "/api/config"),
        ("GET", "/api/logs"),
        ("DELETE", "/api/logs"),
        ("GET", "/api/logs/api-calls"),
        ("GET", "/api/logs/api-calls/1"),
        ("GET", "/api/logs/server-events"),
        ("GET", "/api/stats"),
        ("GET", "/api/events"),
        ("POST", "/api/logout"),
        ("GET", "/metrics"),
    ];
    let send = |method: &str, path: &str| {
        proxy
            .http
            .request(method.parse().unwrap(), format!("{}{path}", proxy.url))
    };
    // The wrong tokens go to a server of their own: all of loopback is one source for the
    // limit on failed logins (tested in security.rs), which would lock out the wrong login
    // below.
    let guessed = TestProxy::placeholder().await;
    let stranger_send = |method: &str, path: &str| {
        guessed
            .http
            .request(method.parse().unwrap(), format!("{}{path}", guessed.url))
    };
    for (method, path) in routes {
        let response = stranger_send(method, path).send().await.unwrap();
        assert_eq!(
            response.status(),
            StatusCode::UNAUTHORIZED,
            "{method} {path}"
        );
        assert_envelope(&response.json().await.unwrap());
        let wrong = stranger_send(method, path)
            .bearer_auth("wrong")
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED, "{method} {path}");
    }

    let refused = proxy
        .http
        .post(format!("{}/api/login", proxy.url))
        .json(&json!({"token": "wrong"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert!(!refused.headers().contains_key("set-cookie"));
    let login = proxy
        .http
        .post(format!("{}/api/login", proxy.url))
        .json(&json!({"token": ACCESS_TOKEN}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::OK);
    let cookie = login.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(
        !cookie.contains(ACCESS_TOKEN),
        "the session is not the token"
    );
    let session = cookie.split(';').next().unwrap().to_owned();
    for (method, path) in routes
        .iter()
        .filter(|(_, p)| *p != "/api/logout" && *p != "/api/events")
    {
        let response = send(method, path)
            .header("cookie", &session)
            .send()
            .await
            .unwrap();
        assert_ne!(
            response.status(),
            StatusCode::UNAUTHORIZED,
            "{method} {path} with a session"
        );
    }
    let logout = send("POST", "/api/logout")
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), StatusCode::OK);
    let after = send("GET", "/api/config")
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), StatusCode::UNAUTHORIZED, "logged out");

    let config: Value = proxy.get_json("/api/config").await;
    assert_eq!(config["secrets"]["accessToken"], "set");
    assert!(!config.to_string().contains(ACCESS_TOKEN));

    let mut public = common::config(UpstreamConfig::Placeholder);
    public.metrics_public = true;
    let public = TestProxy::start(public).await;
    let response = public
        .http
        .get(format!("{}/metrics", public.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn malformed_dashboard_input_is_400_in_the_envelope() {
    let proxy = TestProxy::placeholder().await;
    for path in [
        "/api/logs/api-calls?limit=lots",
        "/api/logs/api-calls?cursor=x",
        "/api/logs/api-calls/not-a-number",
        "/api/logs/server-events?limit=-1",
    ] {
        let response = proxy.get(path).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{path}");
        assert_envelope(&response.json().await.unwrap());
    }
    for body in ["{\"token\":", "{\"not\":\"the field\"}", "[]"] {
        let response = proxy
            .http
            .post(format!("{}/api/login", proxy.url))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
        assert_envelope(&response.json().await.unwrap());
    }
}

#[tokio::test]
async fn a_head_request_is_recorded_as_complete_not_as_a_disconnect() {
    let proxy = TestProxy::placeholder().await;
    let head = proxy
        .http
        .head(format!("{}/v1/models", proxy.url))
        .bearer_auth(ACCESS_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    proxy.handle.state().log().written().await;
    let listed: Value = proxy.get_json("/api/logs/api-calls?fields=summary").await;
    let call = &listed["data"][0];
    assert_eq!(call["method"], "HEAD", "{listed}");
    assert_eq!(call["status"], 200);
    assert!(call["error"].is_null(), "{call}");
}
