//! Identifiers and times the proxy makes up: OpenAI-style object ids, random hex for tokens
//! and sessions, and the Unix time in seconds that OpenAI objects carry in `created`.

use rand::Rng;
use rand::distr::Alphanumeric;

/// `<prefix>` and 24 random letters and digits, as OpenAI's ids look (`chatcmpl-…`, `call_…`).
pub fn new_id(prefix: &str) -> String {
    let suffix: String = rand::rng()
        .sample_iter(Alphanumeric)
        .take(24)
        .map(char::from)
        .collect();
    format!("{prefix}{suffix}")
}

/// `bytes` bytes from the thread-local CSPRNG (ChaCha, seeded by the OS), as lowercase hex.
pub fn random_hex(bytes: usize) -> String {
    use std::fmt::Write;
    let mut rng = rand::rng();
    let mut out = String::with_capacity(bytes * 2);
    for _ in 0..bytes {
        // Writing into a String cannot fail.
        let _ = write!(out, "{:02x}", rng.random::<u8>());
    }
    out
}

pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}
