//! The tray: its icon and menu as plain data decided from the proxy's status (`TrayModel`,
//! tested without a display), and the Tauri objects that show them.
//!
//! Every action is a menu item: Linux trays deliver no clicks to the app, only the menu.

use tauri::image::Image;
use tauri::menu::{CheckMenuItem, Menu, MenuItem, PredefinedMenuItem};
use tauri::tray::{TrayIcon, TrayIconBuilder};
use tauri::{AppHandle, Runtime};

use crate::proxy::ProxyStatus;

/// What a menu item does; its id in the menu is `as_str`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Toggle,
    CopyBaseUrl,
    CopyToken,
    CopyEnvPosix,
    CopyEnvPowerShell,
    CopyEnvClaudeCode,
    OpenDashboard,
    OpenInBrowser,
    StartAtLogin,
    Quit,
}

impl Action {
    pub const ALL: [Self; 10] = [
        Self::Toggle,
        Self::CopyBaseUrl,
        Self::CopyToken,
        Self::CopyEnvPosix,
        Self::CopyEnvPowerShell,
        Self::CopyEnvClaudeCode,
        Self::OpenDashboard,
        Self::OpenInBrowser,
        Self::StartAtLogin,
        Self::Quit,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Toggle => "toggle",
            Self::CopyBaseUrl => "copy-base-url",
            Self::CopyToken => "copy-token",
            Self::CopyEnvPosix => "copy-env-posix",
            Self::CopyEnvPowerShell => "copy-env-powershell",
            Self::CopyEnvClaudeCode => "copy-env-claude-code",
            Self::OpenDashboard => "open-dashboard",
            Self::OpenInBrowser => "open-in-browser",
            Self::StartAtLogin => "start-at-login",
            Self::Quit => "quit",
        }
    }

    pub fn from_id(id: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == id)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IconState {
    On,
    Off,
    Error,
}

impl IconState {
    fn png(self) -> &'static [u8] {
        match self {
            Self::On => include_bytes!("../../icons/tray-on.png"),
            Self::Off => include_bytes!("../../icons/tray-off.png"),
            Self::Error => include_bytes!("../../icons/tray-error.png"),
        }
    }
}

/// Everything the tray shows, decided from the status alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrayModel {
    pub status_line: String,
    pub toggle_label: &'static str,
    /// Copying the base URL or environment, or opening the browser, needs a running proxy.
    pub needs_running_enabled: bool,
    pub start_at_login: bool,
    pub icon: IconState,
    pub tooltip: String,
}

impl TrayModel {
    pub fn new(status: &ProxyStatus, start_at_login: bool) -> Self {
        let (status_line, icon) = match status {
            ProxyStatus::Running { address, .. } => {
                (format!("Running on http://{address}"), IconState::On)
            }
            ProxyStatus::Stopped => ("Stopped".to_owned(), IconState::Off),
            ProxyStatus::Failed { message, .. } => (format!("Error: {message}"), IconState::Error),
        };
        let running = status.is_running();
        Self {
            tooltip: format!("Local LLM Proxy: {status_line}"),
            status_line,
            toggle_label: if running {
                "Turn proxy off"
            } else {
                "Turn proxy on"
            },
            needs_running_enabled: running,
            start_at_login,
            icon,
        }
    }
}

/// The shells "Copy environment" writes for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shell {
    Posix,
    PowerShell,
}

/// `OPENAI_BASE_URL` and `OPENAI_API_KEY` for a shell, as the copy items give them.
pub fn environment(shell: Shell, api_base_url: &str, token: &str) -> String {
    match shell {
        Shell::PowerShell => format!(
            "$env:OPENAI_BASE_URL = \"{api_base_url}\"\n$env:OPENAI_API_KEY = \"{token}\"\n"
        ),
        Shell::Posix => format!(
            "export OPENAI_BASE_URL=\"{api_base_url}\"\nexport OPENAI_API_KEY=\"{token}\"\n"
        ),
    }
}

/// `ANTHROPIC_BASE_URL` (the proxy's address without `/v1`, which Claude Code appends) and
/// `ANTHROPIC_AUTH_TOKEN`, for bash/zsh.
pub fn claude_code_environment(api_base_url: &str, token: &str) -> String {
    let root = api_base_url.strip_suffix("/v1").unwrap_or(api_base_url);
    format!("export ANTHROPIC_BASE_URL=\"{root}\"\nexport ANTHROPIC_AUTH_TOKEN=\"{token}\"\n")
}

/// The tray icon and the menu items that change with the status.
pub struct Tray<R: Runtime> {
    icon: TrayIcon<R>,
    status: MenuItem<R>,
    toggle: MenuItem<R>,
    needs_running: Vec<MenuItem<R>>,
    start_at_login: CheckMenuItem<R>,
}

impl<R: Runtime> Tray<R> {
    pub fn build(app: &AppHandle<R>, model: &TrayModel) -> tauri::Result<Self> {
        let item = |action: Action, label: &str, enabled: bool| {
            MenuItem::with_id(app, action.as_str(), label, enabled, None::<&str>)
        };
        let status = MenuItem::with_id(app, "status", &model.status_line, false, None::<&str>)?;
        let toggle = item(Action::Toggle, model.toggle_label, true)?;
        let copy_base = item(
            Action::CopyBaseUrl,
            "Copy base URL",
            model.needs_running_enabled,
        )?;
        let copy_token = item(Action::CopyToken, "Copy access token", true)?;
        let copy_posix = item(
            Action::CopyEnvPosix,
            "Copy environment (bash/zsh)",
            model.needs_running_enabled,
        )?;
        let copy_powershell = item(
            Action::CopyEnvPowerShell,
            "Copy environment (PowerShell)",
            model.needs_running_enabled,
        )?;
        let copy_claude_code = item(
            Action::CopyEnvClaudeCode,
            "Copy environment (Claude Code)",
            model.needs_running_enabled,
        )?;
        let open = item(Action::OpenDashboard, "Open dashboard", true)?;
        let browser = item(
            Action::OpenInBrowser,
            "Open in browser",
            model.needs_running_enabled,
        )?;
        let start_at_login = CheckMenuItem::with_id(
            app,
            Action::StartAtLogin.as_str(),
            "Start at login",
            true,
            model.start_at_login,
            None::<&str>,
        )?;
        let quit = item(Action::Quit, "Quit Local LLM Proxy", true)?;
        let menu = Menu::with_items(
            app,
            &[
                &status,
                &PredefinedMenuItem::separator(app)?,
                &toggle,
                &PredefinedMenuItem::separator(app)?,
                &copy_base,
                &copy_token,
                &copy_posix,
                &copy_powershell,
                &copy_claude_code,
                &PredefinedMenuItem::separator(app)?,
                &open,
                &browser,
                &PredefinedMenuItem::separator(app)?,
                &start_at_login,
                &quit,
            ],
        )?;
        let icon = TrayIconBuilder::with_id("main")
            .icon(Image::from_bytes(model.icon.png())?)
            .tooltip(&model.tooltip)
            .menu(&menu)
            .show_menu_on_left_click(true)
            .build(app)?;
        #[cfg(target_os = "macos")]
        {
            // The menu bar wants a monochrome template image it can tint; the state is then
            // in the menu's status line.
            icon.set_icon(Some(Image::from_bytes(include_bytes!(
                "../../icons/tray-template.png"
            ))?))?;
            icon.set_icon_as_template(true)?;
        }
        Ok(Self {
            icon,
            status,
            toggle,
            needs_running: vec![
                copy_base,
                copy_posix,
                copy_powershell,
                copy_claude_code,
                browser,
            ],
            start_at_login,
        })
    }

    pub fn update(&self, model: &TrayModel) -> tauri::Result<()> {
        self.status.set_text(&model.status_line)?;
        self.toggle.set_text(model.toggle_label)?;
        for item in &self.needs_running {
            item.set_enabled(model.needs_running_enabled)?;
        }
        self.start_at_login.set_checked(model.start_at_login)?;
        self.icon.set_tooltip(Some(&model.tooltip))?;
        #[cfg(not(target_os = "macos"))]
        self.icon
            .set_icon(Some(Image::from_bytes(model.icon.png())?))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn running() -> ProxyStatus {
        ProxyStatus::Running {
            address: "127.0.0.1:3000".into(),
            port: 3000,
            base_url: "http://localhost:3000".into(),
        }
    }

    #[test]
    fn the_status_decides_line_icon_toggle_and_enabled_items() {
        let on = TrayModel::new(&running(), false);
        assert_eq!(on.status_line, "Running on http://127.0.0.1:3000");
        assert_eq!(on.toggle_label, "Turn proxy off");
        assert_eq!(on.icon, IconState::On);
        assert!(on.needs_running_enabled);

        let off = TrayModel::new(&ProxyStatus::Stopped, true);
        assert_eq!(off.status_line, "Stopped");
        assert_eq!(off.toggle_label, "Turn proxy on");
        assert_eq!(off.icon, IconState::Off);
        assert!(!off.needs_running_enabled);
        assert!(off.start_at_login);

        let failed = TrayModel::new(
            &ProxyStatus::Failed {
                message: "port 3000 is in use".into(),
                port_in_use: Some(3000),
                suggested_port: Some(3001),
            },
            false,
        );
        assert_eq!(failed.status_line, "Error: port 3000 is in use");
        assert_eq!(failed.toggle_label, "Turn proxy on");
        assert_eq!(failed.icon, IconState::Error);
        assert_eq!(
            failed.tooltip,
            "Local LLM Proxy: Error: port 3000 is in use"
        );
    }

    #[test]
    fn menu_ids_round_trip_and_are_distinct() {
        for action in Action::ALL {
            assert_eq!(Action::from_id(action.as_str()), Some(action));
        }
        assert_eq!(Action::from_id("status"), None);
    }

    #[test]
    fn the_three_icons_are_distinct_pngs() {
        let icons = [IconState::On, IconState::Off, IconState::Error].map(IconState::png);
        for png in icons {
            assert!(png.starts_with(b"\x89PNG"));
            Image::from_bytes(png).unwrap();
        }
        assert_ne!(icons[0], icons[1]);
        assert_ne!(icons[0], icons[2]);
        assert_ne!(icons[1], icons[2]);
    }

    #[test]
    fn environment_exports_for_each_shell() {
        let posix = environment(Shell::Posix, "http://localhost:3000/v1", "tok");
        assert_eq!(
            posix,
            "export OPENAI_BASE_URL=\"http://localhost:3000/v1\"\nexport OPENAI_API_KEY=\"tok\"\n"
        );
        let powershell = environment(Shell::PowerShell, "http://localhost:3000/v1", "tok");
        assert!(powershell.starts_with("$env:OPENAI_BASE_URL = \"http://localhost:3000/v1\""));
        assert_eq!(
            claude_code_environment("http://localhost:3000/v1", "tok"),
            "export ANTHROPIC_BASE_URL=\"http://localhost:3000\"\nexport ANTHROPIC_AUTH_TOKEN=\"tok\"\n"
        );
        assert!(powershell.contains("$env:OPENAI_API_KEY = \"tok\""));
    }
}
