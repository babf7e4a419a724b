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

pub async fn call(client: &reqwest::Client, base: &str, body: &str) -> Result<Duration> {
    let started = Instant::now();
    let response = client
        .post(format!("{base}/chat/completions"))
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
    chunks: u32,
    delay_ms: u32,
) -> Result<reqwest::Response> {
    let response = client
        .post(format!("{base}/chat/completions"))
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .header("x-mock-chunks", chunks.to_string())
        .header("x-mock-delay-ms", delay_ms.to_string())
        .body(chat_body(true))
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
    let response = start_stream(client, base, chunks, delay_ms).await?;
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
/// the whole body (which must end with `data: [DONE]`).
pub async fn stream_to_end(
    client: &reqwest::Client,
    base: &str,
    chunks: u32,
) -> Result<(Duration, Vec<u8>)> {
    let started = Instant::now();
    let response = start_stream(client, base, chunks, 0).await?;
    let mut body = response.bytes_stream();
    let mut text = Vec::new();
    while let Some(piece) = body.next().await {
        text.extend_from_slice(&piece?);
    }
    let elapsed = started.elapsed();
    if !text.ends_with(b"data: [DONE]\n\n") {
        bail!("the stream from {base} did not end with [DONE]");
    }
    Ok((elapsed, text))
}
