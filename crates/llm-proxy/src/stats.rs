//! Live statistics over the last 24 hours, kept as one bucket per minute so any window is a
//! sum of buckets and memory stays bounded however busy the proxy is.
//!
//! Latencies go into a log-scale histogram (each bucket 10% wider than the last), so
//! percentiles are accurate to about 5% at any scale, from a tenth of a millisecond to minutes.

use std::collections::{HashMap, VecDeque};

use serde::Serialize;
use serde_json::{Value, json};

use crate::formats::usage::Usage;

const MINUTES_KEPT: i64 = 24 * 60;
const LATENCY_BUCKETS: usize = 160;
const LATENCY_GROWTH: f64 = 1.1;
const LATENCY_FLOOR_MS: f64 = 0.1;
/// The windows `/api/stats` reports, in minutes.
const WINDOWS: [(&str, i64); 4] = [("1m", 1), ("15m", 15), ("1h", 60), ("24h", 1440)];
/// Distinct models counted apart, per minute and in a snapshot; the rest are `other`. Clients
/// choose model names, and each one kept costs memory and the dashboard's payload.
const MAX_MODELS: usize = 100;
const OTHER_MODEL: &str = "other";
/// How many minutes of per-minute series the dashboard charts.
const SERIES_MINUTES: i64 = 60;

#[derive(Debug, Default)]
pub struct Stats {
    minutes: VecDeque<Minute>,
    totals: Counts,
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
struct Counts {
    requests: u64,
    errors: u64,
    prompt_tokens: u64,
    completion_tokens: u64,
}

impl Counts {
    fn add(&mut self, other: &Counts) {
        self.requests += other.requests;
        self.errors += other.errors;
        self.prompt_tokens += other.prompt_tokens;
        self.completion_tokens += other.completion_tokens;
    }
}

#[derive(Debug)]
struct Minute {
    /// Unix minutes.
    at: i64,
    counts: Counts,
    latency: Box<[u32; LATENCY_BUCKETS]>,
    models: HashMap<String, Counts>,
}

/// What the statistics take from a call. At start they are rebuilt from the stored calls of
/// the last day, read without their headers and bodies (up to 256 KB each, and thousands of
/// calls a day for a coding agent).
#[derive(Debug, Clone, Copy)]
pub struct Sample<'a> {
    /// Unix milliseconds at which the request arrived.
    pub time: i64,
    pub latency_ms: f64,
    /// An error status or a failure noted on the call.
    pub failed: bool,
    pub usage: Option<Usage>,
    pub model: Option<&'a str>,
}

impl Stats {
    pub fn record(&mut self, sample: Sample<'_>) {
        let minute = sample.time.div_euclid(60_000);
        let mut counts = Counts {
            requests: 1,
            errors: u64::from(sample.failed),
            ..Counts::default()
        };
        if let Some(usage) = sample.usage {
            counts.prompt_tokens = usage.prompt_tokens;
            counts.completion_tokens = usage.completion_tokens;
        }
        self.totals.add(&counts);
        let bucket = self.minute(minute);
        let Some(bucket) = bucket else { return };
        bucket.counts.add(&counts);
        bucket.latency[latency_bucket(sample.latency_ms)] += 1;
        let mut model = sample.model.unwrap_or("(none)");
        if bucket.models.len() >= MAX_MODELS && !bucket.models.contains_key(model) {
            model = OTHER_MODEL;
        }
        match bucket.models.get_mut(model) {
            Some(known) => known.add(&counts),
            None => {
                bucket.models.insert(model.to_owned(), counts);
            }
        }
    }

    pub fn clear(&mut self) {
        *self = Self::default();
    }

    /// The bucket for `minute`, created in order; `None` for a minute older than the window.
    fn minute(&mut self, minute: i64) -> Option<&mut Minute> {
        let newest = self.minutes.back().map_or(minute, |m| m.at.max(minute));
        while self
            .minutes
            .front()
            .is_some_and(|m| m.at <= newest - MINUTES_KEPT)
        {
            self.minutes.pop_front();
        }
        if minute <= newest - MINUTES_KEPT {
            return None;
        }
        let position = self.minutes.iter().position(|m| m.at >= minute);
        match position {
            Some(i) if self.minutes[i].at == minute => Some(&mut self.minutes[i]),
            Some(i) => {
                self.minutes.insert(i, Minute::new(minute));
                Some(&mut self.minutes[i])
            }
            None => {
                self.minutes.push_back(Minute::new(minute));
                self.minutes.back_mut()
            }
        }
    }

    /// The JSON of `GET /api/stats`, as of `now_ms`.
    pub fn snapshot(&self, now_ms: i64) -> Value {
        let now = now_ms.div_euclid(60_000);
        let mut windows = serde_json::Map::new();
        for (name, minutes) in WINDOWS {
            // The window is `minutes` whole minutes plus the part of the current one so far,
            // so a window never shows empty just after a minute turns.
            let span_minutes = minutes as f64 + now_ms.rem_euclid(60_000) as f64 / 60_000.0;
            let recent: Vec<&Minute> = self
                .minutes
                .iter()
                .filter(|m| m.at >= now - minutes)
                .collect();
            let mut counts = Counts::default();
            let mut latency = [0u64; LATENCY_BUCKETS];
            for minute in &recent {
                counts.add(&minute.counts);
                for (sum, n) in latency.iter_mut().zip(minute.latency.iter()) {
                    *sum += u64::from(*n);
                }
            }
            windows.insert(
                name.to_owned(),
                json!({
                    "requests": counts.requests,
                    "errors": counts.errors,
                    "errorRate": rate(counts.errors, counts.requests),
                    "promptTokens": counts.prompt_tokens,
                    "completionTokens": counts.completion_tokens,
                    "requestsPerMinute": counts.requests as f64 / span_minutes,
                    "tokensPerMinute": (counts.prompt_tokens + counts.completion_tokens) as f64 / span_minutes,
                    "latencyMs": {
                        "p50": percentile(&latency, 0.50),
                        "p95": percentile(&latency, 0.95),
                        "p99": percentile(&latency, 0.99),
                    },
                }),
            );
        }
        let mut models: HashMap<&str, Counts> = HashMap::new();
        for minute in &self.minutes {
            for (model, counts) in &minute.models {
                models.entry(model).or_default().add(counts);
            }
        }
        // The busiest models by name, and all the rest as `other`, last.
        let mut other = models.remove(&OTHER_MODEL);
        let mut models: Vec<(&str, Counts)> = models.into_iter().collect();
        models.sort_by(|a, b| b.1.requests.cmp(&a.1.requests).then(a.0.cmp(b.0)));
        if models.len() + usize::from(other.is_some()) > MAX_MODELS {
            let other = other.get_or_insert_with(Counts::default);
            for (_, counts) in models.drain(MAX_MODELS - 1..) {
                other.add(&counts);
            }
        }
        models.extend(other.map(|counts| (OTHER_MODEL, counts)));
        let models: Vec<Value> = models
            .into_iter()
            .map(|(model, c)| {
                json!({"model": model, "requests": c.requests, "errors": c.errors,
                       "promptTokens": c.prompt_tokens, "completionTokens": c.completion_tokens})
            })
            .collect();
        let series: Vec<Value> = (now - SERIES_MINUTES + 1..=now)
            .map(|at| {
                let minute = self.minutes.iter().find(|m| m.at == at);
                let counts = minute.map(|m| m.counts.clone()).unwrap_or_default();
                let latency: Vec<u64> = minute.map_or_else(
                    || vec![0; LATENCY_BUCKETS],
                    |m| m.latency.iter().map(|n| u64::from(*n)).collect(),
                );
                json!({
                    "minute": at * 60,
                    "requests": counts.requests,
                    "errors": counts.errors,
                    "tokens": counts.prompt_tokens + counts.completion_tokens,
                    "p50Ms": percentile(&latency, 0.5),
                    "p95Ms": percentile(&latency, 0.95),
                })
            })
            .collect();
        json!({
            "totals": {
                "requests": self.totals.requests,
                "errors": self.totals.errors,
                "errorRate": rate(self.totals.errors, self.totals.requests),
                "promptTokens": self.totals.prompt_tokens,
                "completionTokens": self.totals.completion_tokens,
            },
            "windows": windows,
            "models": models,
            "series": series,
        })
    }
}

impl Minute {
    fn new(at: i64) -> Self {
        Self {
            at,
            counts: Counts::default(),
            latency: Box::new([0; LATENCY_BUCKETS]),
            models: HashMap::new(),
        }
    }
}

fn rate(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// Bucket `i` holds latencies up to `0.1 ms × 1.1^i`: from a tenth of a millisecond (a
/// proxy's own answers) to about seven minutes (long streams) in 160 buckets.
fn latency_bucket(ms: f64) -> usize {
    if ms <= LATENCY_FLOOR_MS {
        return 0;
    }
    (((ms / LATENCY_FLOOR_MS).ln() / LATENCY_GROWTH.ln()).ceil() as usize).min(LATENCY_BUCKETS - 1)
}

fn bucket_upper_ms(i: usize) -> f64 {
    LATENCY_FLOOR_MS * LATENCY_GROWTH.powi(i as i32)
}

/// The upper bound of the bucket holding the `q` quantile; `null` with no data.
fn percentile(histogram: &[u64], q: f64) -> Value {
    let total: u64 = histogram.iter().sum();
    if total == 0 {
        return Value::Null;
    }
    let rank = (q * total as f64).ceil().max(1.0) as u64;
    let mut seen = 0;
    for (i, n) in histogram.iter().enumerate() {
        seen += n;
        if seen >= rank {
            return json!((bucket_upper_ms(i) * 100.0).round() / 100.0);
        }
    }
    Value::Null
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(time_ms: i64, latency_ms: f64, status: u16, model: &str) -> Sample<'_> {
        Sample {
            time: time_ms,
            latency_ms,
            failed: status >= 400,
            usage: Some(Usage {
                prompt_tokens: 10,
                completion_tokens: 5,
                total_tokens: 15,
            }),
            model: Some(model),
        }
    }

    #[test]
    fn windows_percentiles_and_models() {
        let now = 1_767_225_600_000;
        let mut stats = Stats::default();
        for i in 0..100 {
            stats.record(call(now - 1000, f64::from(i + 1), 200, "a"));
        }
        stats.record(call(now - 30 * 60_000, 5000.0, 500, "b"));
        let snapshot = stats.snapshot(now);
        let one = &snapshot["windows"]["1m"];
        assert_eq!(one["requests"], 100);
        assert_eq!(one["errors"], 0);
        let p50 = one["latencyMs"]["p50"].as_f64().unwrap();
        assert!((50.0..=55.0).contains(&p50), "{p50}");
        let p99 = one["latencyMs"]["p99"].as_f64().unwrap();
        assert!((99.0..=109.0).contains(&p99), "{p99}");
        let hour = &snapshot["windows"]["1h"];
        assert_eq!(hour["requests"], 101);
        assert_eq!(hour["errors"], 1);
        assert_eq!(snapshot["models"][0]["model"], "a");
        assert_eq!(snapshot["totals"]["promptTokens"], 1010);
        assert_eq!(snapshot["series"].as_array().unwrap().len(), 60);
    }

    #[test]
    fn models_past_the_hundredth_are_counted_as_other() {
        let now = 1_767_225_600_000;
        let mut stats = Stats::default();
        let names: Vec<String> = (0..150).map(|i| format!("model-{i:03}")).collect();
        for name in &names {
            stats.record(call(now, 1.0, 200, name));
        }
        stats.record(call(now, 1.0, 200, "model-000"));
        let snapshot = stats.snapshot(now);
        let models = snapshot["models"].as_array().unwrap();
        assert_eq!(models.len(), MAX_MODELS);
        assert_eq!(models[0]["model"], "model-000");
        assert_eq!(models[0]["requests"], 2);
        let other = models.iter().find(|m| m["model"] == OTHER_MODEL).unwrap();
        assert_eq!(
            other["requests"], 51,
            "the minute's models past the hundredth, and the least busy of the others"
        );
        let counted: u64 = models.iter().map(|m| m["requests"].as_u64().unwrap()).sum();
        assert_eq!(counted, 151, "every call is counted somewhere");
    }

    #[test]
    fn minutes_older_than_a_day_fall_out() {
        let now = 1_767_225_600_000;
        let mut stats = Stats::default();
        stats.record(call(now - 25 * 3_600_000, 10.0, 200, "old"));
        stats.record(call(now, 10.0, 200, "new"));
        stats.record(call(now - 25 * 3_600_000, 10.0, 200, "late"));
        assert_eq!(stats.snapshot(now)["windows"]["24h"]["requests"], 1);
        assert_eq!(stats.minutes.len(), 1);
    }

    #[test]
    fn sub_millisecond_latencies_are_resolved() {
        let now = 1_767_225_600_000;
        let mut stats = Stats::default();
        for _ in 0..10 {
            stats.record(call(now, 0.3, 200, "fast"));
        }
        let p50 = stats.snapshot(now)["windows"]["1m"]["latencyMs"]["p50"]
            .as_f64()
            .unwrap();
        assert!((0.3..=0.34).contains(&p50), "{p50}");
    }
}
