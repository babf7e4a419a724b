//! The headless server: load `.env`, parse the configuration, start the proxy, print the
//! banner, and stop gracefully on Ctrl-C or SIGTERM. Nothing else lives here.

use std::process::ExitCode;

use clap::Parser;
use llm_proxy::cli::{Args, Subcommand};
use llm_proxy::config::Config;
use tracing_subscriber::EnvFilter;

/// jemalloc rather than the system allocator: callgrind, 1,000 sequential completions, about
/// 140k -> 120k instructions per request (glibc's malloc and free were a fifth of the proxy's
/// own work); 4,000 slow streams 93 -> 84 MB (log off), 107 -> 97 MB (log on); idle RSS 11.8 ->
/// 12.6 MB. mimalloc, tried too, raised idle and stream memory.
#[cfg(all(feature = "jemalloc", not(target_env = "msvc")))]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    // The real environment wins: dotenvy never overrides a variable that is already set.
    if let Err(err) = dotenvy::dotenv()
        && !err.not_found()
    {
        eprintln!("error: cannot read .env: {err}");
        return ExitCode::from(2);
    }
    let mut args = Args::parse();
    let command = args.command.take();
    let config = match args.into_config() {
        Ok(config) => config,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(2);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("LOG_LEVEL").unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match llm_proxy::runtime::build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match command {
        Some(Subcommand::Check { proxy, json }) => runtime.block_on(check(config, proxy, json)),
        None => runtime.block_on(run(config)),
    }
}

/// `llm-proxy check`: the steps as they complete, or all of them as JSON at the end.
async fn check(config: Config, proxy: Option<String>, json: bool) -> ExitCode {
    let proxy = proxy.unwrap_or_else(|| format!("http://localhost:{}", config.port));
    let steps = llm_proxy::check::run(&config, &proxy, |step| {
        if !json {
            println!("{}", llm_proxy::check::render(step));
        }
    })
    .await;
    let passed = steps.iter().all(|s| s.ok);
    if json {
        println!("{}", serde_json::json!({"passed": passed, "steps": steps}));
    } else {
        println!(
            "{}",
            if passed {
                "All checks passed."
            } else {
                "Some checks failed: see the likely causes above."
            }
        );
    }
    if passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

async fn run(config: Config) -> ExitCode {
    let banner = Banner::new(&config);
    let mut server = match llm_proxy::start(config).await {
        Ok(server) => server,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::FAILURE;
        }
    };
    let signal = shutdown_signal();
    banner.print(server.base_url(), server.local_addr());
    let stop = server.shutdown_token();
    tokio::select! {
        () = signal => {
            tracing::info!("shutting down: finishing in-flight requests");
            stop.cancel();
            server.stopped().await;
        }
        () = server.stopped() => {}
    }
    tracing::info!("stopped");
    ExitCode::SUCCESS
}

/// What the user needs to connect a tool, printed once the port is bound.
struct Banner {
    mode: String,
    token: String,
    token_generated: bool,
}

impl Banner {
    fn new(config: &Config) -> Self {
        Self {
            mode: config.mode_description(),
            token: config.access_token.display(),
            token_generated: config.access_token.generated,
        }
    }

    fn print(&self, base_url: &str, listening: std::net::SocketAddr) {
        let note = if self.token_generated {
            " (generated; set PROXY_ACCESS_TOKEN to keep one)"
        } else {
            ""
        };
        println!("Local LLM Proxy {}", env!("CARGO_PKG_VERSION"));
        println!("  Dashboard:     {base_url}/");
        println!("  API base URL:  {base_url}/v1");
        println!("  Mode:          {}", self.mode);
        println!("  Access token:  {}{note}", self.token);
        if !listening.ip().is_loopback() {
            println!(
                "  Warning:       {} is not a loopback address: the proxy is reachable from the network \
                 (clients must use a name in PROXY_ALLOWED_HOSTS)",
                listening.ip()
            );
        }
        // Last, so a script reading the banner knows it is complete.
        println!("  Listening on:  {listening}");
    }
}

/// Resolves on Ctrl-C or SIGTERM. The handlers are installed when this is called, not when
/// it is first awaited: a SIGTERM that arrives right after the banner must not kill the
/// process before they are in place.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let interrupt = signal(SignalKind::interrupt());
        let terminate = signal(SignalKind::terminate());
        async move {
            match (interrupt, terminate) {
                (Ok(mut interrupt), Ok(mut terminate)) => {
                    tokio::select! {
                        _ = interrupt.recv() => {}
                        _ = terminate.recv() => {}
                    }
                }
                _ => std::future::pending::<()>().await,
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}
