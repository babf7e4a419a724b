//! Builds the Tauri context and declares the app's commands, so that each one gets an
//! `allow-<command>` permission and the window's capability can list exactly what it may call.

/// Every command the window may invoke; `src/commands.rs` defines them.
const COMMANDS: &[&str] = &[
    "status",
    "set_proxy_enabled",
    "access_token",
    "regenerate_access_token",
    "get_settings",
    "save_settings",
    "copy_to_clipboard",
    "set_autostart",
    "open_in_browser",
    "test_connection",
    "api_config",
    "api_health",
    "api_stats",
    "api_calls",
    "api_call",
    "api_events",
    "api_clear_logs",
];

fn main() {
    let attributes = tauri_build::Attributes::new()
        .app_manifest(tauri_build::AppManifest::new().commands(COMMANDS));
    if let Err(err) = tauri_build::try_build(attributes) {
        panic!("tauri-build failed: {err:#}");
    }
}
