//! The desktop app's state: settings, secrets, the access token and the proxy, and the
//! operations the tray and the window share. Nothing here knows about menus or webviews, so
//! the commands and the tray are thin, and this is testable without a display.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use llm_proxy::config::AccessToken;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::launch::{self, Override, SecretValues};
use crate::proxy::{Observer, ProxyController, ProxyStatus};
use crate::secrets::{SecretError, SecretKind, SecretStore, Storage};
use crate::settings::{FieldError, Loaded, SecretsPresent, Settings, SettingsFile};

/// Where the app keeps its files.
#[derive(Debug, Clone)]
pub struct Paths {
    /// `settings.json` and, without a keychain, `secrets.json`.
    pub config_dir: PathBuf,
    /// Where the request log lives; `None`: the server's default (`PROXY_DATA_DIR` or the
    /// platform data dir).
    pub data_dir: Option<PathBuf>,
}

impl Paths {
    /// The platform config dir (`~/.config/local-llm-proxy` on Linux, `~/Library/Application
    /// Support/local-llm-proxy` on macOS, `%APPDATA%\local-llm-proxy\config` on Windows).
    pub fn platform() -> Self {
        let config_dir = llm_proxy::config::project_dirs()
            .map(|dirs| dirs.config_dir().to_path_buf())
            .unwrap_or_else(|| PathBuf::from("config"));
        Self {
            config_dir,
            data_dir: None,
        }
    }

    pub fn settings_file(&self) -> PathBuf {
        self.config_dir.join("settings.json")
    }

    pub fn secrets_file(&self) -> PathBuf {
        self.config_dir.join("secrets.json")
    }
}

/// Secrets typed in the Settings view: `None` keeps the stored one, an empty string removes it.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretUpdates {
    pub target_api_key: Option<String>,
    pub oauth_client_secret: Option<String>,
}

/// What the Settings view shows: the settings, which secrets are set (never their values),
/// which settings the environment overrides, and where secrets are kept.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SettingsView {
    pub settings: Settings,
    pub secrets_set: SecretsSet,
    pub overridden: Vec<Override>,
    pub secret_storage: Storage,
    pub settings_file: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretsSet {
    pub target_api_key: bool,
    pub oauth_client_secret: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    #[error("some settings need fixing")]
    Invalid(Vec<FieldError>),
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error(transparent)]
    Settings(#[from] crate::settings::SettingsError),
}

pub struct Desktop {
    file: SettingsFile,
    data_dir: Option<PathBuf>,
    settings: Mutex<Settings>,
    secrets: Arc<SecretStore>,
    /// The proxy's access token as stored (the environment may override it; see `token`).
    access_token: Mutex<SecretString>,
    first_run: bool,
    /// Problems found at startup, for the window and the server events.
    warnings: Mutex<Vec<String>>,
    warnings_logged: AtomicBool,
    pub proxy: ProxyController,
}

impl Desktop {
    /// Loads settings and the access token (generating and storing one on first use). Blocks on
    /// the keychain: call it before the event loop or on a blocking thread.
    pub fn load(paths: &Paths, secrets: SecretStore, observer: Arc<dyn Observer>) -> Self {
        let file = SettingsFile::new(paths.settings_file());
        let mut warnings = Vec::new();
        let loaded = file.load();
        let first_run = matches!(loaded, Loaded::FirstRun(_));
        match &loaded {
            Loaded::Unusable(_, err) => warnings.push(err.to_string()),
            // Written now, so that only this run counts as the first.
            Loaded::FirstRun(settings) => {
                if let Err(err) = file.save(settings) {
                    warnings.push(err.to_string());
                }
            }
            Loaded::Saved(_) => {}
        }
        let settings = loaded.settings().clone();
        let access_token = match secrets.get(SecretKind::AccessToken) {
            Ok(Some(token)) => SecretString::from(token),
            Ok(None) => {
                let token = AccessToken::generate().secret;
                if let Err(err) = secrets.set(SecretKind::AccessToken, token.expose_secret()) {
                    warnings.push(format!(
                        "The access token could not be saved ({err}); a new one will be made at the next start."
                    ));
                }
                token
            }
            Err(err) => {
                warnings.push(format!(
                    "The access token could not be read ({err}); a temporary one is used."
                ));
                AccessToken::generate().secret
            }
        };
        if let Some(warning) = secrets.take_warning() {
            warnings.push(warning);
        }
        Self {
            file,
            data_dir: paths.data_dir.clone(),
            settings: Mutex::new(settings),
            secrets: Arc::new(secrets),
            access_token: Mutex::new(access_token),
            first_run,
            warnings: Mutex::new(warnings),
            warnings_logged: AtomicBool::new(false),
            proxy: ProxyController::new(observer),
        }
    }

    pub fn first_run(&self) -> bool {
        self.first_run
    }

    pub fn settings(&self) -> Settings {
        self.settings
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Problems found at startup (an unusable settings file, the keychain fallback), for
    /// the window's banner.
    pub fn warnings(&self) -> Vec<String> {
        self.warnings
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub fn secret_storage(&self) -> Storage {
        self.secrets.storage()
    }

    /// The token clients must send: `PROXY_ACCESS_TOKEN` when set, else the stored one.
    pub fn token(&self) -> String {
        match std::env::var("PROXY_ACCESS_TOKEN") {
            Ok(token) if !token.is_empty() => token,
            _ => self
                .access_token
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .expose_secret()
                .to_owned(),
        }
    }

    /// Reads the secrets the settings need. Blocks on the keychain.
    fn secret_values(&self) -> Result<SecretValues, SecretError> {
        Ok(SecretValues {
            access_token: self
                .access_token
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .expose_secret()
                .to_owned(),
            target_api_key: self.secrets.get(SecretKind::TargetApiKey)?,
            oauth_client_secret: self.secrets.get(SecretKind::OAuthClientSecret)?,
        })
    }

    /// Starts (or restarts) the proxy with the current settings.
    pub async fn start(self: &Arc<Self>) -> ProxyStatus {
        let this = self.clone();
        let config = tauri::async_runtime::spawn_blocking(move || {
            let settings = this.settings();
            let secrets = this.secret_values().map_err(|e| e.to_string())?;
            launch::server_config(&settings, &secrets, this.data_dir.as_deref())
        })
        .await;
        match config {
            Ok(Ok(config)) => {
                let status = self.proxy.start(config).await;
                self.log_warnings_once().await;
                status
            }
            Ok(Err(message)) => self.proxy.fail(message).await,
            Err(err) => {
                self.proxy
                    .fail(format!("cannot read the settings: {err}"))
                    .await
            }
        }
    }

    /// Puts the startup warnings into the server events the first time a server runs, so they
    /// are in the log as well as in the window.
    async fn log_warnings_once(&self) {
        let Some(state) = self.proxy.state().await else {
            return;
        };
        if !self.warnings_logged.swap(true, Ordering::Relaxed) {
            for warning in self.warnings() {
                state.warn(warning);
            }
        }
    }

    /// Turns the proxy on or off.
    pub async fn set_enabled(self: &Arc<Self>, enabled: bool) -> ProxyStatus {
        if enabled {
            self.start().await
        } else {
            self.proxy.stop().await
        }
    }

    /// Applies a change by restarting, unless the user turned the proxy off: a running proxy
    /// restarts on it, and one that failed to start (a port in use, a bad setting) tries again
    /// with it, which is what the user who just fixed the setting expects.
    async fn restart_unless_off(self: &Arc<Self>) -> ProxyStatus {
        match self.proxy.status() {
            ProxyStatus::Stopped => ProxyStatus::Stopped,
            ProxyStatus::Running { .. } | ProxyStatus::Failed { .. } => self.start().await,
        }
    }

    /// A new access token, stored and in effect at once (the running proxy restarts).
    pub async fn regenerate_token(self: &Arc<Self>) -> Result<ProxyStatus, SecretError> {
        let token = AccessToken::generate().secret;
        let secrets = self.secrets.clone();
        let value = token.expose_secret().to_owned();
        tauri::async_runtime::spawn_blocking(move || secrets.set(SecretKind::AccessToken, &value))
            .await
            .map_err(|e| SecretError::Refused(e.to_string()))??;
        *self
            .access_token
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = token;
        Ok(self.restart_unless_off().await)
    }

    pub async fn settings_view(self: &Arc<Self>) -> SettingsView {
        let this = self.clone();
        let secrets_set = tauri::async_runtime::spawn_blocking(move || SecretsSet {
            target_api_key: matches!(this.secrets.get(SecretKind::TargetApiKey), Ok(Some(_))),
            oauth_client_secret: matches!(
                this.secrets.get(SecretKind::OAuthClientSecret),
                Ok(Some(_))
            ),
        })
        .await
        .unwrap_or(SecretsSet {
            target_api_key: false,
            oauth_client_secret: false,
        });
        SettingsView {
            settings: self.settings(),
            secrets_set,
            overridden: launch::overrides(&launch::env_is_set),
            secret_storage: self.secrets.storage(),
            settings_file: self.file.path().display().to_string(),
        }
    }

    /// Validates, stores secrets and settings, and applies them: the proxy restarts if it runs.
    /// Nothing is stored when any field is invalid.
    pub async fn save(
        self: &Arc<Self>,
        settings: Settings,
        updates: SecretUpdates,
    ) -> Result<ProxyStatus, SaveError> {
        let this = self.clone();
        tauri::async_runtime::spawn_blocking(move || this.store(settings, updates))
            .await
            .map_err(|e| SaveError::Secret(SecretError::Refused(e.to_string())))??;
        Ok(self.restart_unless_off().await)
    }

    /// The blocking half of `save`.
    fn store(&self, settings: Settings, updates: SecretUpdates) -> Result<(), SaveError> {
        let present = |kind, update: &Option<String>| -> Result<bool, SecretError> {
            Ok(match update {
                Some(value) => !value.is_empty(),
                None => self.secrets.get(kind)?.is_some(),
            })
        };
        let secrets_present = SecretsPresent {
            target_api_key: present(SecretKind::TargetApiKey, &updates.target_api_key)?,
            oauth_client_secret: present(
                SecretKind::OAuthClientSecret,
                &updates.oauth_client_secret,
            )?,
        };
        let errors = settings.validate(secrets_present);
        if !errors.is_empty() {
            return Err(SaveError::Invalid(errors));
        }
        for (kind, update) in [
            (SecretKind::TargetApiKey, &updates.target_api_key),
            (SecretKind::OAuthClientSecret, &updates.oauth_client_secret),
        ] {
            match update.as_deref() {
                None => {}
                Some("") => self.secrets.delete(kind)?,
                Some(value) => self.secrets.set(kind, value.trim())?,
            }
        }
        self.file.save(&settings)?;
        *self.settings.lock().unwrap_or_else(PoisonError::into_inner) = settings;
        Ok(())
    }

    /// Records whether the app starts at login (the OS entry itself is the caller's job).
    pub fn set_start_at_login(&self, enabled: bool) -> Result<(), SaveError> {
        let mut settings = self.settings();
        settings.start_at_login = enabled;
        self.file.save(&settings)?;
        *self.settings.lock().unwrap_or_else(PoisonError::into_inner) = settings;
        Ok(())
    }

    /// The configuration `check` tests: the current settings, as the server would get them.
    pub async fn check_config(self: &Arc<Self>) -> Result<llm_proxy::Config, String> {
        let this = self.clone();
        tauri::async_runtime::spawn_blocking(move || {
            let secrets = this.secret_values().map_err(|e| e.to_string())?;
            launch::server_config(&this.settings(), &secrets, this.data_dir.as_deref())
        })
        .await
        .map_err(|e| e.to_string())?
    }
}

#[cfg(test)]
mod tests {
    use llm_proxy::dashboard::LiveUpdate;

    use super::*;
    use crate::secrets::{MemoryBackend, SecretsFile};
    use crate::settings::AuthMode;

    struct Quiet;
    impl Observer for Quiet {
        fn status_changed(&self, _: &ProxyStatus) {}
        fn live(&self, _: LiveUpdate) {}
    }

    fn desktop(dir: &std::path::Path) -> Arc<Desktop> {
        let paths = Paths {
            config_dir: dir.to_path_buf(),
            data_dir: Some(dir.join("data")),
        };
        let store = SecretStore::new(
            Box::<MemoryBackend>::default(),
            SecretsFile::new(paths.secrets_file()),
        );
        Arc::new(Desktop::load(&paths, store, Arc::new(Quiet)))
    }

    #[tokio::test]
    async fn invalid_settings_store_nothing_and_name_every_field() {
        let dir = tempfile::tempdir().unwrap();
        let desktop = desktop(dir.path());
        assert!(desktop.first_run());
        let saved_defaults = std::fs::read(dir.path().join("settings.json")).unwrap();
        let settings = Settings {
            auth: AuthMode::OAuth,
            target_endpoint: "https://llm.example.com/v1".into(),
            ..Settings::default()
        };
        let updates = SecretUpdates {
            oauth_client_secret: Some("typed-secret".into()),
            ..SecretUpdates::default()
        };
        let Err(SaveError::Invalid(errors)) = desktop.save(settings, updates).await else {
            panic!("saved invalid settings");
        };
        let fields: Vec<_> = errors.iter().map(|e| e.field).collect();
        assert_eq!(fields, ["oauth.tokenEndpoint", "oauth.clientId"]);
        assert_eq!(
            std::fs::read(dir.path().join("settings.json")).unwrap(),
            saved_defaults,
            "invalid settings were written"
        );
        assert!(
            !desktop
                .settings_view()
                .await
                .secrets_set
                .oauth_client_secret
        );
    }

    #[tokio::test]
    async fn valid_settings_and_secrets_are_stored_and_a_blank_secret_removes_it() {
        let dir = tempfile::tempdir().unwrap();
        let desktop = desktop(dir.path());
        let settings = Settings {
            auth: AuthMode::ApiKey,
            target_endpoint: "https://llm.example.com/v1".into(),
            port: 3999,
            ..Settings::default()
        };
        let updates = SecretUpdates {
            target_api_key: Some("sk-stored".into()),
            ..SecretUpdates::default()
        };
        desktop.save(settings.clone(), updates).await.unwrap();
        let view = desktop.settings_view().await;
        assert_eq!(view.settings, settings);
        assert!(view.secrets_set.target_api_key);
        assert!(!serde_json::to_string(&view).unwrap().contains("sk-stored"));
        assert!(
            !std::fs::read_to_string(dir.path().join("settings.json"))
                .unwrap()
                .contains("sk-stored")
        );
        // Saving again without retyping the key keeps it.
        desktop
            .save(settings.clone(), SecretUpdates::default())
            .await
            .unwrap();
        assert!(desktop.settings_view().await.secrets_set.target_api_key);
        // Blank: removed, and API-key auth is then invalid.
        let blank = SecretUpdates {
            target_api_key: Some(String::new()),
            ..SecretUpdates::default()
        };
        let Err(SaveError::Invalid(errors)) = desktop.save(settings, blank).await else {
            panic!("API key auth without a key was accepted");
        };
        assert_eq!(errors[0].field, "targetApiKey");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn saving_after_a_failed_start_tries_again_but_an_off_proxy_stays_off() {
        let dir = tempfile::tempdir().unwrap();
        let desktop = desktop(dir.path());
        let taken = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let settings = Settings {
            port: taken.local_addr().unwrap().port(),
            ..Settings::default()
        };
        desktop
            .save(settings.clone(), SecretUpdates::default())
            .await
            .unwrap();
        assert_eq!(desktop.proxy.status(), ProxyStatus::Stopped, "turned on");
        let status = desktop.start().await;
        assert!(matches!(status, ProxyStatus::Failed { .. }), "{status:?}");

        let free = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let port = free.local_addr().unwrap().port();
        drop(free);
        let fixed = Settings { port, ..settings };
        let status = desktop.save(fixed, SecretUpdates::default()).await.unwrap();
        assert!(
            status.is_running(),
            "the fixed setting was not tried: {status:?}"
        );
        desktop.proxy.stop().await;
    }

    #[tokio::test]
    async fn the_token_is_generated_once_and_regenerated_on_demand() {
        let dir = tempfile::tempdir().unwrap();
        let desktop = desktop(dir.path());
        let first = desktop.token();
        assert!(first.starts_with("llm-proxy-"));
        assert_eq!(desktop.token(), first);
        desktop.regenerate_token().await.unwrap();
        assert_ne!(desktop.token(), first);
        assert_eq!(desktop.proxy.status(), ProxyStatus::Stopped, "turned on");
    }
}
