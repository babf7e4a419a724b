//! The window's commands. Each is a thin call into `Desktop`, `actions` or the core's
//! `dashboard` functions (the same ones the HTTP dashboard API calls), so the window works the
//! same whether the proxy is on or off, and no logic lives here twice.

use std::sync::Arc;

use llm_proxy::dashboard::views::{ApiCall, Cleared, ConfigView, EventPage, Health, ServerEvent};
use llm_proxy::dashboard::{self, CallParams, Calls, EventParams};
use llm_proxy::error::ProxyError;
use llm_proxy::state::AppState;
use serde::Serialize;
use serde_json::Value;
use tauri::{AppHandle, Emitter, Runtime, State};

use crate::actions::{self, Copyable};
use crate::desktop::{Desktop, SaveError, SecretUpdates, SettingsView};
use crate::proxy::ProxyStatus;
use crate::secrets::{SecretError, Storage};
use crate::settings::{FieldError, Settings};

/// An error as the window receives it: a message, the HTTP-like status where there is one,
/// and the fields to mark when settings were refused.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CommandError {
    pub message: String,
    pub status: Option<u16>,
    pub fields: Vec<FieldError>,
}

impl CommandError {
    fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            status: None,
            fields: Vec::new(),
        }
    }
}

impl From<ProxyError> for CommandError {
    fn from(err: ProxyError) -> Self {
        Self {
            message: err.user_message(),
            status: Some(err.status().as_u16()),
            fields: Vec::new(),
        }
    }
}

impl From<SecretError> for CommandError {
    fn from(err: SecretError) -> Self {
        Self::new(err.to_string())
    }
}

impl From<SaveError> for CommandError {
    fn from(err: SaveError) -> Self {
        match err {
            SaveError::Invalid(fields) => Self {
                message: "Some settings need fixing: see the marked fields.".into(),
                status: None,
                fields,
            },
            other => Self::new(other.to_string()),
        }
    }
}

/// The app's state as commands receive it. (An async command that borrows it must return a
/// `Result`, which is why some below return `Result<_, ()>` although they cannot fail.)
type Shared<'a> = State<'a, Arc<Desktop>>;

/// Everything the window's header, overview and toggle need.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusView {
    pub proxy: ProxyStatus,
    /// `…/v1` of the running proxy.
    pub api_base_url: Option<String>,
    pub start_at_login: bool,
    pub start_proxy_at_launch: bool,
    pub secret_storage: Storage,
    pub warnings: Vec<String>,
    pub version: &'static str,
}

pub fn status_view(desktop: &Desktop) -> StatusView {
    let proxy = desktop.proxy.status();
    let settings = desktop.settings();
    StatusView {
        api_base_url: proxy.api_base_url(),
        proxy,
        start_at_login: settings.start_at_login,
        start_proxy_at_launch: settings.start_proxy_at_launch,
        secret_storage: desktop.secret_storage(),
        warnings: desktop.warnings(),
        version: env!("CARGO_PKG_VERSION"),
    }
}

#[tauri::command]
pub fn status(desktop: Shared<'_>) -> StatusView {
    status_view(&desktop)
}

#[tauri::command]
pub async fn set_proxy_enabled(desktop: Shared<'_>, enabled: bool) -> Result<StatusView, ()> {
    desktop.set_enabled(enabled).await;
    Ok(status_view(&desktop))
}

#[tauri::command]
pub fn access_token(desktop: Shared<'_>) -> String {
    desktop.token()
}

#[tauri::command]
pub async fn regenerate_access_token(desktop: Shared<'_>) -> Result<StatusView, CommandError> {
    desktop.regenerate_token().await?;
    Ok(status_view(&desktop))
}

#[tauri::command]
pub async fn get_settings(desktop: Shared<'_>) -> Result<SettingsView, ()> {
    Ok(desktop.settings_view().await)
}

/// Stores the settings and applies them. `secrets` holds only what was typed.
#[tauri::command]
pub async fn save_settings(
    desktop: Shared<'_>,
    settings: Settings,
    secrets: Option<SecretUpdates>,
) -> Result<StatusView, CommandError> {
    desktop.save(settings, secrets.unwrap_or_default()).await?;
    Ok(status_view(&desktop))
}

#[tauri::command]
pub fn copy_to_clipboard<R: Runtime>(
    app: AppHandle<R>,
    desktop: Shared<'_>,
    what: Copyable,
) -> Result<(), CommandError> {
    actions::copy(&app, &desktop, what).map_err(CommandError::new)
}

#[tauri::command]
pub fn set_autostart<R: Runtime>(
    app: AppHandle<R>,
    desktop: Shared<'_>,
    enabled: bool,
) -> Result<StatusView, CommandError> {
    actions::set_start_at_login(&app, &desktop, enabled).map_err(CommandError::new)?;
    Ok(status_view(&desktop))
}

#[tauri::command]
pub fn open_in_browser<R: Runtime>(
    app: AppHandle<R>,
    desktop: Shared<'_>,
) -> Result<(), CommandError> {
    actions::open_in_browser(&app, &desktop).map_err(CommandError::new)
}

/// Runs `llm_proxy::check` on the saved settings, against the running proxy, emitting each
/// step as `check-step` as it completes.
#[tauri::command]
pub async fn test_connection<R: Runtime>(
    app: AppHandle<R>,
    desktop: Shared<'_>,
) -> Result<Value, CommandError> {
    let config = desktop.check_config().await.map_err(CommandError::new)?;
    let proxy_url = match desktop.proxy.status() {
        ProxyStatus::Running { address, .. } => format!("http://{address}"),
        _ => format!("http://localhost:{}", config.port),
    };
    let steps = llm_proxy::check::run(&config, &proxy_url, |step| {
        let _ = app.emit("check-step", step);
    })
    .await;
    let passed = steps.iter().all(|s| s.ok);
    Ok(serde_json::json!({"passed": passed, "steps": steps}))
}

/// The running server, for the data views; a clear error while the proxy is off.
async fn running(desktop: &Desktop) -> Result<AppState, CommandError> {
    desktop.proxy.state().await.ok_or_else(|| CommandError {
        message: "The proxy is off: turn it on to see its logs and stats.".into(),
        status: Some(503),
        fields: Vec::new(),
    })
}

#[tauri::command]
pub async fn api_config(desktop: Shared<'_>) -> Result<ConfigView, CommandError> {
    Ok(dashboard::config(&running(&desktop).await?))
}

#[tauri::command]
pub async fn api_health(desktop: Shared<'_>) -> Result<Health, CommandError> {
    Ok(dashboard::health(&running(&desktop).await?))
}

#[tauri::command]
pub async fn api_stats(desktop: Shared<'_>) -> Result<Value, CommandError> {
    Ok(dashboard::stats(&running(&desktop).await?))
}

#[tauri::command]
pub async fn api_calls(
    desktop: Shared<'_>,
    params: Option<CallParams>,
) -> Result<Calls, CommandError> {
    let state = running(&desktop).await?;
    Ok(dashboard::calls(&state, params.unwrap_or_default()).await?)
}

#[tauri::command]
pub async fn api_call(desktop: Shared<'_>, id: i64) -> Result<ApiCall, CommandError> {
    let state = running(&desktop).await?;
    Ok(dashboard::call(&state, id).await?)
}

#[tauri::command]
pub async fn api_events(
    desktop: Shared<'_>,
    params: Option<EventParams>,
) -> Result<EventPage<ServerEvent>, CommandError> {
    let state = running(&desktop).await?;
    Ok(dashboard::server_events(&state, params.unwrap_or_default()).await)
}

#[tauri::command]
pub async fn api_clear_logs(desktop: Shared<'_>) -> Result<Cleared, CommandError> {
    let state = running(&desktop).await?;
    Ok(dashboard::clear_logs(&state, "the desktop window").await)
}
