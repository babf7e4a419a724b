//! The limit on failed authentications per client address.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failed authentications allowed per client address within [`AUTH_FAILURE_WINDOW`].
pub const AUTH_FAILURE_LIMIT: u32 = 10;
pub const AUTH_FAILURE_WINDOW: Duration = Duration::from_secs(60);

/// Failed authentications per client address (the loopback range as one), so a page in the user's browser (or anything
/// on the LAN) cannot guess tokens: after [`AUTH_FAILURE_LIMIT`] failures in a minute, every
/// attempt from that address is refused until the minute is over.
#[derive(Debug, Default)]
pub struct AuthLimiter {
    failures: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl AuthLimiter {
    /// Refuses an address that failed too often; returns the seconds until it may try again.
    pub fn check(&self, ip: IpAddr) -> Result<(), u64> {
        let failures = self.lock();
        match failures.get(&source(ip)) {
            Some((since, count))
                if *count >= AUTH_FAILURE_LIMIT && since.elapsed() < AUTH_FAILURE_WINDOW =>
            {
                Err((AUTH_FAILURE_WINDOW - since.elapsed()).as_secs().max(1))
            }
            _ => Ok(()),
        }
    }

    pub fn failed(&self, ip: IpAddr) {
        let mut failures = self.lock();
        if failures.len() > 10_000 {
            failures.retain(|_, (since, _)| since.elapsed() < AUTH_FAILURE_WINDOW);
        }
        let entry = failures.entry(source(ip)).or_insert((Instant::now(), 0));
        if entry.0.elapsed() >= AUTH_FAILURE_WINDOW {
            *entry = (Instant::now(), 0);
        }
        entry.1 += 1;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, (Instant, u32)>> {
        self.failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The source failures count against: the whole loopback range is one (any local process can
/// pick any 127.x.y.z), every other address is its own.
fn source(ip: IpAddr) -> IpAddr {
    if ip.to_canonical().is_loopback() {
        IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)
    } else {
        ip
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limiter_refuses_after_ten_failures() {
        let limiter = AuthLimiter::default();
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        for _ in 0..AUTH_FAILURE_LIMIT {
            assert!(limiter.check(ip).is_ok());
            limiter.failed(ip);
        }
        let retry = limiter.check(ip).unwrap_err();
        assert!((1..=60).contains(&retry));
        for local in ["127.0.0.2", "127.1.2.3", "::1", "::ffff:127.0.0.9"] {
            assert!(
                limiter.check(local.parse().unwrap()).is_err(),
                "{local} is the same loopback source"
            );
        }
        assert!(
            limiter.check("192.0.2.1".parse().unwrap()).is_ok(),
            "other addresses are not affected"
        );
    }
}
