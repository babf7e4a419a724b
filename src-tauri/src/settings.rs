//! The desktop app's non-secret settings: what the Settings view edits, kept as JSON in the
//! platform config directory. Secrets are not here (see `secrets`); they are only referred to
//! as set or not set.
//!
//! The settings do not become a server configuration by themselves: `launch` turns them into
//! the headless server's flags, so one parser (`llm_proxy::cli::Args`) validates both, and
//! environment variables (and `.env`) still win over what the window saved.

use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use llm_proxy::config::TargetApi;
use llm_proxy::model_aliases::ModelAliases;
use serde::{Deserialize, Serialize};
use url::Url;

/// How the proxy authenticates to the target.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuthMode {
    #[default]
    None,
    ApiKey,
    #[serde(rename = "oauth")]
    OAuth,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct OAuthSettings {
    pub token_endpoint: String,
    pub client_id: String,
    pub scope: String,
    pub audience: String,
    pub refresh_buffer_minutes: u64,
}

impl Default for OAuthSettings {
    fn default() -> Self {
        Self {
            token_endpoint: String::new(),
            client_id: String::new(),
            scope: String::new(),
            audience: String::new(),
            refresh_buffer_minutes: 5,
        }
    }
}

/// Every field has a default, so a file written by an older version still loads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Settings {
    pub port: u16,
    pub host: String,
    /// Answer locally even when a target is set (the proxy is also in placeholder mode while
    /// no target is set).
    pub placeholder: bool,
    pub target_endpoint: String,
    /// The API the target speaks (`TARGET_API`): `openai`, `anthropic`, `gemini`, `ollama` or `responses`.
    pub target_api: String,
    /// `MODEL_ALIASES`: `pattern=model` rules, comma-separated; empty for none.
    pub model_aliases: String,
    pub auth: AuthMode,
    pub oauth: OAuthSettings,
    pub log_bodies: bool,
    pub log_max_entries: u64,
    pub log_max_age_days: u64,
    pub start_at_login: bool,
    pub start_proxy_at_launch: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            port: 3000,
            host: "127.0.0.1".to_owned(),
            placeholder: false,
            target_endpoint: String::new(),
            target_api: TargetApi::default().name().to_owned(),
            model_aliases: String::new(),
            auth: AuthMode::None,
            oauth: OAuthSettings::default(),
            log_bodies: true,
            log_max_entries: 10_000,
            log_max_age_days: 30,
            start_at_login: false,
            start_proxy_at_launch: true,
        }
    }
}

/// Which secrets the keychain holds, for validation (the values never come here).
#[derive(Debug, Clone, Copy, Default)]
pub struct SecretsPresent {
    pub target_api_key: bool,
    pub oauth_client_secret: bool,
}

/// A problem with one field, shown next to it in the window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// The field's name in the settings JSON (`oauth.clientId` for nested ones).
    pub field: &'static str,
    pub message: String,
}

impl FieldError {
    fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}

impl Settings {
    /// Every problem at once, so the window can mark all the fields that need fixing.
    pub fn validate(&self, secrets: SecretsPresent) -> Vec<FieldError> {
        let mut errors = Vec::new();
        if self.port == 0 {
            errors.push(FieldError::new(
                "port",
                "Choose a port between 1 and 65535: tools need a fixed one to point at.",
            ));
        }
        if self.host.trim().parse::<IpAddr>().is_err() {
            errors.push(FieldError::new(
                "host",
                "Enter an IP address, such as 127.0.0.1 (this computer only) or 0.0.0.0 (every network).",
            ));
        }
        let target = self.target_endpoint.trim();
        if !target.is_empty()
            && let Err(message) = check_url(target)
        {
            errors.push(FieldError::new("targetEndpoint", message));
        }
        if let Err(message) = self.target_api.parse::<TargetApi>() {
            errors.push(FieldError::new("targetApi", message));
        }
        if let Err(message) = self.model_aliases.parse::<ModelAliases>() {
            errors.push(FieldError::new("modelAliases", message));
        }
        if !self.placeholder && target.is_empty() && self.auth != AuthMode::None {
            errors.push(FieldError::new(
                "targetEndpoint",
                "Enter the target endpoint the credentials are for, or turn on placeholder mode.",
            ));
        }
        match self.auth {
            AuthMode::None => {}
            AuthMode::ApiKey => {
                if !secrets.target_api_key {
                    errors.push(FieldError::new(
                        "targetApiKey",
                        "Enter the target's API key.",
                    ));
                }
            }
            AuthMode::OAuth => {
                let oauth = &self.oauth;
                if oauth.token_endpoint.trim().is_empty() {
                    errors.push(FieldError::new(
                        "oauth.tokenEndpoint",
                        "Enter the token endpoint, e.g. https://login.example.com/oauth2/token.",
                    ));
                } else if let Err(message) = check_url(oauth.token_endpoint.trim()) {
                    errors.push(FieldError::new("oauth.tokenEndpoint", message));
                }
                if oauth.client_id.trim().is_empty() {
                    errors.push(FieldError::new("oauth.clientId", "Enter the client id."));
                }
                if !secrets.oauth_client_secret {
                    errors.push(FieldError::new(
                        "oauthClientSecret",
                        "Enter the client secret.",
                    ));
                }
                if oauth.refresh_buffer_minutes > 24 * 60 {
                    errors.push(FieldError::new(
                        "oauth.refreshBufferMinutes",
                        "Use at most 1440 minutes (a day).",
                    ));
                }
            }
        }
        if self.log_max_entries == 0 {
            errors.push(FieldError::new("logMaxEntries", "Keep at least one call."));
        }
        if self.log_max_age_days == 0 {
            errors.push(FieldError::new(
                "logMaxAgeDays",
                "Keep calls at least one day.",
            ));
        }
        errors
    }
}

fn check_url(text: &str) -> Result<(), String> {
    match Url::parse(text) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host_str().is_some() => Ok(()),
        Ok(_) => Err("Use an http:// or https:// URL.".to_owned()),
        Err(err) => Err(format!(
            "Not a URL ({err}): use e.g. https://llm.example.com/v1."
        )),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("cannot read the settings in {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the settings in {path} are not valid ({source}); they were set aside as {backup} and the defaults are used"
    )]
    Corrupt {
        path: PathBuf,
        backup: PathBuf,
        source: serde_json::Error,
    },
    #[error("cannot save the settings to {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The settings file. Saving writes a sibling file and renames it over the old one, so a crash
/// mid-save leaves either the old settings or the new, never half of each.
#[derive(Debug, Clone)]
pub struct SettingsFile {
    path: PathBuf,
}

/// What loading found.
#[derive(Debug)]
pub enum Loaded {
    /// No file yet: the app's first run.
    FirstRun(Settings),
    Saved(Settings),
    /// A file that could not be used; the defaults stand in and the error says why.
    Unusable(Settings, SettingsError),
}

impl Loaded {
    pub fn settings(&self) -> &Settings {
        match self {
            Self::FirstRun(s) | Self::Saved(s) | Self::Unusable(s, _) => s,
        }
    }
}

impl SettingsFile {
    pub fn new(path: PathBuf) -> Self {
        Self { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn load(&self) -> Loaded {
        let text = match std::fs::read(&self.path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Loaded::FirstRun(Settings::default());
            }
            Err(source) => {
                let err = SettingsError::Read {
                    path: self.path.clone(),
                    source,
                };
                return Loaded::Unusable(Settings::default(), err);
            }
        };
        match serde_json::from_slice(&text) {
            Ok(settings) => Loaded::Saved(settings),
            Err(source) => {
                // Keep the user's file for them to look at; the next save must not destroy it.
                let backup = self.path.with_extension("json.invalid");
                let _ = std::fs::rename(&self.path, &backup);
                let err = SettingsError::Corrupt {
                    path: self.path.clone(),
                    backup,
                    source,
                };
                Loaded::Unusable(Settings::default(), err)
            }
        }
    }

    pub fn save(&self, settings: &Settings) -> Result<(), SettingsError> {
        let write_err = |source| SettingsError::Write {
            path: self.path.clone(),
            source,
        };
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(write_err)?;
        }
        let text = serde_json::to_vec_pretty(settings).map_err(|e| write_err(e.into()))?;
        let temporary = self.path.with_extension("json.tmp");
        let mut file = std::fs::File::create(&temporary).map_err(write_err)?;
        file.write_all(&text).map_err(write_err)?;
        file.sync_all().map_err(write_err)?;
        std::fs::rename(&temporary, &self.path).map_err(write_err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn both_secrets() -> SecretsPresent {
        SecretsPresent {
            target_api_key: true,
            oauth_client_secret: true,
        }
    }

    fn fields(errors: &[FieldError]) -> Vec<&'static str> {
        errors.iter().map(|e| e.field).collect()
    }

    #[test]
    fn defaults_are_valid_and_mean_placeholder_on_port_3000() {
        let settings = Settings::default();
        assert!(settings.validate(SecretsPresent::default()).is_empty());
        assert_eq!(settings.port, 3000);
        assert_eq!(settings.host, "127.0.0.1");
        assert!(settings.start_proxy_at_launch);
        assert!(!settings.start_at_login);
    }

    #[test]
    fn every_bad_field_is_reported_at_once() {
        let settings = Settings {
            port: 0,
            host: "localhost:80".into(),
            target_endpoint: "ftp://example.com".into(),
            auth: AuthMode::OAuth,
            oauth: OAuthSettings {
                token_endpoint: "not a url".into(),
                client_id: " ".into(),
                refresh_buffer_minutes: 5000,
                ..OAuthSettings::default()
            },
            log_max_entries: 0,
            log_max_age_days: 0,
            ..Settings::default()
        };
        let errors = settings.validate(SecretsPresent::default());
        assert_eq!(
            fields(&errors),
            [
                "port",
                "host",
                "targetEndpoint",
                "oauth.tokenEndpoint",
                "oauth.clientId",
                "oauthClientSecret",
                "oauth.refreshBufferMinutes",
                "logMaxEntries",
                "logMaxAgeDays"
            ]
        );
        assert!(errors.iter().all(|e| !e.message.is_empty()));
    }

    #[test]
    fn credentials_need_a_target_unless_placeholder_mode_is_on() {
        let mut settings = Settings {
            auth: AuthMode::ApiKey,
            ..Settings::default()
        };
        assert_eq!(
            fields(&settings.validate(both_secrets())),
            ["targetEndpoint"]
        );
        settings.placeholder = true;
        assert!(settings.validate(both_secrets()).is_empty());
        settings.placeholder = false;
        settings.target_endpoint = "https://llm.example.com/v1".into();
        assert!(settings.validate(both_secrets()).is_empty());
        assert_eq!(
            fields(&settings.validate(SecretsPresent::default())),
            ["targetApiKey"]
        );
    }

    #[test]
    fn save_then_load_round_trips_and_first_run_is_told_apart() {
        let dir = tempfile::tempdir().unwrap();
        let file = SettingsFile::new(dir.path().join("nested/settings.json"));
        assert!(matches!(file.load(), Loaded::FirstRun(s) if s == Settings::default()));
        let settings = Settings {
            port: 4123,
            target_endpoint: "https://llm.example.com/v1".into(),
            auth: AuthMode::OAuth,
            oauth: OAuthSettings {
                token_endpoint: "https://login.example.com/token".into(),
                client_id: "desktop".into(),
                scope: "api://llm/.default".into(),
                ..OAuthSettings::default()
            },
            start_at_login: true,
            ..Settings::default()
        };
        file.save(&settings).unwrap();
        assert!(matches!(file.load(), Loaded::Saved(s) if s == settings));
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path().join("nested"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["settings.json"]);
    }

    #[test]
    fn missing_fields_take_defaults_and_unknown_ones_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("settings.json");
        std::fs::write(&path, r#"{"port": 3111, "fromAFutureVersion": true}"#).unwrap();
        let loaded = SettingsFile::new(path).load();
        let Loaded::Saved(settings) = loaded else {
            panic!("expected saved settings, got {loaded:?}");
        };
        assert_eq!(settings.port, 3111);
        assert_eq!(settings.log_max_entries, 10_000);
    }

    #[test]
    fn a_corrupt_file_is_kept_aside_and_defaults_are_used() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("settings.json");
        std::fs::write(&path, b"{\"port\": ").unwrap();
        let file = SettingsFile::new(path.clone());
        let loaded = file.load();
        let Loaded::Unusable(settings, err) = loaded else {
            panic!("expected an unusable file, got {loaded:?}");
        };
        assert_eq!(settings, Settings::default());
        assert!(err.to_string().contains("settings.json.invalid"), "{err}");
        assert_eq!(
            std::fs::read(dir.path().join("settings.json.invalid")).unwrap(),
            b"{\"port\": "
        );
        // The next save works and does not touch the kept copy.
        file.save(&Settings::default()).unwrap();
        assert!(matches!(file.load(), Loaded::Saved(_)));
        assert!(dir.path().join("settings.json.invalid").exists());
    }

    #[test]
    fn the_json_names_are_the_ones_the_window_uses() {
        let json = serde_json::to_value(Settings {
            auth: AuthMode::OAuth,
            ..Settings::default()
        })
        .unwrap();
        assert_eq!(json["auth"], "oauth");
        assert_eq!(json["startProxyAtLaunch"], true);
        assert_eq!(json["oauth"]["refreshBufferMinutes"], 5);
        let api_key: AuthMode = serde_json::from_str("\"api-key\"").unwrap();
        assert_eq!(api_key, AuthMode::ApiKey);
    }
}
