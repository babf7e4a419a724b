//! Small figures from samples: percentiles, means, rounding for the report.

use std::time::Duration;

/// The `q` quantile (nearest rank), rounded to two decimals; 0 for no values.
pub fn percentile(values: &mut [f64], q: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let index = ((values.len() as f64 - 1.0) * q).round() as usize;
    round(values[index])
}

pub fn median(values: &mut [f64]) -> f64 {
    percentile(values, 0.5)
}

pub fn mean(values: &[f64]) -> f64 {
    if values.is_empty() {
        0.0
    } else {
        values.iter().sum::<f64>() / values.len() as f64
    }
}

/// `a / b` rounded, or `None` when `b` is not above zero (a ratio to nothing means nothing).
pub fn ratio(a: f64, b: f64) -> Option<f64> {
    (b > 0.0).then(|| round(a / b))
}

pub fn us(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e6
}

pub fn round(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

pub fn round3(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}
