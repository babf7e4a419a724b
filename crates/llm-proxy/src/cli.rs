//! Command-line flags and environment variables of the headless server, turned into a [`Config`].
//!
//! Every setting is both a flag and an environment variable; the names of the original Node
//! project (`PROXY_PORT`, `TARGET_ENDPOINT`, `OAUTH_*`, ...) are kept so existing `.env` files
//! work unchanged. `main` loads `.env` first, so the real environment wins over it.

use crate::model_aliases::ModelAliases;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use secrecy::SecretString;
use url::Url;

use crate::config::{
    AccessPolicy, AccessToken, ClientAuth, Config, CredentialConfig, Limits, LogConfig,
    OAuthConfig, TargetApi, TargetConfig, UpstreamConfig, default_data_dir,
};

/// An OpenAI-compatible proxy on localhost that forwards to your company's LLM endpoint.
///
/// With no target configured it starts in placeholder mode and answers locally.
#[derive(Debug, Parser)]
#[command(name = "llm-proxy", version)]
pub struct Args {
    #[command(subcommand)]
    pub command: Option<Subcommand>,

    /// Port to listen on (0 picks a free port)
    #[arg(
        long = "port",
        env = "PROXY_PORT",
        value_name = "PROXY_PORT",
        default_value_t = 3000
    )]
    pub port: u16,

    /// Address to listen on; anything but loopback makes the proxy reachable from the network
    #[arg(
        long = "host",
        env = "PROXY_HOST",
        value_name = "PROXY_HOST",
        default_value = "127.0.0.1"
    )]
    pub host: IpAddr,

    /// URL shown to users [default: http://localhost:PORT]
    #[arg(
        long = "base-url",
        env = "PROXY_BASE_URL",
        value_name = "PROXY_BASE_URL"
    )]
    pub base_url: Option<Url>,

    /// Token clients must send [default: generated at each start as llm-proxy-<64 hex>]
    #[arg(
        long = "access-token",
        env = "PROXY_ACCESS_TOKEN",
        value_name = "PROXY_ACCESS_TOKEN",
        hide_env_values = true
    )]
    pub access_token: Option<String>,

    /// Target base URL including /v1, e.g. https://llm.example.com/v1
    #[arg(
        long = "target-endpoint",
        env = "TARGET_ENDPOINT",
        value_name = "TARGET_ENDPOINT"
    )]
    pub target_endpoint: Option<Url>,

    /// The API the target speaks: openai (requests pass as they are), or anthropic, gemini or
    /// ollama (chat requests are translated into that API, and its answers back)
    #[arg(
        long = "target-api",
        env = "TARGET_API",
        value_name = "TARGET_API",
        default_value = "openai"
    )]
    pub target_api: TargetApi,

    /// Answer locally instead of forwarding (also on when no target is configured)
    #[arg(
        long = "placeholder",
        env = "USE_PLACEHOLDER_MODE",
        value_name = "USE_PLACEHOLDER_MODE"
    )]
    pub placeholder: bool,

    /// Static API key sent to the target as `Authorization: Bearer`
    #[arg(
        long = "target-api-key",
        env = "TARGET_API_KEY",
        value_name = "TARGET_API_KEY",
        hide_env_values = true
    )]
    pub target_api_key: Option<String>,

    /// OAuth 2.0 token endpoint (client credentials grant)
    #[arg(
        long = "oauth-token-endpoint",
        env = "OAUTH_TOKEN_ENDPOINT",
        value_name = "OAUTH_TOKEN_ENDPOINT"
    )]
    pub oauth_token_endpoint: Option<Url>,

    /// OAuth 2.0 client id
    #[arg(
        long = "oauth-client-id",
        env = "OAUTH_CLIENT_ID",
        value_name = "OAUTH_CLIENT_ID"
    )]
    pub oauth_client_id: Option<String>,

    /// OAuth 2.0 client secret
    #[arg(
        long = "oauth-client-secret",
        env = "OAUTH_CLIENT_SECRET",
        value_name = "OAUTH_CLIENT_SECRET",
        hide_env_values = true
    )]
    pub oauth_client_secret: Option<String>,

    /// OAuth 2.0 scope (optional)
    #[arg(long = "oauth-scope", env = "OAUTH_SCOPE", value_name = "OAUTH_SCOPE")]
    pub oauth_scope: Option<String>,

    /// OAuth 2.0 audience (optional; Auth0-style servers need it)
    #[arg(
        long = "oauth-audience",
        env = "OAUTH_AUDIENCE",
        value_name = "OAUTH_AUDIENCE"
    )]
    pub oauth_audience: Option<String>,

    /// How the client authenticates to the token server: HTTP Basic, form body, or Basic then form
    #[arg(
        long = "oauth-client-auth",
        env = "OAUTH_CLIENT_AUTH",
        value_name = "OAUTH_CLIENT_AUTH",
        value_enum,
        default_value = "auto"
    )]
    pub oauth_client_auth: ClientAuth,

    /// PEM file of extra trusted root certificates for the target and token server
    #[arg(
        long = "target-ca-cert",
        env = "TARGET_CA_CERT",
        value_name = "TARGET_CA_CERT"
    )]
    pub target_ca_cert: Option<PathBuf>,

    /// Minutes before expiry at which the OAuth token is refreshed
    #[arg(
        long = "oauth-refresh-buffer-minutes",
        env = "OAUTH_REFRESH_BUFFER_MINUTES",
        value_name = "OAUTH_REFRESH_BUFFER_MINUTES",
        default_value_t = 5
    )]
    pub oauth_refresh_buffer_minutes: u64,

    /// Where logs and state are kept [default: the platform data directory]
    #[arg(
        long = "data-dir",
        env = "PROXY_DATA_DIR",
        value_name = "PROXY_DATA_DIR"
    )]
    pub data_dir: Option<PathBuf>,

    /// Seconds allowed to connect to the target
    #[arg(long = "target-connect-timeout", env = "TARGET_CONNECT_TIMEOUT_SECONDS",
          value_name = "TARGET_CONNECT_TIMEOUT_SECONDS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub target_connect_timeout_seconds: u64,

    /// Seconds allowed for a whole non-streaming exchange with the target
    #[arg(long = "target-timeout", env = "TARGET_TIMEOUT_SECONDS",
          value_name = "TARGET_TIMEOUT_SECONDS", default_value_t = 600,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub target_timeout_seconds: u64,

    /// Longest silence, in seconds, allowed inside a stream
    #[arg(long = "stream-idle-timeout", env = "STREAM_IDLE_TIMEOUT_SECONDS",
          value_name = "STREAM_IDLE_TIMEOUT_SECONDS", default_value_t = 300,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub stream_idle_timeout_seconds: u64,

    /// Largest request body accepted, in MB
    #[arg(long = "max-request-body-mb", env = "MAX_REQUEST_BODY_MB",
          value_name = "MAX_REQUEST_BODY_MB", default_value_t = 50,
          value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub max_request_body_mb: u64,

    /// Record every API call in the request log (false: only server events are kept)
    #[arg(long = "log-requests", env = "LOG_REQUESTS", value_name = "LOG_REQUESTS",
          default_value_t = true, action = clap::ArgAction::Set)]
    pub log_requests: bool,

    /// Store request and response bodies in the log (false: metadata only)
    #[arg(long = "log-bodies", env = "LOG_BODIES", value_name = "LOG_BODIES",
          default_value_t = true, action = clap::ArgAction::Set)]
    pub log_bodies: bool,

    /// Longest body stored in the log, in KB (longer ones are cut with a mark)
    #[arg(long = "log-body-max-kb", env = "LOG_BODY_MAX_KB", value_name = "LOG_BODY_MAX_KB",
          default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..=102_400))]
    pub log_body_max_kb: u64,

    /// Most API calls kept in the log
    #[arg(long = "log-max-entries", env = "LOG_MAX_ENTRIES", value_name = "LOG_MAX_ENTRIES",
          default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub log_max_entries: u64,

    /// Days API calls and events are kept
    #[arg(long = "log-max-age-days", env = "LOG_MAX_AGE_DAYS", value_name = "LOG_MAX_AGE_DAYS",
          default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    pub log_max_age_days: u64,

    /// Serve /metrics without the access token
    #[arg(
        long = "metrics-public",
        env = "METRICS_PUBLIC",
        value_name = "METRICS_PUBLIC"
    )]
    pub metrics_public: bool,

    /// Add a Server-Timing header to forwarded answers: the proxy's own share and the
    /// target's, in ms
    #[arg(long = "server-timing", env = "SERVER_TIMING", value_name = "SERVER_TIMING",
          default_value_t = true, action = clap::ArgAction::Set)]
    pub server_timing: bool,

    /// Model names mapped to the target's, as glob=model rules tried in order, e.g.
    /// claude-sonnet-*=gpt-4.1,claude-haiku-*=gpt-4.1-mini,*=gpt-4.1
    #[arg(
        long = "model-aliases",
        env = "MODEL_ALIASES",
        value_name = "MODEL_ALIASES",
        default_value = ""
    )]
    pub model_aliases: ModelAliases,

    /// Extra host names allowed in the Host header, comma-separated (loopback names and the
    /// base URL's host are always allowed)
    #[arg(
        long = "allowed-hosts",
        env = "PROXY_ALLOWED_HOSTS",
        value_name = "PROXY_ALLOWED_HOSTS",
        value_delimiter = ','
    )]
    pub allowed_hosts: Vec<String>,

    /// Origins allowed to call the proxy from a web page (CORS), comma-separated [default: none]
    #[arg(
        long = "cors-origins",
        env = "PROXY_CORS_ORIGINS",
        value_name = "PROXY_CORS_ORIGINS",
        value_delimiter = ','
    )]
    pub cors_origins: Vec<String>,

    /// Requests served at once (streams included); over it, 503 with Retry-After
    #[arg(long = "max-concurrency", env = "PROXY_MAX_CONCURRENCY", value_name = "PROXY_MAX_CONCURRENCY",
          default_value_t = 16_384, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub max_concurrency: u64,

    /// Seconds in-flight requests and streams may take to finish at shutdown
    #[arg(
        long = "shutdown-grace",
        env = "SHUTDOWN_GRACE_SECONDS",
        value_name = "SHUTDOWN_GRACE_SECONDS",
        default_value_t = 30
    )]
    pub shutdown_grace_seconds: u64,
}

#[derive(Debug, clap::Subcommand)]
pub enum Subcommand {
    /// Test the setup link by link (configuration, token server, target, running proxy) and
    /// say what is wrong; exit code 0 only when every step passes
    Check {
        /// The running proxy to test [default: http://localhost:PROXY_PORT]
        #[arg(long)]
        proxy: Option<String>,
        /// Print the steps as JSON
        #[arg(long)]
        json: bool,
    },
}

/// A configuration mistake, named by the variable the user has to fix.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("{var}: {problem}")]
    Invalid { var: &'static str, problem: String },
    #[error(
        "incomplete OAuth configuration: {missing} not set (OAuth needs OAUTH_TOKEN_ENDPOINT, OAUTH_CLIENT_ID and OAUTH_CLIENT_SECRET)"
    )]
    PartialOAuth { missing: String },
    #[error(
        "TARGET_ENDPOINT is not set: OAuth is configured but there is no target to send the token to (set TARGET_ENDPOINT, or USE_PLACEHOLDER_MODE=true)"
    )]
    MissingTarget,
}

impl Args {
    pub fn into_config(mut self) -> Result<Config, ConfigError> {
        self.command = None;
        if let Some(url) = &self.base_url {
            check_http_url("PROXY_BASE_URL", url)?;
        }
        let oauth = self.oauth_config()?;
        let access_token = match non_empty(self.access_token) {
            Some(token) => {
                if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
                    return Err(ConfigError::Invalid {
                        var: "PROXY_ACCESS_TOKEN",
                        problem: "must not contain spaces or control characters".into(),
                    });
                }
                AccessToken::supplied(token)
            }
            None => AccessToken::generate(),
        };

        let use_placeholder = self.placeholder
            || (self.target_endpoint.is_none() && self.oauth_token_endpoint.is_none());
        let upstream = if use_placeholder {
            UpstreamConfig::Placeholder
        } else {
            let endpoint = self.target_endpoint.ok_or(ConfigError::MissingTarget)?;
            check_http_url("TARGET_ENDPOINT", &endpoint)?;
            let credential = match (oauth, non_empty(self.target_api_key)) {
                (Some(oauth), _) => CredentialConfig::OAuth(oauth),
                (None, Some(key)) => CredentialConfig::ApiKey(SecretString::from(key)),
                (None, None) => CredentialConfig::None,
            };
            let extra_roots_pem = self
                .target_ca_cert
                .as_deref()
                .map(read_ca_cert)
                .transpose()?;
            UpstreamConfig::Target(TargetConfig {
                endpoint,
                api: self.target_api,
                credential,
                extra_roots_pem,
            })
        };

        Ok(Config {
            host: self.host,
            port: self.port,
            base_url: self.base_url,
            access_token,
            upstream,
            data_dir: self.data_dir.unwrap_or_else(default_data_dir),
            limits: Limits {
                connect_timeout: Duration::from_secs(self.target_connect_timeout_seconds),
                request_timeout: Duration::from_secs(self.target_timeout_seconds),
                stream_idle_timeout: Duration::from_secs(self.stream_idle_timeout_seconds),
                max_request_body_bytes: (self.max_request_body_mb * 1024 * 1024) as usize,
                shutdown_grace: Duration::from_secs(self.shutdown_grace_seconds),
                max_concurrency: self.max_concurrency as usize,
                ..Limits::default()
            },
            logging: LogConfig {
                requests: self.log_requests,
                bodies: self.log_bodies,
                body_max_bytes: (self.log_body_max_kb * 1024) as usize,
                max_entries: self.log_max_entries as usize,
                max_age: Duration::from_secs(self.log_max_age_days * 24 * 3600),
            },
            metrics_public: self.metrics_public,
            server_timing: self.server_timing,
            model_aliases: self.model_aliases,
            access: AccessPolicy {
                allowed_hosts: clean_list(self.allowed_hosts)
                    .into_iter()
                    .map(|h| h.to_ascii_lowercase())
                    .collect(),
                cors_origins: check_origins(clean_list(self.cors_origins))?,
            },
        })
    }

    /// OAuth is in effect when endpoint, client id and secret are all set; some but not all is
    /// a mistake worth stopping for, since the proxy would otherwise fall back silently.
    fn oauth_config(&self) -> Result<Option<OAuthConfig>, ConfigError> {
        let id = self.oauth_client_id.as_deref().filter(|s| !s.is_empty());
        let secret = self
            .oauth_client_secret
            .as_deref()
            .filter(|s| !s.is_empty());
        let parts = [
            ("OAUTH_TOKEN_ENDPOINT", self.oauth_token_endpoint.is_some()),
            ("OAUTH_CLIENT_ID", id.is_some()),
            ("OAUTH_CLIENT_SECRET", secret.is_some()),
        ];
        let missing: Vec<&str> = parts
            .iter()
            .filter(|(_, set)| !set)
            .map(|(n, _)| *n)
            .collect();
        match (missing.len(), &self.oauth_token_endpoint, id, secret) {
            (3, ..) => Ok(None),
            (0, Some(endpoint), Some(id), Some(secret)) => {
                check_http_url("OAUTH_TOKEN_ENDPOINT", endpoint)?;
                Ok(Some(OAuthConfig {
                    token_endpoint: endpoint.clone(),
                    client_id: id.to_owned(),
                    client_secret: SecretString::from(secret.to_owned()),
                    scope: self.oauth_scope.clone().filter(|s| !s.is_empty()),
                    audience: self.oauth_audience.clone().filter(|s| !s.is_empty()),
                    client_auth: self.oauth_client_auth,
                    refresh_buffer: Duration::from_secs(self.oauth_refresh_buffer_minutes * 60),
                }))
            }
            _ => Err(ConfigError::PartialOAuth {
                missing: missing.join(", "),
            }),
        }
    }
}

/// Reads the CA file now, so a wrong path stops startup instead of failing every request.
fn read_ca_cert(path: &std::path::Path) -> Result<Vec<u8>, ConfigError> {
    let invalid = |problem: String| ConfigError::Invalid {
        var: "TARGET_CA_CERT",
        problem,
    };
    let pem =
        std::fs::read(path).map_err(|e| invalid(format!("cannot read {}: {e}", path.display())))?;
    match crate::upstream::pem_certificates(&pem) {
        Ok(_) => Ok(pem),
        Err(_) => Err(invalid(format!(
            "{} holds no PEM certificate",
            path.display()
        ))),
    }
}

fn clean_list(items: Vec<String>) -> Vec<String> {
    items
        .into_iter()
        .map(|i| i.trim().to_owned())
        .filter(|i| !i.is_empty())
        .collect()
}

/// Origins are compared exactly, so each must be `scheme://host[:port]` with nothing after.
fn check_origins(origins: Vec<String>) -> Result<Vec<String>, ConfigError> {
    for origin in &origins {
        let valid = url::Url::parse(origin).is_ok_and(|u| {
            matches!(u.scheme(), "http" | "https") && u.path() == "/" && !origin.ends_with('/')
        });
        if origin == "*" || !valid {
            return Err(ConfigError::Invalid {
                var: "PROXY_CORS_ORIGINS",
                problem: format!(
                    "{origin:?} is not an origin like https://app.example.com (no wildcards, no path)"
                ),
            });
        }
    }
    Ok(origins)
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.trim().is_empty())
}

fn check_http_url(var: &'static str, url: &Url) -> Result<(), ConfigError> {
    if !url.username().is_empty() || url.password().is_some() {
        // Not echoed: the URL holds a secret.
        return Err(ConfigError::Invalid {
            var,
            problem: "the URL holds credentials, which are not sent from there; give them as \
                      TARGET_API_KEY or the OAUTH_* settings"
                .into(),
        });
    }
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(ConfigError::Invalid {
            var,
            problem: format!(
                "expected an http:// or https:// URL, got {:?}",
                url.as_str()
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn parse(args: &[&str]) -> Result<Config, ConfigError> {
        let mut argv = vec!["llm-proxy"];
        argv.extend_from_slice(args);
        Args::try_parse_from(argv)
            .expect("flags parse")
            .into_config()
    }

    #[test]
    fn no_target_means_placeholder() {
        let config = parse(&[]).unwrap();
        assert!(matches!(config.upstream, UpstreamConfig::Placeholder));
        assert!(config.access_token.generated);
    }

    #[test]
    fn placeholder_flag_wins_over_a_target() {
        let config = parse(&[
            "--target-endpoint",
            "https://llm.example.com/v1",
            "--placeholder",
        ])
        .unwrap();
        assert!(matches!(config.upstream, UpstreamConfig::Placeholder));
    }

    #[test]
    fn target_with_api_key() {
        let config = parse(&[
            "--target-endpoint",
            "https://llm.example.com/v1",
            "--target-api-key",
            "sk-1",
            "--access-token",
            "tok",
        ])
        .unwrap();
        let UpstreamConfig::Target(target) = config.upstream else {
            panic!("expected a target")
        };
        assert_eq!(target.endpoint.as_str(), "https://llm.example.com/v1");
        let CredentialConfig::ApiKey(key) = target.credential else {
            panic!("expected a key")
        };
        assert_eq!(key.expose_secret(), "sk-1");
        assert!(!config.access_token.generated);
    }

    #[test]
    fn empty_values_count_as_unset() {
        let config = parse(&[
            "--target-endpoint",
            "http://t/v1",
            "--target-api-key",
            "",
            "--access-token",
            " ",
        ])
        .unwrap();
        let UpstreamConfig::Target(target) = config.upstream else {
            panic!("expected a target")
        };
        assert!(matches!(target.credential, CredentialConfig::None));
        assert!(config.access_token.generated);
    }

    #[test]
    fn partial_oauth_names_what_is_missing() {
        let err = parse(&[
            "--target-endpoint",
            "http://t/v1",
            "--oauth-client-id",
            "id",
        ])
        .unwrap_err();
        assert_eq!(
            err,
            ConfigError::PartialOAuth {
                missing: "OAUTH_TOKEN_ENDPOINT, OAUTH_CLIENT_SECRET".into()
            }
        );
        assert!(err.to_string().contains("OAUTH_TOKEN_ENDPOINT"));
    }

    #[test]
    fn non_http_target_is_rejected_by_name() {
        let err = parse(&["--target-endpoint", "ftp://files.example.com/v1"]).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("TARGET_ENDPOINT: expected an http"),
            "{err}"
        );
    }

    #[test]
    fn bad_numbers_are_rejected_by_clap_naming_the_variable() {
        let err = Args::try_parse_from(["llm-proxy", "--port", "eighty"]).unwrap_err();
        assert!(err.to_string().contains("PROXY_PORT"), "{err}");
        let err = Args::try_parse_from(["llm-proxy", "--target-timeout", "0"]).unwrap_err();
        assert!(err.to_string().contains("TARGET_TIMEOUT_SECONDS"), "{err}");
    }

    #[test]
    fn limits_are_converted() {
        let config = parse(&["--max-request-body-mb", "2", "--stream-idle-timeout", "7"]).unwrap();
        assert_eq!(config.limits.max_request_body_bytes, 2 * 1024 * 1024);
        assert_eq!(config.limits.stream_idle_timeout, Duration::from_secs(7));
    }

    #[test]
    fn full_oauth_configuration_wins_over_a_key() {
        let config = parse(&[
            "--target-endpoint",
            "https://llm.example.com/v1",
            "--target-api-key",
            "sk-unused",
            "--oauth-token-endpoint",
            "https://login.example.com/oauth2/v2.0/token",
            "--oauth-client-id",
            "id",
            "--oauth-client-secret",
            "secret",
            "--oauth-scope",
            "api://x/.default",
            "--oauth-client-auth",
            "post",
            "--oauth-refresh-buffer-minutes",
            "2",
        ])
        .unwrap();
        let UpstreamConfig::Target(target) = config.upstream else {
            panic!("expected a target")
        };
        let CredentialConfig::OAuth(oauth) = target.credential else {
            panic!("expected OAuth")
        };
        assert_eq!(oauth.client_auth, ClientAuth::Post);
        assert_eq!(oauth.scope.as_deref(), Some("api://x/.default"));
        assert_eq!(oauth.refresh_buffer, Duration::from_secs(120));
    }

    #[test]
    fn an_unreadable_or_empty_ca_file_is_named() {
        let missing = parse(&[
            "--target-endpoint",
            "https://t/v1",
            "--target-ca-cert",
            "/nonexistent/ca.pem",
        ])
        .unwrap_err();
        assert!(
            missing
                .to_string()
                .starts_with("TARGET_CA_CERT: cannot read /nonexistent/ca.pem"),
            "{missing}"
        );
        let path = std::env::temp_dir().join(format!("not-a-cert-{}.pem", std::process::id()));
        std::fs::write(&path, "hello").unwrap();
        let empty = parse(&[
            "--target-endpoint",
            "https://t/v1",
            "--target-ca-cert",
            path.to_str().unwrap(),
        ])
        .unwrap_err();
        assert!(
            empty.to_string().contains("holds no PEM certificate"),
            "{empty}"
        );
    }
}
