//! The async runtime the proxy serves on: one thread for every connection.
//!
//! A proxy's work per request is a few reads and writes. Spread over worker threads, each
//! request also paid for waking an idle worker that then found nothing to do (futex calls and
//! context switches, seen with strace): about a third of the CPU per request in the benchmark.
//! One core relays tens of thousands of requests a second, far beyond what any model endpoint
//! answers; the request log writes on a thread of its own.

use tokio::runtime::{Builder, Handle, Runtime};
use tokio::sync::oneshot;

/// The runtime the headless server blocks on.
pub fn build() -> std::io::Result<Runtime> {
    Builder::new_current_thread().enable_all().build()
}

/// The same runtime on a thread of its own, for a host with a runtime of its own (the desktop
/// app): servers are spawned onto [`OwnThread::handle`]. Dropping this ends the thread and
/// whatever still runs on it.
pub struct OwnThread {
    handle: Handle,
    _stop: oneshot::Sender<()>,
}

impl OwnThread {
    pub fn start() -> std::io::Result<Self> {
        let runtime = build()?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("llm-proxy".into())
            .spawn(move || {
                let _ = runtime.block_on(stopped);
            })?;
        Ok(Self {
            handle,
            _stop: stop,
        })
    }

    pub fn handle(&self) -> &Handle {
        &self.handle
    }
}
