//! The parts of the benchmark, each measuring one thing; [`compare`] runs two proxies side by
//! side for [`baseline`] and [`masking`].

pub mod baseline;
pub mod client_api;
pub mod compare;
pub mod full_log;
pub mod latency;
pub mod masking;
pub mod slow_streams;
pub mod soak;
pub mod streaming;
pub mod throughput;
pub mod translation;
