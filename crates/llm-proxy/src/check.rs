//! `llm-proxy check`: tests each link of a setup in order (configuration, token server,
//! target, running proxy) and says for a failure what is likely wrong and what to do. The
//! desktop app's "Test connection" runs the same function and shows the steps as they come.

use crate::formats::answer::Stamp;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, Method};
use axum::response::Response;
use bytes::Bytes;
use serde::Serialize;
use serde_json::{Value, json};

use crate::clock::SystemClock;
use crate::config::{Config, CredentialConfig, TargetApi, UpstreamConfig};
use crate::formats;
use crate::forward::{self, ClientRequest, Expectation};
use crate::normalize::{Expected, RequestContext};
use crate::notes::NormalizationNote;
use crate::upstream::{OutgoingBody, TokenError, TokenObserver, UpstreamClient};

/// One link of the chain, checked.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub name: &'static str,
    pub ok: bool,
    pub ms: f64,
    pub detail: String,
    /// For a failure: the likely cause and what to do.
    pub hint: Option<String>,
}

/// Runs every step, calling `on_step` as each completes; returns them all.
pub async fn run(config: &Config, proxy_url: &str, mut on_step: impl FnMut(&Step)) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut record = |step: Step, steps: &mut Vec<Step>| {
        on_step(&step);
        steps.push(step);
    };
    let started = Instant::now();
    record(
        step("configuration", started, Ok(configuration(config))),
        &mut steps,
    );

    if let UpstreamConfig::Target(target) = &config.upstream {
        let up = match UpstreamClient::new(
            target,
            &config.limits,
            std::sync::Arc::new(SystemClock),
            std::sync::Arc::new(Quiet),
        ) {
            Ok(up) => up,
            Err(err) => {
                record(
                    step("target client", started, Err((err.to_string(), None))),
                    &mut steps,
                );
                return steps;
            }
        };
        let mut credential_ok = true;
        if let (Some(source), CredentialConfig::OAuth(oauth)) =
            (up.token_source(), &target.credential)
        {
            let started = Instant::now();
            let result = match tokio::time::timeout(Duration::from_secs(40), source.authorization())
                .await
            {
                Ok(Ok(_)) => {
                    let status = source.status();
                    let lifetime = status
                        .valid_until
                        .unwrap_or(0)
                        .saturating_sub(crate::ids::unix_now());
                    let mut detail = format!(
                        "token obtained from {}, valid for {lifetime} s (client authentication: {})",
                        oauth.token_endpoint.host_str().unwrap_or("?"),
                        status.client_auth
                    );
                    if Duration::from_secs(lifetime) < oauth.refresh_buffer {
                        detail.push_str(&format!("; warning: shorter than OAUTH_REFRESH_BUFFER_MINUTES ({} min), so it is refreshed at half its life", oauth.refresh_buffer.as_secs() / 60));
                    }
                    if let Some(warning) = status.warning {
                        detail.push_str(&format!("; {warning}"));
                    }
                    Ok(detail)
                }
                Ok(Err(err)) => Err((err.to_string(), Some(token_hint(&err)))),
                Err(_) => Err((
                    "the token server did not answer within 40 s".to_owned(),
                    Some(
                        "check OAUTH_TOKEN_ENDPOINT and the network (HTTPS_PROXY/NO_PROXY)"
                            .to_owned(),
                    ),
                )),
            };
            credential_ok = result.is_ok();
            record(step("token server", started, result), &mut steps);
        }
        if credential_ok {
            for target_step in target_steps(&up).await {
                record(target_step, &mut steps);
            }
        }
    }

    for proxy_step in proxy_steps(config, proxy_url).await {
        record(proxy_step, &mut steps);
    }
    steps
}

fn step(
    name: &'static str,
    started: Instant,
    result: Result<String, (String, Option<String>)>,
) -> Step {
    let ms = (started.elapsed().as_secs_f64() * 10_000.0).round() / 10.0;
    match result {
        Ok(detail) => Step {
            name,
            ok: true,
            ms,
            detail,
            hint: None,
        },
        Err((detail, hint)) => Step {
            name,
            ok: false,
            ms,
            detail,
            hint,
        },
    }
}

fn configuration(config: &Config) -> String {
    let why = match &config.upstream {
        UpstreamConfig::Placeholder => {
            "no TARGET_ENDPOINT or OAUTH_TOKEN_ENDPOINT, or USE_PLACEHOLDER_MODE=true".to_owned()
        }
        UpstreamConfig::Target(target) => match &target.credential {
            CredentialConfig::OAuth(_) => {
                "OAuth: OAUTH_TOKEN_ENDPOINT, OAUTH_CLIENT_ID and OAUTH_CLIENT_SECRET are set"
                    .to_owned()
            }
            CredentialConfig::ApiKey(_) => {
                "API key: TARGET_API_KEY is set, OAuth is not".to_owned()
            }
            CredentialConfig::None => {
                "no credential: neither OAuth nor TARGET_API_KEY is set".to_owned()
            }
        },
    };
    format!("valid; {}; because {why}", config.mode_description())
}

fn token_hint(err: &TokenError) -> String {
    match err {
        TokenError::Unreachable { detail, .. } if detail.contains("TARGET_CA_CERT") => {
            "the token server's certificate is not trusted: it is likely signed by an internal CA; set TARGET_CA_CERT to that CA's PEM file".into()
        }
        TokenError::Unreachable { .. } => "check OAUTH_TOKEN_ENDPOINT (host and port), the network, and HTTPS_PROXY/NO_PROXY".into(),
        TokenError::Timeout { .. } => "the token server is slow or a firewall drops the connection".into(),
        TokenError::Rejected { status, code, .. } => match code.as_deref() {
            Some("invalid_client") | Some("unauthorized_client") => {
                "the client was refused: check OAUTH_CLIENT_ID and OAUTH_CLIENT_SECRET (an expired secret is common), and try OAUTH_CLIENT_AUTH=post or basic".into()
            }
            Some("invalid_scope") => "the scope was refused: check OAUTH_SCOPE (Entra ID wants api://<app-id>/.default)".into(),
            Some("invalid_grant") | Some("unsupported_grant_type") => "the client is not allowed the client_credentials grant: ask for it to be enabled".into(),
            _ if *status == 404 => "OAUTH_TOKEN_ENDPOINT points at a page that does not exist: check the path".into(),
            _ => "read the token server's message above".into(),
        },
        TokenError::Malformed { .. } => "OAUTH_TOKEN_ENDPOINT answers, but not as a token endpoint: it may be a login page; check the URL".into(),
    }
}

/// The target: its model list, one tiny completion, and the same streamed.
async fn target_steps(up: &UpstreamClient) -> Vec<Step> {
    let mut steps = Vec::new();
    let headers = HeaderMap::new();
    let started = Instant::now();
    let models_path = formats::models_path(up.api());
    let models = call(
        up,
        Method::GET,
        models_path,
        &headers,
        Bytes::new(),
        Expected::Models,
        false,
    )
    .await;
    let mut model = "gpt-4o".to_owned();
    let result = match &models {
        Ok((body, _)) => {
            let ids: Vec<String> = body["data"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|m| m["id"].as_str().map(str::to_owned))
                .collect();
            if let Some(first) = ids.first() {
                model = first.clone();
            }
            let shown: Vec<&str> = ids.iter().take(8).map(String::as_str).collect();
            Ok(format!(
                "{} model(s): {}{}",
                ids.len(),
                shown.join(", "),
                if ids.len() > 8 { ", …" } else { "" }
            ))
        }
        Err((status, message)) => Err((message.clone(), Some(target_hint(*status, models_path)))),
    };
    steps.push(step("target models", started, result));

    let request = json!({"model": model, "messages": [{"role": "user", "content": "Reply with OK."}], "max_tokens": 5});
    for (name, stream) in [("target chat", false), ("target stream", true)] {
        let started = Instant::now();
        let mut request = request.clone();
        if stream {
            request["stream"] = json!(true);
        }
        let body = request.to_string();
        let (path, body) = match formats::chat_for_target(up.api(), body.as_bytes()) {
            Ok(Some(translated)) => (translated.path, Bytes::from(translated.body)),
            Ok(None) => ("/chat/completions".to_owned(), Bytes::from(body)),
            Err(err) => {
                steps.push(step(name, started, Err((err.to_string(), None))));
                continue;
            }
        };
        let result = match call(
            up,
            Method::POST,
            &path,
            &headers,
            body,
            Expected::ChatCompletion,
            stream,
        )
        .await
        {
            Ok((_, format)) => Ok(format!(
                "{model} answered{}",
                match format {
                    Some(format) => format!("; its answers are normalized from {format}"),
                    None => "; its answers are OpenAI's shape already".to_owned(),
                }
            )),
            Err((status, message)) => {
                let hint = match status {
                    404 | 405 => other_api(up).await.map(|api| {
                        format!(
                            "the target has no {path}, but it answers as the {} API does: set TARGET_API={}",
                            api.name(),
                            api.name()
                        )
                    }),
                    _ => None,
                };
                Err((
                    message,
                    Some(hint.unwrap_or_else(|| target_hint(status, &path))),
                ))
            }
        };
        steps.push(step(name, started, result));
    }
    steps
}

/// The API the target answers in, when it is not the configured one: a chat path of each
/// other API is asked with an empty body, and its error's envelope gives the API away.
async fn other_api(up: &UpstreamClient) -> Option<TargetApi> {
    for api in TargetApi::ALL.into_iter().filter(|api| *api != up.api()) {
        let (path, speaks) = formats::probe(api);
        let headers = crate::upstream::api_headers(api);
        let Ok((head, bytes)) = up
            .exchange(
                Method::POST,
                path,
                &headers,
                OutgoingBody::from(Bytes::from_static(b"{}")),
            )
            .await
        else {
            continue;
        };
        if matches!(head.status.as_u16(), 404 | 405) {
            continue;
        }
        let body: Value = serde_json::from_slice(&bytes).unwrap_or_default();
        if speaks(&body) {
            return Some(api);
        }
    }
    None
}

fn target_hint(status: u16, path: &str) -> String {
    match status {
        401 | 403 => "the target refused the credential: check TARGET_API_KEY, or the OAuth scope and audience the target expects".into(),
        404 => format!("the target has no {path}: TARGET_ENDPOINT should be the API's base URL (ending in /v1 for OpenAI and Anthropic, /v1beta for Gemini, the server's root for Ollama; the proxy appends {path})"),
        502 => "the target answered something that is not a usable response (or could not be reached): read the message".into(),
        504 => "the target did not answer in time: check it is up; raise TARGET_TIMEOUT_SECONDS for slow models".into(),
        _ => "read the target's message above".into(),
    }
}

/// One exchange through the same forwarding code the server uses: the body as the client
/// would get it, and the format normalization detected.
async fn call(
    up: &UpstreamClient,
    method: Method,
    path: &str,
    headers: &HeaderMap,
    body: Bytes,
    expected: Expected,
    stream: bool,
) -> Result<(Value, Option<String>), (u16, String)> {
    let expect = Expectation {
        shape: expected,
        context: RequestContext {
            model: String::new(),
            include_usage: false,
            answer_format: match expected {
                Expected::ChatCompletion => formats::answer_format(up.api()),
                _ => None,
            },
            stamp: Stamp::now(),
        },
    };
    let out = ClientRequest {
        method,
        path_and_query: path,
        headers,
        received: None,
    };
    let response = if stream {
        forward::event_stream(
            up,
            out,
            body,
            Duration::from_secs(60),
            &Default::default(),
            &expect,
        )
        .await
    } else {
        forward::json_exchange(up, out, body, &expect).await
    };
    let response: Response = match response {
        Ok(response) => response,
        Err(err) => return Err((err.status().as_u16(), err.to_string())),
    };
    let status = response.status().as_u16();
    let note = response.extensions().get::<NormalizationNote>().cloned();
    let bytes = axum::body::to_bytes(response.into_body(), 64 * 1024 * 1024)
        .await
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes);
    if status >= 400 {
        let message = serde_json::from_slice::<Value>(&bytes)
            .ok()
            .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
            .unwrap_or_else(|| text.chars().take(200).collect());
        return Err((status, format!("HTTP {status}: {message}")));
    }
    if stream && (!text.trim_end().ends_with("data: [DONE]") || text.contains("\"error\":{")) {
        let error = text
            .lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .find(|d| d.contains("\"error\""))
            .unwrap_or("the stream ended early");
        return Err((502, format!("the stream failed: {error}")));
    }
    let format = note
        .and_then(|n| n.0.get().map(|changes| changes.format.to_owned()))
        .filter(|f| f != "openai");
    let value = if stream {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or(Value::Null)
    };
    Ok((value, format))
}

/// The running proxy: health, auth, a completion and a stream through it, the dashboard.
async fn proxy_steps(config: &Config, url: &str) -> Vec<Step> {
    let http = match reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(60))
        .build()
    {
        Ok(http) => http,
        Err(err) => return vec![step("proxy", Instant::now(), Err((err.to_string(), None)))],
    };
    let proxy = RunningProxy {
        http,
        url: url.trim_end_matches('/'),
        token: secrecy::ExposeSecret::expose_secret(&config.access_token.secret),
    };
    let mut steps = Vec::new();
    // Each of these needs the one before it: stop at the first failure.
    let (started, health) = proxy.health().await;
    let running = health.is_ok();
    steps.push(step("proxy health", started, health));
    if !running {
        return steps;
    }
    let (started, auth) = proxy.auth().await;
    let authorized = auth.is_ok();
    steps.push(step("proxy auth", started, auth));
    if !authorized {
        return steps;
    }
    for (name, stream) in [("proxy chat", false), ("proxy stream", true)] {
        let (started, result) = proxy.chat(stream).await;
        steps.push(step(name, started, result));
    }
    let (started, result) = proxy.dashboard().await;
    steps.push(step("dashboard", started, result));
    steps
}

/// What a step found: when it started, and its result or the failure with a hint.
type Outcome = (Instant, Result<String, (String, Option<String>)>);

/// A running proxy as a tool sees it: its URL and the access token.
struct RunningProxy<'a> {
    http: reqwest::Client,
    url: &'a str,
    token: &'a str,
}

impl RunningProxy<'_> {
    async fn health(&self) -> Outcome {
        let started = Instant::now();
        let url = self.url;
        let result = match self.http.get(format!("{url}/health")).send().await {
            Ok(r) if r.status().is_success() => {
                let body: Value = r.json().await.unwrap_or_default();
                Ok(format!(
                    "running at {url}, {} mode, version {}",
                    body["mode"].as_str().unwrap_or("?"),
                    body["version"].as_str().unwrap_or("?")
                ))
            }
            Ok(r) => Err((
                format!("{url}/health answered HTTP {}", r.status()),
                Some("another program may be using that port".to_owned()),
            )),
            Err(_) => Err((
                format!("no proxy is running at {url}"),
                Some(
                    "start it with `llm-proxy` (or the desktop app), or point --proxy at where it runs"
                        .to_owned(),
                ),
            )),
        };
        (started, result)
    }

    async fn auth(&self) -> Outcome {
        let started = Instant::now();
        let models = self
            .http
            .get(format!("{}/v1/models", self.url))
            .bearer_auth(self.token)
            .send()
            .await;
        let result = match models {
            Ok(r) if r.status().is_success() => {
                let body: Value = r.json().await.unwrap_or_default();
                Ok(format!("the access token is accepted; {} model(s) listed", body["data"].as_array().map_or(0, Vec::len)))
            }
            Ok(r) if r.status().as_u16() == 401 => Err((
                "the running proxy refused this configuration's access token (401)".to_owned(),
                Some("PROXY_ACCESS_TOKEN here differs from the running proxy's: use the token its banner or window shows".to_owned()),
            )),
            Ok(r) => Err((format!("/v1/models answered HTTP {}", r.status()), None)),
            Err(err) => Err((err.to_string(), None)),
        };
        (started, result)
    }

    /// A short chat completion, whole or streamed, through the proxy to its target.
    async fn chat(&self, stream: bool) -> Outcome {
        let started = Instant::now();
        let body = json!({"model": "gpt-4o", "stream": stream, "messages": [{"role": "user", "content": "Reply with OK."}], "max_tokens": 5});
        let sent = self
            .http
            .post(format!("{}/v1/chat/completions", self.url))
            .bearer_auth(self.token)
            .json(&body)
            .send()
            .await;
        let result = match sent {
            Ok(r) => {
                let status = r.status();
                let text = r.text().await.unwrap_or_default();
                if !status.is_success() {
                    let start: String = text.chars().take(200).collect();
                    Err((format!("HTTP {status}: {start}"), None))
                } else if stream && !text.trim_end().ends_with("data: [DONE]") {
                    Err(("the stream did not end with [DONE]".to_owned(), None))
                } else if stream {
                    Ok("a stream came through, ending with [DONE]".to_owned())
                } else {
                    Ok("a completion came through".to_owned())
                }
            }
            Err(err) => Err((err.to_string(), None)),
        };
        (started, result)
    }

    /// The page and its API.
    async fn dashboard(&self) -> Outcome {
        let started = Instant::now();
        let answers = |request: reqwest::RequestBuilder| async move {
            request.send().await.is_ok_and(|r| r.status().is_success())
        };
        let page = answers(self.http.get(format!("{}/", self.url))).await;
        let api = answers(
            self.http
                .get(format!("{}/api/config", self.url))
                .bearer_auth(self.token),
        )
        .await;
        let result = if page && api {
            Ok(format!("{}/ and its API answer", self.url))
        } else {
            Err(("the dashboard or its API did not answer".to_owned(), None))
        };
        (started, result)
    }
}

/// Token events are not server events during a check.
struct Quiet;

impl TokenObserver for Quiet {
    fn obtained(&self, _: Duration, _: u64) {}
    fn failed(&self, _: &TokenError, _: Duration) {}
}

/// Steps as the terminal shows them: one line each, and the hint under a failure.
pub fn render(step: &Step) -> String {
    let mark = if step.ok { "ok  " } else { "FAIL" };
    let mut line = format!(
        "[{mark}] {:<14} {} ({} ms)",
        step.name, step.detail, step.ms
    );
    if let Some(hint) = &step.hint {
        line.push_str(&format!("\n       likely cause and fix: {hint}"));
    }
    line
}
