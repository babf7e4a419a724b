//! The cost of translating to Anthropic's Messages API: the same proxy with the same target key,
//! passing chat requests through (A, `TARGET_API=openai`) and translating them (B,
//! `TARGET_API=anthropic`: each request written as `POST /messages`, each answer and stream
//! event written back as OpenAI's), on the same mock target, in alternating rounds. Before
//! measuring, B's answers are checked to be the chat completions and chunks a client expects.

use std::path::Path;

use anyhow::{Context, Result, bail, ensure};
use serde_json::Value;

use crate::proxy::{Launch, Proxy, TOKEN};
use crate::requests::{Api, chat_body, stream_to_end};
use crate::scenarios::compare::{Cost, PairSizes, Targets, added_cost};
use crate::scenarios::masking::TARGET_KEY;

/// Text deltas in each measured stream (the mock sends them at once).
pub const STREAM_EVENTS: u32 = 100;
/// The targets: proxy CPU that translation may add per request and per streamed event.
pub const TARGET_US_PER_REQUEST: f64 = 15.0;
pub const TARGET_US_PER_EVENT: f64 = 1.0;

/// Both proxies side by side, request log on: whole answers at c=1, then streams at c=1.
pub async fn translation(
    client: &reqwest::Client,
    direct: &str,
    program: &Path,
    sizes: PairSizes,
    streams_per_round: usize,
) -> Result<Value> {
    let passthrough = Launch::new(program, direct, true).target_api_key(TARGET_KEY);
    let translating = passthrough.clone().target_api("anthropic");
    let mut proxies = [
        Proxy::start_ready(&passthrough, client).await?,
        Proxy::start_ready(&translating, client).await?,
    ];
    let result = measure(client, direct, &proxies, sizes, streams_per_round).await;
    for proxy in &mut proxies {
        proxy.stop().await?;
    }
    result
}

async fn measure(
    client: &reqwest::Client,
    direct: &str,
    proxies: &[Proxy; 2],
    sizes: PairSizes,
    streams_per_round: usize,
) -> Result<Value> {
    let expected = answer(client, direct).await?;
    let text = expected["choices"][0]["message"]["content"]
        .as_str()
        .context("the mock's chat completion has no text")?;
    for (name, proxy) in [("pass-through", &proxies[0]), ("anthropic", &proxies[1])] {
        check(client, &proxy.url, text)
            .await
            .with_context(|| format!("the {name} proxy's answers are wrong"))?;
    }
    let pair = [
        proxies[0].endpoint(Api::Chat),
        proxies[1].endpoint(Api::Chat),
    ];
    let cost = Cost {
        names: ["passthrough", "anthropic"],
        streams_per_round,
        events: STREAM_EVENTS,
        targets: Targets {
            us_per_request: TARGET_US_PER_REQUEST,
            us_per_event: TARGET_US_PER_EVENT,
        },
    };
    added_cost(client, direct, pair, sizes, cost).await
}

/// One whole answer as JSON.
async fn answer(client: &reqwest::Client, base: &str) -> Result<Value> {
    let response = client
        .post(format!("{base}/chat/completions"))
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body(chat_body(false))
        .send()
        .await?;
    let status = response.status();
    let body = response.bytes().await?;
    if !status.is_success() {
        bail!("HTTP {status}: {}", String::from_utf8_lossy(&body));
    }
    serde_json::from_slice(&body).context("the answer is not JSON")
}

/// A whole answer through `proxied` is a chat completion with `text` and the mock's usage, and
/// a stream is chat completion chunks carrying every delta, a stop, and `[DONE]`.
async fn check(client: &reqwest::Client, proxied: &str, text: &str) -> Result<()> {
    let got = answer(client, proxied).await?;
    ensure!(
        got["object"] == "chat.completion"
            && got["choices"][0]["message"]["role"] == "assistant"
            && got["choices"][0]["message"]["content"] == text
            && got["choices"][0]["finish_reason"] == "stop",
        "not the chat completion with the mock's text: {got}"
    );
    let usage = &got["usage"];
    ensure!(
        usage["prompt_tokens"] == 18 && usage["completion_tokens"] == 52,
        "not the mock's usage (18 prompt, 52 completion tokens): {usage}"
    );
    let (_, body) = stream_to_end(client, proxied, Api::Chat, STREAM_EVENTS).await?;
    let body = String::from_utf8(body).context("the stream is not UTF-8")?;
    let data: Vec<&str> = body
        .lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .map(str::trim)
        .collect();
    ensure!(
        data.last() == Some(&"[DONE]"),
        "the stream does not end with [DONE]"
    );
    let (mut content, mut stopped) = (String::new(), false);
    for event in &data[..data.len() - 1] {
        let chunk: Value = serde_json::from_str(event)
            .with_context(|| format!("a stream event is not JSON: {event}"))?;
        ensure!(
            chunk["object"] == "chat.completion.chunk",
            "not a chat completion chunk: {chunk}"
        );
        let choice = &chunk["choices"][0];
        content.push_str(choice["delta"]["content"].as_str().unwrap_or_default());
        stopped |= choice["finish_reason"] == "stop";
    }
    let expected = "token ".repeat(STREAM_EVENTS as usize);
    ensure!(
        content == expected,
        "the stream's text is {} characters, not the {} of {STREAM_EVENTS} deltas",
        content.len(),
        expected.len()
    );
    ensure!(stopped, "no chunk of the stream has finish_reason stop");
    Ok(())
}
