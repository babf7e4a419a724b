//! The credential the proxy presents to the target: the one seam every auth kind plugs into.
//! The upstream client asks for an `Authorization` value and never knows which kind it has.

use std::borrow::Cow;

use axum::http::HeaderValue;
use secrecy::{ExposeSecret, SecretString};

use crate::config::CredentialConfig;

#[derive(Debug)]
pub enum Credential {
    None,
    /// A static key, kept both as the header value (built once, marked sensitive so hyper
    /// never logs it) and as the secret (to scrub it from text the target echoes back).
    Bearer {
        header: HeaderValue,
        secret: SecretString,
    },
}

impl Credential {
    pub fn from_config(config: &CredentialConfig) -> Self {
        match config {
            CredentialConfig::None | CredentialConfig::OAuth(_) => Self::None,
            CredentialConfig::ApiKey(key) => {
                match HeaderValue::from_str(&format!("Bearer {}", key.expose_secret())) {
                    Ok(mut header) => {
                        header.set_sensitive(true);
                        Self::Bearer {
                            header,
                            secret: key.clone(),
                        }
                    }
                    // A key with control characters cannot be sent; the target will answer
                    // 401, which is the clearest thing the user can see.
                    Err(_) => Self::None,
                }
            }
        }
    }

    pub fn authorization(&self) -> Option<HeaderValue> {
        match self {
            Self::None => None,
            Self::Bearer { header, .. } => Some(header.clone()),
        }
    }

    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        match self {
            Self::Bearer { secret, .. } if text.contains(secret.expose_secret()) => {
                Cow::Owned(text.replace(secret.expose_secret(), "[redacted]"))
            }
            _ => Cow::Borrowed(text),
        }
    }
}
