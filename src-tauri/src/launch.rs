//! From the window's settings and the keychain's secrets to a server configuration.
//!
//! The settings become the headless server's flags and go through the same parser
//! (`llm_proxy::cli::Args`), so the desktop app and `llm-proxy` accept and reject exactly the
//! same things. A setting whose environment variable is set (in the environment or `.env`) is
//! left out of the flags: the variable wins, and the window shows the setting as overridden.

use clap::Parser;
use llm_proxy::cli::Args;
use llm_proxy::config::Config;
use serde::Serialize;

use crate::settings::{AuthMode, Settings};

/// The secrets a configuration needs, read from the keychain.
#[derive(Default)]
pub struct SecretValues {
    pub access_token: String,
    pub target_api_key: Option<String>,
    pub oauth_client_secret: Option<String>,
}

/// Each setting the environment can override: its field in the settings JSON and its
/// variable (the names of the headless server and the original project).
pub const OVERRIDABLE: &[(&str, &str)] = &[
    ("port", "PROXY_PORT"),
    ("host", "PROXY_HOST"),
    ("placeholder", "USE_PLACEHOLDER_MODE"),
    ("targetEndpoint", "TARGET_ENDPOINT"),
    ("targetApi", "TARGET_API"),
    ("modelAliases", "MODEL_ALIASES"),
    ("targetApiKey", "TARGET_API_KEY"),
    ("oauth.tokenEndpoint", "OAUTH_TOKEN_ENDPOINT"),
    ("oauth.clientId", "OAUTH_CLIENT_ID"),
    ("oauthClientSecret", "OAUTH_CLIENT_SECRET"),
    ("oauth.scope", "OAUTH_SCOPE"),
    ("oauth.audience", "OAUTH_AUDIENCE"),
    ("oauth.refreshBufferMinutes", "OAUTH_REFRESH_BUFFER_MINUTES"),
    ("accessToken", "PROXY_ACCESS_TOKEN"),
    ("logBodies", "LOG_BODIES"),
    ("logMaxEntries", "LOG_MAX_ENTRIES"),
    ("logMaxAgeDays", "LOG_MAX_AGE_DAYS"),
];

/// A setting the environment overrides.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Override {
    pub field: &'static str,
    pub variable: &'static str,
}

/// The settings whose variables `is_set` says are set.
pub fn overrides(is_set: &dyn Fn(&str) -> bool) -> Vec<Override> {
    OVERRIDABLE
        .iter()
        .filter(|(_, var)| is_set(var))
        .map(|&(field, variable)| Override { field, variable })
        .collect()
}

/// Whether a variable is set in this process's environment. Empty counts as unset, as it does
/// for the server's own parsing.
pub fn env_is_set(var: &str) -> bool {
    std::env::var_os(var).is_some_and(|v| !v.is_empty())
}

/// How long a stop or restart waits for in-flight requests: shorter than the headless default,
/// because a user is waiting on the toggle.
const DESKTOP_SHUTDOWN_GRACE_SECONDS: &str = "5";

/// The server's command line for these settings, without the flags whose variables are set.
pub fn server_args(
    settings: &Settings,
    secrets: &SecretValues,
    is_set: &dyn Fn(&str) -> bool,
) -> Vec<String> {
    let mut args = vec!["local-llm-proxy".to_owned()];
    let mut flag = |var: &str, name: &str, value: String| {
        if !is_set(var) {
            args.push(format!("--{name}"));
            args.push(value);
        }
    };
    flag("PROXY_PORT", "port", settings.port.to_string());
    flag("PROXY_HOST", "host", settings.host.trim().to_owned());
    flag(
        "PROXY_ACCESS_TOKEN",
        "access-token",
        secrets.access_token.clone(),
    );
    let target = settings.target_endpoint.trim();
    if !target.is_empty() {
        flag("TARGET_ENDPOINT", "target-endpoint", target.to_owned());
        flag(
            "TARGET_API",
            "target-api",
            settings.target_api.trim().to_owned(),
        );
        let aliases = settings.model_aliases.trim();
        if !aliases.is_empty() {
            flag("MODEL_ALIASES", "model-aliases", aliases.to_owned());
        }
    }
    match settings.auth {
        AuthMode::None => {}
        AuthMode::ApiKey => {
            if let Some(key) = &secrets.target_api_key {
                flag("TARGET_API_KEY", "target-api-key", key.clone());
            }
        }
        AuthMode::OAuth => {
            let oauth = &settings.oauth;
            flag(
                "OAUTH_TOKEN_ENDPOINT",
                "oauth-token-endpoint",
                oauth.token_endpoint.trim().to_owned(),
            );
            flag(
                "OAUTH_CLIENT_ID",
                "oauth-client-id",
                oauth.client_id.trim().to_owned(),
            );
            if let Some(secret) = &secrets.oauth_client_secret {
                flag("OAUTH_CLIENT_SECRET", "oauth-client-secret", secret.clone());
            }
            for (var, name, value) in [
                ("OAUTH_SCOPE", "oauth-scope", &oauth.scope),
                ("OAUTH_AUDIENCE", "oauth-audience", &oauth.audience),
            ] {
                if !value.trim().is_empty() {
                    flag(var, name, value.trim().to_owned());
                }
            }
            flag(
                "OAUTH_REFRESH_BUFFER_MINUTES",
                "oauth-refresh-buffer-minutes",
                oauth.refresh_buffer_minutes.to_string(),
            );
        }
    }
    flag("LOG_BODIES", "log-bodies", settings.log_bodies.to_string());
    flag(
        "LOG_MAX_ENTRIES",
        "log-max-entries",
        settings.log_max_entries.to_string(),
    );
    flag(
        "LOG_MAX_AGE_DAYS",
        "log-max-age-days",
        settings.log_max_age_days.to_string(),
    );
    flag(
        "SHUTDOWN_GRACE_SECONDS",
        "shutdown-grace",
        DESKTOP_SHUTDOWN_GRACE_SECONDS.to_owned(),
    );
    // A switch, not a value: only the "on" state is a flag.
    if settings.placeholder && !is_set("USE_PLACEHOLDER_MODE") {
        args.push("--placeholder".to_owned());
    }
    args
}

/// The server configuration for these settings and secrets, with the environment winning.
/// The error is one line naming the setting's variable, as the headless server words it.
pub fn server_config(
    settings: &Settings,
    secrets: &SecretValues,
    data_dir: Option<&std::path::Path>,
) -> Result<Config, String> {
    let mut args = server_args(settings, secrets, &env_is_set);
    if let Some(dir) = data_dir.filter(|_| !env_is_set("PROXY_DATA_DIR")) {
        args.push("--data-dir".to_owned());
        args.push(dir.display().to_string());
    }
    let args = Args::try_parse_from(args).map_err(|err| {
        let text = err.to_string();
        text.lines()
            .next()
            .unwrap_or("invalid settings")
            .trim_start_matches("error: ")
            .to_owned()
    })?;
    args.into_config().map_err(|err| err.to_string())
}

#[cfg(test)]
mod tests {
    use llm_proxy::config::{CredentialConfig, UpstreamConfig};
    use secrecy::ExposeSecret;

    use super::*;
    use crate::settings::OAuthSettings;

    fn secrets() -> SecretValues {
        SecretValues {
            access_token: "llm-proxy-desktop-token".into(),
            target_api_key: Some("sk-desktop".into()),
            oauth_client_secret: Some("oauth-desktop-secret".into()),
        }
    }

    fn oauth_settings() -> Settings {
        Settings {
            port: 3456,
            target_endpoint: "https://llm.example.com/v1".into(),
            auth: AuthMode::OAuth,
            oauth: OAuthSettings {
                token_endpoint: "https://login.example.com/token".into(),
                client_id: "desktop-client".into(),
                scope: "api://llm/.default".into(),
                ..OAuthSettings::default()
            },
            ..Settings::default()
        }
    }

    fn parse(args: Vec<String>) -> Config {
        Args::try_parse_from(args).unwrap().into_config().unwrap()
    }

    #[test]
    fn oauth_settings_become_an_oauth_configuration() {
        let config = parse(server_args(&oauth_settings(), &secrets(), &|_| false));
        assert_eq!(config.port, 3456);
        assert_eq!(
            config.access_token.secret.expose_secret(),
            "llm-proxy-desktop-token"
        );
        assert!(!config.access_token.generated);
        let UpstreamConfig::Target(target) = config.upstream else {
            panic!("expected a target");
        };
        assert_eq!(target.endpoint.as_str(), "https://llm.example.com/v1");
        let CredentialConfig::OAuth(oauth) = target.credential else {
            panic!("expected OAuth");
        };
        assert_eq!(oauth.client_id, "desktop-client");
        assert_eq!(oauth.client_secret.expose_secret(), "oauth-desktop-secret");
        assert_eq!(oauth.scope.as_deref(), Some("api://llm/.default"));
        assert_eq!(config.limits.shutdown_grace.as_secs(), 5);
    }

    #[test]
    fn the_auth_mode_chooses_the_credential_even_when_others_are_stored() {
        let mut settings = oauth_settings();
        settings.auth = AuthMode::ApiKey;
        let config = parse(server_args(&settings, &secrets(), &|_| false));
        let UpstreamConfig::Target(target) = config.upstream else {
            panic!("expected a target");
        };
        assert!(matches!(target.credential, CredentialConfig::ApiKey(_)));
        settings.auth = AuthMode::None;
        let config = parse(server_args(&settings, &secrets(), &|_| false));
        let UpstreamConfig::Target(target) = config.upstream else {
            panic!("expected a target");
        };
        assert!(matches!(target.credential, CredentialConfig::None));
    }

    #[test]
    fn no_target_or_placeholder_mode_means_placeholder() {
        let config = parse(server_args(&Settings::default(), &secrets(), &|_| false));
        assert!(matches!(config.upstream, UpstreamConfig::Placeholder));
        let mut settings = oauth_settings();
        settings.placeholder = true;
        let config = parse(server_args(&settings, &secrets(), &|_| false));
        assert!(matches!(config.upstream, UpstreamConfig::Placeholder));
    }

    #[test]
    fn a_set_variable_leaves_its_flag_out_and_is_reported() {
        let is_set = |var: &str| matches!(var, "PROXY_PORT" | "OAUTH_CLIENT_SECRET");
        let args = server_args(&oauth_settings(), &secrets(), &is_set);
        assert!(!args.iter().any(|a| a == "--port"), "{args:?}");
        assert!(!args.iter().any(|a| a == "--oauth-client-secret"));
        assert!(args.iter().any(|a| a == "--oauth-client-id"));
        assert_eq!(
            overrides(&is_set),
            [
                Override {
                    field: "port",
                    variable: "PROXY_PORT"
                },
                Override {
                    field: "oauthClientSecret",
                    variable: "OAUTH_CLIENT_SECRET"
                },
            ]
        );
    }

    #[test]
    fn every_overridable_variable_is_one_the_server_reads() {
        let help = <Args as clap::CommandFactory>::command()
            .render_long_help()
            .to_string();
        for (_, var) in OVERRIDABLE {
            assert!(help.contains(var), "{var} is not a server variable");
        }
    }

    #[test]
    fn a_bad_value_is_refused_with_the_variable_named() {
        let settings = Settings {
            target_endpoint: "https://llm.example.com/v1".into(),
            host: "not-an-ip".into(),
            ..Settings::default()
        };
        let err = server_config(&settings, &secrets(), None).unwrap_err();
        assert!(err.contains("PROXY_HOST"), "{err}");
        assert!(!err.contains('\n'));
    }
}
