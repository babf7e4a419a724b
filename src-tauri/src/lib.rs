//! Local LLM Proxy, the desktop app: a tray icon and a window around the `llm-proxy` core.
//!
//! - `desktop` holds the state (settings, secrets, the access token, the proxy) and the
//!   operations on it; `proxy` owns the running server; `launch` turns settings into the
//!   server's configuration through the headless server's own parser.
//! - `settings` is the non-secret settings file; `secrets` the OS keychain with its file
//!   fallback.
//! - `tray` decides what the tray shows from the status and builds it; `actions` is what menu
//!   items and buttons do; `commands` exposes all of it to the window.
//!
//! The window is the same `ui/` the headless server serves; in the app its data comes through
//! commands and events instead of HTTP, so it works while the proxy is off.

pub mod actions;
pub mod commands;
pub mod desktop;
pub mod launch;
pub mod proxy;
pub mod secrets;
pub mod settings;
pub mod tray;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use llm_proxy::dashboard::LiveUpdate;
use serde::Serialize;
use tauri::{AppHandle, Emitter, Manager, RunEvent, Runtime};

use crate::desktop::{Desktop, Paths};
use crate::proxy::{Observer, ProxyStatus};
use crate::secrets::{Keychain, SecretBackend, SecretStore, SecretsFile};
use crate::tray::{Tray, TrayModel};

/// The argument the start-at-login entry passes: start quietly, in the tray.
pub const BACKGROUND_ARG: &str = "--background";
/// Opens the window at start even when it is not the first run.
pub const SHOW_ARG: &str = "--show";

/// A live log update as the window receives it (`data` is JSON text).
#[derive(Clone, Serialize)]
struct LivePayload {
    name: &'static str,
    data: String,
}

/// Turns the proxy's state changes into the tray's look and window events.
pub struct AppObserver<R: Runtime> {
    /// Set once the app is running; nothing is reported before that.
    app: OnceLock<AppHandle<R>>,
    tray: OnceLock<Tray<R>>,
    start_at_login: AtomicBool,
    last_status: Mutex<ProxyStatus>,
}

impl<R: Runtime> AppObserver<R> {
    fn new() -> Self {
        Self {
            app: OnceLock::new(),
            tray: OnceLock::new(),
            start_at_login: AtomicBool::new(false),
            last_status: Mutex::new(ProxyStatus::Stopped),
        }
    }

    fn model(&self) -> TrayModel {
        let status = self
            .last_status
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        TrayModel::new(&status, self.start_at_login.load(Ordering::Relaxed))
    }

    fn refresh_tray(&self) {
        let model = self.model();
        if let Some(tray) = self.tray.get()
            && let Err(err) = tray.update(&model)
        {
            tracing::warn!(error = %err, "cannot update the tray");
        }
    }

    pub fn set_start_at_login(&self, enabled: bool) {
        self.start_at_login.store(enabled, Ordering::Relaxed);
        self.refresh_tray();
        if let Some(app) = self.app.get() {
            let _ = app.emit("desktop-changed", ());
        }
    }
}

impl<R: Runtime> Observer for AppObserver<R> {
    fn status_changed(&self, status: &ProxyStatus) {
        *self
            .last_status
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = status.clone();
        let Some(app) = self.app.get() else {
            return;
        };
        // Menus must be changed on the main thread; the status may change on any.
        let handle = app.clone();
        let _ = app.run_on_main_thread(move || {
            if let Some(observer) = handle.try_state::<Arc<AppObserver<R>>>() {
                observer.refresh_tray();
            }
        });
        let _ = app.emit("proxy-status", status);
    }

    fn live(&self, update: LiveUpdate) {
        let Some(app) = self.app.get() else {
            return;
        };
        let _ = app.emit(
            "live",
            LivePayload {
                name: update.name,
                data: update.data,
            },
        );
    }
}

/// How the app starts.
pub struct Options {
    pub paths: Paths,
    /// Where secrets go first: the OS keychain, or an in-memory store in tests.
    pub keychain: Box<dyn SecretBackend>,
    /// Build the tray and start the proxy if the settings say so (off in tests on the mock
    /// runtime, which drive the commands alone).
    pub shell: bool,
    /// Open the window even when it is not the first run.
    pub show_window: bool,
}

/// Adds the app's commands and state to a builder: shared by `run` and the tests, which
/// build on Tauri's mock runtime.
pub fn builder<R: Runtime>(builder: tauri::Builder<R>, options: Options) -> tauri::Builder<R> {
    let Options {
        paths,
        keychain,
        shell,
        show_window,
    } = options;
    // Loaded before the event loop starts: the keychain may block, and the commands need
    // the state from the first moment the window can call them.
    let observer = Arc::new(AppObserver::<R>::new());
    let store = SecretStore::new(keychain, SecretsFile::new(paths.secrets_file()));
    let desktop = Arc::new(Desktop::load(&paths, store, observer.clone()));
    for warning in desktop.warnings() {
        tracing::warn!("{warning}");
    }
    observer
        .start_at_login
        .store(desktop.settings().start_at_login, Ordering::Relaxed);
    builder
        .manage(observer.clone())
        .manage(desktop)
        .invoke_handler(tauri::generate_handler![
            commands::status,
            commands::set_proxy_enabled,
            commands::access_token,
            commands::regenerate_access_token,
            commands::get_settings,
            commands::save_settings,
            commands::copy_to_clipboard,
            commands::set_autostart,
            commands::open_in_browser,
            commands::test_connection,
            commands::api_config,
            commands::api_health,
            commands::api_stats,
            commands::api_calls,
            commands::api_call,
            commands::api_events,
            commands::api_clear_logs,
        ])
        .setup(move |app| {
            let _ = observer.app.set(app.handle().clone());
            if shell {
                start(app.handle(), show_window)?;
            }
            Ok(())
        })
}

/// Starts the desktop app; returns when the user quits.
pub fn run() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("LOG_LEVEL")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    // As in the headless server, the real environment wins over `.env`.
    let _ = dotenvy::dotenv();
    let args: Vec<String> = std::env::args().collect();
    let show = args.iter().any(|a| a == SHOW_ARG);
    let background = args.iter().any(|a| a == BACKGROUND_ARG);

    let app = builder(
        tauri::Builder::default()
            // First, so a second launch only focuses this one and goes no further.
            .plugin(tauri_plugin_single_instance::init(|app, _args, _cwd| {
                actions::show_window(app);
            }))
            .plugin(tauri_plugin_autostart::init(
                tauri_plugin_autostart::MacosLauncher::LaunchAgent,
                Some(vec![BACKGROUND_ARG]),
            ))
            .plugin(tauri_plugin_clipboard_manager::init())
            .plugin(tauri_plugin_opener::init()),
        Options {
            paths: Paths::platform(),
            keychain: Box::new(Keychain::os()),
            shell: true,
            show_window: show && !background,
        },
    )
    .on_menu_event(|app, event| actions::on_menu(app, event.id().as_ref()))
    .build(tauri::generate_context!());
    let app = match app {
        Ok(app) => app,
        Err(err) => {
            #[cfg(unix)]
            restart_after_failed_handover(&err);
            eprintln!("error: cannot start Local LLM Proxy: {err}");
            std::process::exit(1);
        }
    };
    app.run(|_, event| {
        // Closing the window closes only the window (see `actions::show_window`): the app
        // stays in the tray; only Quit (an explicit exit code) ends it.
        if let RunEvent::ExitRequested {
            api, code: None, ..
        } = event
        {
            api.prevent_exit();
        }
    });
}

/// Builds the tray, starts the proxy if the settings say so, and opens the window on first
/// run or when asked.
fn start<R: Runtime>(app: &AppHandle<R>, show: bool) -> tauri::Result<()> {
    let desktop = app.state::<Arc<Desktop>>().inner().clone();
    let observer = app.state::<Arc<AppObserver<R>>>().inner().clone();
    let tray = Tray::build(app, &observer.model())?;
    let _ = observer.tray.set(tray);
    if desktop.settings().start_proxy_at_launch {
        let desktop = desktop.clone();
        tauri::async_runtime::spawn(async move {
            desktop.start().await;
        });
    }
    if show || desktop.first_run() {
        actions::show_window(app);
    }
    Ok(())
}

/// A second launch hands over to the running instance (single instance, over D-Bus on
/// Linux). If that instance is quitting at that very moment the handover fails ("NoReply")
/// although nothing runs any more: start again from scratch, in the same process with the same
/// arguments, a few times, rather than leave the user with no app at all.
#[cfg(unix)]
fn restart_after_failed_handover(err: &tauri::Error) {
    use std::os::unix::process::CommandExt;
    const ATTEMPT: &str = "LOCAL_LLM_PROXY_HANDOVER_ATTEMPT";
    if !err.to_string().contains("failed to forward arguments") {
        return;
    }
    let attempt: u32 = std::env::var(ATTEMPT)
        .ok()
        .and_then(|a| a.parse().ok())
        .unwrap_or(0);
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    if attempt >= 3 {
        return;
    }
    // Give the leaving instance time to drop its name from the session bus.
    std::thread::sleep(std::time::Duration::from_millis(300));
    let failed = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env(ATTEMPT, (attempt + 1).to_string())
        .exec();
    eprintln!("error: cannot start Local LLM Proxy again: {failed}");
}
