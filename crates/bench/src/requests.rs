//! The requests the load client sends: a chat completion, and a stream timed chunk by chunk or
//! to its end.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures_util::StreamExt;
use serde_json::json;

use crate::proxy::TOKEN;
use crate::stats::us;

pub fn chat_body(stream: bool) -> String {
    json!({"model": "gpt-4o", "stream": stream, "messages": [{"role": "user", "content": "Say something about benchmarks."}]}).to_string()
}

/// The API a benchmark client speaks to the proxy (the mock target speaks chat completions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    Chat,
    /// Anthropic's Messages, as Claude Code speaks it.
    Messages,
    /// OpenAI's Responses, as Codex speaks it.
    Responses,
}

impl Api {
    /// Where its calls go, after the base URL's `/v1`.
    pub fn path(self) -> &'static str {
        match self {
            Self::Chat => "/chat/completions",
            Self::Messages => "/messages",
            Self::Responses => "/responses",
        }
    }

    /// Its name in the results.
    pub fn name(self) -> &'static str {
        match self {
            Self::Chat => "chat",
            Self::Messages => "messages",
            Self::Responses => "responses",
        }
    }

    pub fn body(self, stream: bool) -> String {
        match self {
            Self::Chat => chat_body(stream),
            Self::Messages => json!({"model": "gpt-4o", "max_tokens": 1024, "stream": stream,
                "messages": [{"role": "user", "content": "Say something about benchmarks."}]})
            .to_string(),
            Self::Responses => json!({"model": "gpt-4o", "stream": stream, "store": false,
                "input": "Say something about benchmarks."})
            .to_string(),
        }
    }

    /// How a complete stream of this API ends.
    pub fn stream_end(self) -> &'static [u8] {
        match self {
            Self::Chat => b"data: [DONE]\n\n",
            Self::Messages => b"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
            Self::Responses => b"\"type\":\"response.completed\"}\n\n",
        }
    }
}

pub async fn call(client: &reqwest::Client, base: &str, body: &str) -> Result<Duration> {
    call_as(client, base, Api::Chat, body).await
}

/// One whole answer to `body`, sent as `api` speaks: its time.
pub async fn call_as(
    client: &reqwest::Client,
    base: &str,
    api: Api,
    body: &str,
) -> Result<Duration> {
    let started = Instant::now();
    let response = client
        .post(format!("{base}{}", api.path()))
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await?;
    if !response.status().is_success() {
        bail!("HTTP {}", response.status());
    }
    response.bytes().await?;
    Ok(started.elapsed())
}

/// Asks the mock for a stream of `chunks` chunks, `delay_ms` apart; the answer's head.
async fn start_stream(
    client: &reqwest::Client,
    base: &str,
    api: Api,
    chunks: u32,
    delay_ms: u32,
) -> Result<reqwest::Response> {
    let response = client
        .post(format!("{base}{}", api.path()))
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .header("x-mock-chunks", chunks.to_string())
        .header("x-mock-delay-ms", delay_ms.to_string())
        .body(api.body(true))
        .send()
        .await?;
    if !response.status().is_success() {
        bail!("HTTP {}", response.status());
    }
    Ok(response)
}

/// One stream: (time to first byte in us, mean gap between chunks in us, longest gap between
/// chunks in us).
pub async fn one_stream(
    client: &reqwest::Client,
    base: &str,
    chunks: u32,
    delay_ms: u32,
) -> Result<(f64, f64, f64)> {
    let started = Instant::now();
    let response = start_stream(client, base, Api::Chat, chunks, delay_ms).await?;
    let mut body = response.bytes_stream();
    let mut first = None;
    let mut last = started;
    let mut longest = Duration::ZERO;
    let mut pieces = 0u32;
    let mut text = Vec::new();
    while let Some(piece) = body.next().await {
        let piece = piece?;
        let now = Instant::now();
        if first.is_some() {
            longest = longest.max(now - last);
        }
        first.get_or_insert(now - started);
        last = now;
        pieces += 1;
        text.extend_from_slice(&piece);
    }
    if !text.ends_with(b"data: [DONE]\n\n") {
        bail!("the stream did not end with [DONE]");
    }
    let first = first.context("empty stream")?;
    let span = last.duration_since(started) - first;
    Ok((
        us(first),
        us(span) / f64::from(pieces.max(2) - 1),
        us(longest),
    ))
}

/// One stream of `chunks` chunks sent at once, read to its end: the time to its last byte, and
/// the whole body (which must end as `api`'s streams end).
pub async fn stream_to_end(
    client: &reqwest::Client,
    base: &str,
    api: Api,
    chunks: u32,
) -> Result<(Duration, Vec<u8>)> {
    let started = Instant::now();
    let response = start_stream(client, base, api, chunks, 0).await?;
    let mut body = response.bytes_stream();
    let mut text = Vec::new();
    while let Some(piece) = body.next().await {
        text.extend_from_slice(&piece?);
    }
    let elapsed = started.elapsed();
    if !text.ends_with(api.stream_end()) {
        bail!("the stream from {base} did not end as a complete {api:?} stream");
    }
    Ok((elapsed, text))
}
