//! Two proxies measured in the same run against the same target, in alternating rounds: drift
//! in the machine (other load, frequency, caches) reaches both alike. The second proxy goes
//! first in every other round, so neither always follows the other.

use std::time::Duration;

use anyhow::Result;
use serde_json::{Value, json};

use crate::process::cpu_seconds;
use crate::proxy::Proxy;
use crate::requests::{Api, stream_to_end};
use crate::scenarios::latency::{alternate, warm_up};
use crate::scenarios::throughput::load;
use crate::stats::{median, percentile, ratio, round, round3, us};

/// What a comparison measures: a proxy's address and process, and the API its client speaks.
#[derive(Debug, Clone, Copy)]
pub struct Endpoint<'a> {
    pub url: &'a str,
    pub pid: u32,
    pub api: Api,
}

impl Proxy {
    pub fn endpoint(&self, api: Api) -> Endpoint<'_> {
        Endpoint {
            url: &self.url,
            pid: self.pid,
            api,
        }
    }
}

/// How long a comparison runs.
#[derive(Debug, Clone, Copy)]
pub struct PairSizes {
    /// Rounds at concurrency 1, and requests per proxy in each.
    pub latency_rounds: usize,
    pub latency_requests: usize,
    /// Rounds at concurrency 64, and how long each proxy is loaded in each.
    pub load_rounds: usize,
    pub load_round: Duration,
}

/// The order of the two proxies in `round`.
fn order(round: usize) -> [usize; 2] {
    if round.is_multiple_of(2) {
        [0, 1]
    } else {
        [1, 0]
    }
}

/// Added latency at c=1 and CPU per request of two proxies: rounds of requests with direct and
/// proxy alternating (as the latency part does), the proxies taking turns.
pub async fn latency_pair(
    client: &reqwest::Client,
    direct: &str,
    proxies: [Endpoint<'_>; 2],
    sizes: PairSizes,
) -> Result<[Value; 2]> {
    for proxy in proxies {
        warm_up(client, direct, proxy.url, proxy.api).await?;
    }
    // CPU over the whole run, the other's rounds included: what a proxy still does after its
    // round (the log's writes) is its own.
    let cpu_before = [cpu_seconds(proxies[0].pid)?, cpu_seconds(proxies[1].pid)?];
    let mut rounds: [Rounds; 2] = Default::default();
    for round in 0..sizes.latency_rounds {
        for i in order(round) {
            let proxy = proxies[i];
            let (d, p) =
                alternate(client, direct, proxy.url, proxy.api, sizes.latency_requests).await?;
            rounds[i].push(d, p);
        }
    }
    let cpu = [
        cpu_seconds(proxies[0].pid)? - cpu_before[0],
        cpu_seconds(proxies[1].pid)? - cpu_before[1],
    ];
    let [a, b] = rounds;
    Ok([a.summary(cpu[0], "request"), b.summary(cpu[1], "request")])
}

/// Added time to the last byte of a stream of `chunks` chunks sent at once, at c=1, and CPU
/// per stream of two proxies: rounds of `streams` streams with direct and proxy alternating,
/// the proxies taking turns.
pub async fn stream_pair(
    client: &reqwest::Client,
    direct: &str,
    proxies: [Endpoint<'_>; 2],
    rounds_of: usize,
    streams: usize,
    chunks: u32,
) -> Result<[Value; 2]> {
    for proxy in proxies {
        alternate_streams(client, direct, proxy, 10, chunks).await?;
    }
    let cpu_before = [cpu_seconds(proxies[0].pid)?, cpu_seconds(proxies[1].pid)?];
    let mut rounds: [Rounds; 2] = Default::default();
    for round in 0..rounds_of {
        for i in order(round) {
            let (d, p) = alternate_streams(client, direct, proxies[i], streams, chunks).await?;
            rounds[i].push(d, p);
        }
    }
    let cpu = [
        cpu_seconds(proxies[0].pid)? - cpu_before[0],
        cpu_seconds(proxies[1].pid)? - cpu_before[1],
    ];
    let [a, b] = rounds;
    Ok([a.summary(cpu[0], "stream"), b.summary(cpu[1], "stream")])
}

/// `n` streams each way, direct and proxy alternating: their times to the last byte in us.
async fn alternate_streams(
    client: &reqwest::Client,
    direct: &str,
    proxied: Endpoint<'_>,
    n: usize,
    chunks: u32,
) -> Result<(Vec<f64>, Vec<f64>)> {
    let (mut d, mut p) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for _ in 0..n {
        d.push(us(stream_to_end(client, direct, Api::Chat, chunks)
            .await?
            .0));
        p.push(us(stream_to_end(client, proxied.url, proxied.api, chunks)
            .await?
            .0));
    }
    Ok((d, p))
}

/// The samples of one proxy over its rounds.
#[derive(Default)]
struct Rounds {
    direct: Vec<f64>,
    proxy: Vec<f64>,
    added_p50: Vec<f64>,
}

impl Rounds {
    fn push(&mut self, mut direct: Vec<f64>, mut proxy: Vec<f64>) {
        self.added_p50
            .push(percentile(&mut proxy, 0.5) - percentile(&mut direct, 0.5));
        self.direct.append(&mut direct);
        self.proxy.append(&mut proxy);
    }

    /// The median of the rounds' added p50 (a noisy round moves it little), p99 over all of
    /// them (a round holds too few for its own), CPU per `unit` (a request, a stream) over all
    /// of them.
    fn summary(mut self, cpu_s: f64, unit: &str) -> Value {
        let requests = self.proxy.len();
        let (dp50, dp99, pp50, pp99) = (
            percentile(&mut self.direct, 0.5),
            percentile(&mut self.direct, 0.99),
            percentile(&mut self.proxy, 0.5),
            percentile(&mut self.proxy, 0.99),
        );
        let mut summary = json!({
            "added_p50_us": median(&mut self.added_p50),
            "added_p50_us_min": percentile(&mut self.added_p50, 0.0),
            "added_p50_us_max": percentile(&mut self.added_p50, 1.0),
            "added_p99_us": round(pp99 - dp99),
            "direct_p50_us": dp50,
            "proxy_p50_us": pp50,
        });
        summary[format!("{unit}s")] = json!(requests);
        summary[format!("cpu_us_per_{unit}")] = json!(round(cpu_s / requests.max(1) as f64 * 1e6));
        summary
    }
}

/// Requests per second at c=64 and CPU per request of two proxies, loaded in turns.
pub async fn throughput_pair(
    client: &reqwest::Client,
    proxies: [&Proxy; 2],
    sizes: PairSizes,
) -> Result<[Value; 2]> {
    for proxy in proxies {
        load(client, &proxy.url, Duration::from_millis(200)).await;
    }
    let cpu_before = [cpu_seconds(proxies[0].pid)?, cpu_seconds(proxies[1].pid)?];
    let mut rps: [Vec<f64>; 2] = Default::default();
    let (mut ok, mut errors) = ([0u64; 2], [0u64; 2]);
    for round in 0..sizes.load_rounds {
        for i in order(round) {
            let (answered, failed) = load(client, &proxies[i].url, sizes.load_round).await;
            rps[i].push(answered as f64 / sizes.load_round.as_secs_f64());
            ok[i] += answered;
            errors[i] += failed;
        }
    }
    let cpu_s = [
        cpu_seconds(proxies[0].pid)? - cpu_before[0],
        cpu_seconds(proxies[1].pid)? - cpu_before[1],
    ];
    Ok(std::array::from_fn(|i| {
        json!({
            "requests": ok[i],
            "errors": errors[i],
            "rps": median(&mut rps[i]),
            "cpu_us_per_request": round(cpu_s[i] / ok[i].max(1) as f64 * 1e6),
        })
    }))
}

/// `a[key] / b[key]` for each key; null where `b`'s figure is not above zero.
pub fn ratios(a: &Value, b: &Value, keys: &[&str]) -> Value {
    keys.iter()
        .map(|&key| {
            let r = match (a[key].as_f64(), b[key].as_f64()) {
                (Some(a), Some(b)) => ratio(a, b),
                _ => None,
            };
            (key.to_owned(), json!(r))
        })
        .collect::<serde_json::Map<_, _>>()
        .into()
}

/// `a[key] - b[key]` for each key.
pub fn differences(a: &Value, b: &Value, keys: &[&str]) -> Value {
    keys.iter()
        .map(|&key| {
            let d = a[key].as_f64().unwrap_or(0.0) - b[key].as_f64().unwrap_or(0.0);
            (key.to_owned(), json!(round(d)))
        })
        .collect::<serde_json::Map<_, _>>()
        .into()
}

/// Proxy CPU a side may add over another: per request and per streamed event.
#[derive(Debug, Clone, Copy)]
pub struct Targets {
    pub us_per_request: f64,
    pub us_per_event: f64,
}

/// What a cost comparison measures besides the pair: the sides' names in the results, the
/// streams in each round and the events in each stream, and the targets.
#[derive(Debug, Clone, Copy)]
pub struct Cost<'a> {
    pub names: [&'a str; 2],
    pub streams_per_round: usize,
    pub events: u32,
    pub targets: Targets,
}

/// What B adds over A, whole answers at c=1 and streams, against the targets: the figures of
/// the translation and Messages parts.
pub async fn added_cost(
    client: &reqwest::Client,
    direct: &str,
    pair: [Endpoint<'_>; 2],
    sizes: PairSizes,
    cost: Cost<'_>,
) -> Result<Value> {
    let Cost {
        names,
        streams_per_round,
        events,
        targets,
    } = cost;
    let [a, b] = latency_pair(client, direct, pair, sizes).await?;
    let rounds = sizes.latency_rounds;
    let [sa, sb] = stream_pair(client, direct, pair, rounds, streams_per_round, events).await?;
    let answers = differences(
        &b,
        &a,
        &["added_p50_us", "added_p99_us", "cpu_us_per_request"],
    );
    let streams = differences(
        &sb,
        &sa,
        &["added_p50_us", "added_p99_us", "cpu_us_per_stream"],
    );
    let per_request = answers["cpu_us_per_request"].as_f64().unwrap_or(0.0);
    let per_event =
        round3(streams["cpu_us_per_stream"].as_f64().unwrap_or(0.0) / f64::from(events));
    let (request_met, event_met) = (
        per_request <= targets.us_per_request,
        per_event <= targets.us_per_event,
    );
    let [name_a, name_b] = names;
    Ok(json!({
        "logging": true,
        "rounds": rounds,
        "requests_per_round": sizes.latency_requests,
        "streams_per_round": streams_per_round,
        "events_per_stream": events,
        "answers": {name_a: a, name_b: b, "difference": answers},
        "streams": {name_a: sa, name_b: sb, "difference": streams},
        "cpu_us_per_request_difference": per_request,
        "cpu_us_per_event_difference": per_event,
        "target": {
            "cpu_us_per_request": targets.us_per_request,
            "cpu_us_per_event": targets.us_per_event,
            "request_met": request_met,
            "event_met": event_met,
            "met": request_met && event_met,
        },
    }))
}
