//! Prometheus metrics, served at `/metrics` in the text exposition format.
//!
//! Calls are counted by the log writer after the response has gone, so updating the metrics
//! costs the request nothing.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::formats::usage::Usage;

/// Distinct model labels kept before new models are counted as `other`: clients choose model
/// names, and an unbounded label would grow the scrape without limit.
const MAX_MODEL_LABELS: usize = 100;

// Labels are static strings, numbers and shared model names: a call's metrics then allocate
// nothing (with owned strings they were about a tenth of the log writer's work per call).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    endpoint: &'static str,
    model: Arc<str>,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabels {
    endpoint: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TokenLabels {
    model: Arc<str>,
    kind: &'static str,
}

type HistogramFamily = Family<EndpointLabels, Histogram, fn() -> Histogram>;

pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: HistogramFamily,
    ttfb: HistogramFamily,
    tokens: Family<TokenLabels, Counter>,
    target_errors: Counter,
    token_refreshes: Counter,
    token_refresh_failures: Counter,
    log_dropped: Counter,
    models_seen: Mutex<HashSet<Arc<str>>>,
    /// The labels of calls without a model, and of models past [`MAX_MODEL_LABELS`].
    no_model: Arc<str>,
    other_model: Arc<str>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

fn seconds_histogram() -> Histogram {
    // 1 ms to about 65 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("llm_proxy");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "requests",
            "API calls by endpoint, model and status",
            requests.clone(),
        );
        let latency: HistogramFamily = Family::new_with_constructor(seconds_histogram);
        registry.register(
            "request_duration_seconds",
            "Total time of API calls",
            latency.clone(),
        );
        let ttfb: HistogramFamily = Family::new_with_constructor(seconds_histogram);
        registry.register(
            "time_to_first_byte_seconds",
            "Time to the first byte of the response",
            ttfb.clone(),
        );
        let tokens = Family::<TokenLabels, Counter>::default();
        registry.register(
            "tokens",
            "Tokens by model and kind (prompt, completion)",
            tokens.clone(),
        );
        let target_errors = Counter::default();
        registry.register(
            "target_errors",
            "Calls the target failed (5xx, unreachable, timeouts)",
            target_errors.clone(),
        );
        let token_refreshes = Counter::default();
        registry.register(
            "oauth_token_refreshes",
            "OAuth tokens obtained",
            token_refreshes.clone(),
        );
        let token_refresh_failures = Counter::default();
        registry.register(
            "oauth_token_failures",
            "Failed OAuth token requests",
            token_refresh_failures.clone(),
        );
        let log_dropped = Counter::default();
        registry.register(
            "log_records_dropped",
            "Log records dropped because the log queue was full",
            log_dropped.clone(),
        );
        Self {
            registry,
            requests,
            latency,
            ttfb,
            tokens,
            target_errors,
            token_refreshes,
            token_refresh_failures,
            log_dropped,
            models_seen: Mutex::new(HashSet::new()),
            no_model: Arc::from("none"),
            other_model: Arc::from("other"),
        }
    }
}

/// What the metrics take from a call.
#[derive(Debug, Clone, Copy)]
pub struct Observed<'a> {
    pub path: &'a str,
    pub model: Option<&'a str>,
    pub status: u16,
    pub latency_ms: f64,
    pub ttfb_ms: Option<f64>,
    pub usage: Option<Usage>,
}

impl Metrics {
    pub fn observe(&self, call: Observed<'_>) {
        let endpoint = endpoint_label(call.path);
        let model = self.model_label(call.model);
        self.requests
            .get_or_create(&RequestLabels {
                endpoint,
                model: model.clone(),
                status: call.status,
            })
            .inc();
        let labels = EndpointLabels { endpoint };
        self.latency
            .get_or_create(&labels)
            .observe(call.latency_ms / 1000.0);
        if let Some(ttfb) = call.ttfb_ms {
            self.ttfb.get_or_create(&labels).observe(ttfb / 1000.0);
        }
        if let Some(usage) = call.usage {
            self.tokens
                .get_or_create(&TokenLabels {
                    model: model.clone(),
                    kind: "prompt",
                })
                .inc_by(usage.prompt_tokens);
            self.tokens
                .get_or_create(&TokenLabels {
                    model,
                    kind: "completion",
                })
                .inc_by(usage.completion_tokens);
        }
        if call.status >= 500 {
            self.target_errors.inc();
        }
    }

    pub fn token_refreshed(&self) {
        self.token_refreshes.inc();
    }

    pub fn token_failed(&self) {
        self.token_refresh_failures.inc();
    }

    pub fn log_dropped(&self, n: u64) {
        self.log_dropped.inc_by(n);
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }

    fn model_label(&self, model: Option<&str>) -> Arc<str> {
        let Some(model) = model else {
            return self.no_model.clone();
        };
        let mut seen = self
            .models_seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(known) = seen.get(model) {
            return known.clone();
        }
        if seen.len() < MAX_MODEL_LABELS {
            let label: Arc<str> = Arc::from(model);
            seen.insert(label.clone());
            label
        } else {
            self.other_model.clone()
        }
    }
}

/// The route, not the raw path: `/v1/models/{model}` and pass-through paths would otherwise
/// each make a series.
fn endpoint_label(path: &str) -> &'static str {
    match path.split('?').next().unwrap_or_default() {
        "/v1/chat/completions" => "/v1/chat/completions",
        "/v1/completions" => "/v1/completions",
        "/v1/embeddings" => "/v1/embeddings",
        "/v1/models" => "/v1/models",
        p if p.starts_with("/v1/models/") => "/v1/models/{model}",
        _ => "other",
    }
}
