//! The proxy's effective configuration: what the server is built from.
//!
//! `Config` is plain data so that the headless binary (through `cli::Args`) and the
//! desktop shell (from its settings and the keychain) can both build one. Everything here is
//! already validated: a `Config` that exists can be served.

use crate::model_aliases::ModelAliases;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use url::Url;

/// Prefix of generated access tokens, kept from the original project so users recognise them.
const ACCESS_TOKEN_PREFIX: &str = "llm-proxy-";

#[derive(Debug, Clone)]
pub struct Config {
    /// Address to listen on; loopback by default so the port is not reachable from the network.
    pub host: IpAddr,
    /// Port to listen on; 0 picks a free one (tests, and a second instance beside the first).
    pub port: u16,
    /// The URL users are told to use, when it differs from `http://localhost:PORT` (a reverse
    /// proxy, a container's published port).
    pub base_url: Option<Url>,
    /// What clients must present to use `/v1`.
    pub access_token: AccessToken,
    /// Where requests go: nowhere (placeholder answers) or a target endpoint.
    pub upstream: UpstreamConfig,
    /// Where logs and state live.
    pub data_dir: PathBuf,
    pub limits: Limits,
    pub logging: LogConfig,
    /// Serve `/metrics` without the access token (for a Prometheus without bearer support).
    pub metrics_public: bool,
    /// Add `Server-Timing` (the proxy's and the target's share) to forwarded answers.
    pub server_timing: bool,
    pub access: AccessPolicy,
    /// Model names mapped to the target's before forwarding (`MODEL_ALIASES`).
    pub model_aliases: ModelAliases,
}

/// Who may talk to the proxy at all, before any token is checked.
#[derive(Debug, Clone, Default)]
pub struct AccessPolicy {
    /// Host names accepted in the `Host` header besides loopback ones and the base URL's
    /// host: what a DNS-rebinding page cannot forge its way past.
    pub allowed_hosts: Vec<String>,
    /// Origins whose pages may call the proxy from a browser (CORS). Empty: none.
    pub cors_origins: Vec<String>,
}

/// What the request log keeps, and for how long.
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// Record API calls at all (server events are always kept).
    pub requests: bool,
    /// Store request and response bodies; off for users who may not keep prompts.
    pub bodies: bool,
    /// Longest body stored; longer ones are cut with a visible mark.
    pub body_max_bytes: usize,
    pub max_entries: usize,
    pub max_age: Duration,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            requests: true,
            bodies: true,
            body_max_bytes: 256 * 1024,
            max_entries: 10_000,
            max_age: Duration::from_secs(30 * 24 * 3600),
        }
    }
}

/// The token clients present. `generated` decides whether the banner may print it in full: a
/// generated token is useless unless the user sees it, a supplied one they already know.
#[derive(Debug, Clone)]
pub struct AccessToken {
    pub secret: SecretString,
    pub generated: bool,
}

impl AccessToken {
    /// A fresh token from the thread-local CSPRNG (ChaCha, seeded by the OS): `llm-proxy-<64 hex>`.
    pub fn generate() -> Self {
        let token = format!("{ACCESS_TOKEN_PREFIX}{}", crate::ids::random_hex(32));
        Self {
            secret: SecretString::from(token),
            generated: true,
        }
    }

    pub fn supplied(token: impl Into<String>) -> Self {
        Self {
            secret: SecretString::from(token.into()),
            generated: false,
        }
    }

    /// The token as the banner shows it: whole when generated, otherwise its first few characters.
    pub fn display(&self) -> String {
        let token = self.secret.expose_secret();
        if self.generated {
            return token.to_owned();
        }
        mask(token)
    }
}

/// `abcd…wxyz`-style masking that keeps enough for a user to recognise which token it is.
pub fn mask(secret: &str) -> String {
    let chars: Vec<char> = secret.chars().collect();
    if chars.len() <= 12 {
        return "*".repeat(chars.len().max(4));
    }
    let head: String = chars[..6].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}…{tail}")
}

#[derive(Debug, Clone)]
#[expect(
    clippy::large_enum_variant,
    reason = "one per server, built once: boxing buys nothing"
)]
pub enum UpstreamConfig {
    /// No target: valid OpenAI answers are made up locally, so tools can be wired up first.
    Placeholder,
    Target(TargetConfig),
}

#[derive(Debug, Clone)]
pub struct TargetConfig {
    /// Base URL including `/v1`; request paths after `/v1` are appended to it.
    pub endpoint: Url,
    /// The API the target speaks: chat requests are translated into it.
    pub api: TargetApi,
    pub credential: CredentialConfig,
    /// Extra trusted roots (PEM), for a target and token server behind an internal CA.
    pub extra_roots_pem: Option<Vec<u8>>,
}

/// The API a target speaks (`TARGET_API`). Clients always speak OpenAI's; requests are
/// translated into the target's, and its answers back.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TargetApi {
    /// OpenAI's chat completions: requests pass as they are.
    #[default]
    OpenAi,
    /// Anthropic's Messages API (`POST /messages`).
    Anthropic,
    /// Google's Gemini API (`POST /models/{model}:generateContent`).
    Gemini,
    /// Ollama's native API (`POST /api/chat`); its endpoint is the server's root URL.
    Ollama,
    /// OpenAI's API with the Responses API too: `/v1/responses` passes as it is, like chat
    /// completions, instead of being answered as a chat completion.
    Responses,
}

impl TargetApi {
    pub const ALL: [TargetApi; 5] = [
        TargetApi::OpenAi,
        TargetApi::Anthropic,
        TargetApi::Gemini,
        TargetApi::Ollama,
        TargetApi::Responses,
    ];

    /// The `TARGET_API` value.
    pub fn name(self) -> &'static str {
        match self {
            Self::OpenAi => "openai",
            Self::Anthropic => "anthropic",
            Self::Gemini => "gemini",
            Self::Ollama => "ollama",
            Self::Responses => "responses",
        }
    }

    /// Whether chat completions go as the client sent them (OpenAI's own API).
    pub fn is_openai(self) -> bool {
        matches!(self, Self::OpenAi | Self::Responses)
    }
}

impl std::str::FromStr for TargetApi {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|api| api.name().eq_ignore_ascii_case(text.trim()))
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|api| api.name()).collect();
                format!("expected one of {}, got {text:?}", names.join(", "))
            })
    }
}

/// How the proxy authenticates to the target. One seam: the upstream client asks the
/// credential for a header and never knows which kind it is.
#[derive(Debug, Clone)]
pub enum CredentialConfig {
    None,
    ApiKey(SecretString),
    OAuth(OAuthConfig),
}

impl CredentialConfig {
    /// The name shown in the banner, `/health` and the dashboard.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::None => "none",
            Self::ApiKey(_) => "api-key",
            Self::OAuth(_) => "oauth2-client-credentials",
        }
    }
}

#[derive(Debug, Clone)]
pub struct OAuthConfig {
    pub token_endpoint: Url,
    pub client_id: String,
    pub client_secret: SecretString,
    pub scope: Option<String>,
    /// Sent as `audience`, which Auth0-style servers require.
    pub audience: Option<String>,
    pub client_auth: ClientAuth,
    /// How long before expiry the token is replaced.
    pub refresh_buffer: Duration,
}

/// Where the client credentials go in the token request (RFC 6749 section 2.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ClientAuth {
    /// HTTP Basic, which the RFC prefers.
    Basic,
    /// `client_id` and `client_secret` in the form body.
    Post,
    /// Basic first; if the server rejects the client, the form body, remembering what worked.
    Auto,
}

/// Limits and timeouts. Durations rather than seconds so tests can use short ones.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Establishing a connection to the target.
    pub connect_timeout: Duration,
    /// A whole non-streaming exchange with the target, and the wait for a stream's headers.
    pub request_timeout: Duration,
    /// The longest silence allowed inside a stream before it is declared dead.
    pub stream_idle_timeout: Duration,
    /// Largest request body accepted; vision and agent payloads are big.
    pub max_request_body_bytes: usize,
    /// How long in-flight requests and streams may run on after shutdown is asked for.
    pub shutdown_grace: Duration,
    /// Requests (streams included) served at once; beyond it, 503 with `Retry-After`.
    pub max_concurrency: usize,
    /// How long a client may take to send its request headers (a slowloris defence).
    pub header_read_timeout: Duration,
    /// How long a client may pause while sending its request body (the same defence).
    pub body_idle_timeout: Duration,
    /// The longest silence in a `/v1/messages` stream before a `ping` event: Claude Code gives
    /// up after five minutes without a byte, and says it is waiting after twenty seconds.
    pub messages_ping_interval: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(600),
            stream_idle_timeout: Duration::from_secs(300),
            max_request_body_bytes: 50 * 1024 * 1024,
            shutdown_grace: Duration::from_secs(30),
            max_concurrency: 16_384,
            header_read_timeout: Duration::from_secs(10),
            body_idle_timeout: Duration::from_secs(10),
            messages_ping_interval: Duration::from_secs(15),
        }
    }
}

impl Config {
    /// A placeholder-mode configuration on loopback with a generated token: the embedded default.
    pub fn placeholder(port: u16) -> Self {
        Self {
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port,
            base_url: None,
            access_token: AccessToken::generate(),
            upstream: UpstreamConfig::Placeholder,
            data_dir: default_data_dir(),
            limits: Limits::default(),
            logging: LogConfig::default(),
            metrics_public: false,
            server_timing: true,
            model_aliases: ModelAliases::default(),
            access: AccessPolicy::default(),
        }
    }

    /// The URL users are told to use, given the port actually bound (which differs from
    /// `port` when that is 0).
    pub fn public_base_url(&self, bound_port: u16) -> String {
        match &self.base_url {
            Some(url) => url.as_str().trim_end_matches('/').to_owned(),
            None => format!("http://localhost:{bound_port}"),
        }
    }

    /// One line for the banner and `/health`: what the proxy does with requests.
    pub fn mode_description(&self) -> String {
        match &self.upstream {
            UpstreamConfig::Placeholder => {
                "placeholder (no target configured; answers are generated locally)".to_owned()
            }
            UpstreamConfig::Target(target) => {
                let api = match target.api {
                    TargetApi::OpenAi => String::new(),
                    other => format!(", translating to the {} API", other.name()),
                };
                format!(
                    "forwarding to {} with {} auth{api}",
                    target.endpoint.host_str().unwrap_or("?"),
                    target.credential.kind()
                )
            }
        }
    }
}

/// The platform's folders for the app, one name for the headless server and the desktop app
/// alike; `None` where the platform has no home directory.
pub fn project_dirs() -> Option<directories::ProjectDirs> {
    directories::ProjectDirs::from("", "", "local-llm-proxy")
}

/// The platform's data directory for the app (`~/.local/share/local-llm-proxy` on Linux),
/// or `./data` where the platform has none (a bare container).
pub fn default_data_dir() -> PathBuf {
    project_dirs()
        .map(|dirs| dirs.data_dir().to_path_buf())
        .unwrap_or_else(|| PathBuf::from("data"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_are_prefixed_hex_and_distinct() {
        let a = AccessToken::generate();
        let b = AccessToken::generate();
        let a = a.secret.expose_secret();
        assert!(a.starts_with("llm-proxy-"));
        let hex = &a["llm-proxy-".len()..];
        assert_eq!(hex.len(), 64);
        assert!(hex.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b.secret.expose_secret());
    }

    #[test]
    fn supplied_tokens_are_masked_generated_shown() {
        let supplied = AccessToken::supplied("my-very-secret-token-1234");
        assert_eq!(supplied.display(), "my-ver…1234");
        let short = AccessToken::supplied("abc");
        assert_eq!(short.display(), "****");
        let generated = AccessToken::generate();
        assert_eq!(generated.display(), generated.secret.expose_secret());
    }

    #[test]
    fn secrets_do_not_show_in_debug() {
        let config = CredentialConfig::ApiKey(SecretString::from("sk-target-secret"));
        assert!(!format!("{config:?}").contains("sk-target-secret"));
    }
}
