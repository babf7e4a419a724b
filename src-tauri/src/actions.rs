//! What the tray's menu items and the window's buttons do, in one place for both.

use std::sync::Arc;

use serde::Deserialize;
use tauri::{AppHandle, Manager, Runtime};
use tauri_plugin_autostart::ManagerExt as _;
use tauri_plugin_clipboard_manager::ClipboardExt as _;
use tauri_plugin_opener::OpenerExt as _;

use crate::AppObserver;
use crate::desktop::Desktop;
use crate::proxy::ProxyStatus;
use crate::tray::{self, Action, Shell};

/// Things the user can copy.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Copyable {
    BaseUrl,
    Token,
    EnvPosix,
    EnvPowerShell,
    EnvClaudeCode,
}

/// What needs a running proxy says so when it is off.
const PROXY_OFF: &str = "The proxy is off: turn it on first.";

pub fn copy<R: Runtime>(
    app: &AppHandle<R>,
    desktop: &Desktop,
    what: Copyable,
) -> Result<(), String> {
    let api_base_url = || desktop.proxy.status().api_base_url().ok_or(PROXY_OFF);
    let text = match what {
        Copyable::BaseUrl => api_base_url()?,
        Copyable::Token => desktop.token(),
        Copyable::EnvPosix => tray::environment(Shell::Posix, &api_base_url()?, &desktop.token()),
        Copyable::EnvPowerShell => {
            tray::environment(Shell::PowerShell, &api_base_url()?, &desktop.token())
        }
        Copyable::EnvClaudeCode => {
            tray::claude_code_environment(&api_base_url()?, &desktop.token())
        }
    };
    app.clipboard()
        .write_text(text)
        .map_err(|e| format!("cannot copy to the clipboard: {e}"))
}

/// Adds or removes the OS's start-at-login entry, then records the choice.
pub fn set_start_at_login<R: Runtime>(
    app: &AppHandle<R>,
    desktop: &Desktop,
    enabled: bool,
) -> Result<(), String> {
    let launcher = app.autolaunch();
    let result = if enabled {
        launcher.enable()
    } else {
        launcher.disable()
    };
    result.map_err(|e| format!("cannot change the start-at-login entry: {e}"))?;
    desktop
        .set_start_at_login(enabled)
        .map_err(|e| e.to_string())?;
    if let Some(observer) = app.try_state::<Arc<AppObserver<R>>>() {
        observer.set_start_at_login(enabled);
    }
    Ok(())
}

/// Opens the window, creating it if it is closed. Closing destroys it: the webview's processes
/// take hundreds of megabytes, which an app that lives in the tray should not hold while unseen.
pub fn show_window<R: Runtime>(app: &AppHandle<R>) {
    if let Some(window) = app.get_webview_window(MAIN_WINDOW) {
        let _ = window.unminimize();
        let _ = window.show();
        let _ = window.set_focus();
        return;
    }
    let Some(config) = app
        .config()
        .app
        .windows
        .iter()
        .find(|w| w.label == MAIN_WINDOW)
        .cloned()
    else {
        tracing::error!("tauri.conf.json has no window labelled {MAIN_WINDOW}");
        return;
    };
    match tauri::WebviewWindowBuilder::from_config(app, &config).and_then(|b| b.build()) {
        Ok(window) => {
            let _ = window.set_focus();
        }
        Err(err) => tracing::error!(error = %err, "cannot open the window"),
    }
}

/// The window's label, as `tauri.conf.json` and the capability name it.
pub const MAIN_WINDOW: &str = "main";

pub fn open_in_browser<R: Runtime>(app: &AppHandle<R>, desktop: &Desktop) -> Result<(), String> {
    let ProxyStatus::Running { base_url, .. } = desktop.proxy.status() else {
        return Err(PROXY_OFF.to_owned());
    };
    app.opener()
        .open_url(format!("{base_url}/"), None::<&str>)
        .map_err(|e| format!("cannot open the browser: {e}"))
}

/// Stops the server (finishing in-flight requests), then exits.
pub fn quit<R: Runtime>(app: &AppHandle<R>, desktop: Arc<Desktop>) {
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        desktop.proxy.stop().await;
        app.exit(0);
    });
}

/// A tray menu item was chosen.
pub fn on_menu<R: Runtime>(app: &AppHandle<R>, id: &str) {
    let Some(action) = Action::from_id(id) else {
        return;
    };
    let desktop = app.state::<Arc<Desktop>>().inner().clone();
    let report = |result: Result<(), String>| {
        if let Err(message) = result {
            tracing::warn!(%message, action = action.as_str(), "tray action failed");
        }
    };
    match action {
        Action::Toggle => {
            let running = desktop.proxy.status().is_running();
            tauri::async_runtime::spawn(async move {
                desktop.set_enabled(!running).await;
            });
        }
        Action::CopyBaseUrl => report(copy(app, &desktop, Copyable::BaseUrl)),
        Action::CopyToken => report(copy(app, &desktop, Copyable::Token)),
        Action::CopyEnvPosix => report(copy(app, &desktop, Copyable::EnvPosix)),
        Action::CopyEnvPowerShell => report(copy(app, &desktop, Copyable::EnvPowerShell)),
        Action::CopyEnvClaudeCode => report(copy(app, &desktop, Copyable::EnvClaudeCode)),
        Action::OpenDashboard => show_window(app),
        Action::OpenInBrowser => report(open_in_browser(app, &desktop)),
        Action::StartAtLogin => {
            let enabled = !desktop.settings().start_at_login;
            let result = set_start_at_login(app, &desktop, enabled);
            if result.is_err() {
                // The menu ticked its box itself when clicked: put it back as it really is.
                if let Some(observer) = app.try_state::<Arc<AppObserver<R>>>() {
                    observer.set_start_at_login(!enabled);
                }
            }
            report(result);
        }
        Action::Quit => quit(app, desktop),
    }
}
