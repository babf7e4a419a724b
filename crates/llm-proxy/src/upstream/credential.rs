//! The credential the proxy presents to the target: the one seam every auth kind plugs into.
//! The upstream client asks for an `Authorization` value and never knows which kind it has.

use std::borrow::Cow;
use std::sync::Arc;

use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderName, HeaderValue};
use bytes::Bytes;
use secrecy::{ExposeSecret, SecretString};

use super::oauth::{Authorization, TokenError, TokenSource};
use crate::config::TargetApi;
use crate::formats::{self, KeyHeader};

#[derive(Debug)]
pub enum Credential {
    None,
    /// A static key, kept both as the header (built once, marked sensitive so hyper never
    /// logs it) and as the secret (to scrub it from text the target echoes back).
    Key {
        name: HeaderName,
        header: HeaderValue,
        secret: SecretString,
    },
    OAuth(Arc<TokenSource>),
}

impl Credential {
    /// A key as the target's API takes it: `x-api-key` for Anthropic, `x-goog-api-key` for
    /// Gemini, a Bearer token otherwise.
    pub fn api_key(key: &SecretString, api: TargetApi) -> Self {
        let (name, value) = match formats::key_header(api) {
            KeyHeader::Named(name) => (
                HeaderName::from_static(name),
                key.expose_secret().to_owned(),
            ),
            KeyHeader::Bearer => (AUTHORIZATION, format!("Bearer {}", key.expose_secret())),
        };
        match HeaderValue::from_str(&value) {
            Ok(mut header) => {
                header.set_sensitive(true);
                Self::Key {
                    name,
                    header,
                    secret: key.clone(),
                }
            }
            // A key with control characters cannot be sent; the target will answer 401,
            // which is the clearest thing the user can see.
            Err(_) => Self::None,
        }
    }

    /// The header for the next request. Only OAuth can fail, and only OAuth tokens carry a
    /// generation: the handle by which a rejected token is dropped.
    pub async fn authorization(&self) -> Result<Option<Authorization>, TokenError> {
        match self {
            Self::None => Ok(None),
            Self::Key { name, header, .. } => Ok(Some(Authorization {
                name: name.clone(),
                header: header.clone(),
                generation: 0,
            })),
            Self::OAuth(source) => source.authorization().await.map(Some),
        }
    }

    /// The target answered 401 to this authorization. Returns whether a retry could succeed,
    /// which is only so for an OAuth token that has now been dropped or replaced.
    pub fn rejected(&self, authorization: &Authorization) -> bool {
        match self {
            Self::OAuth(source) => source.reject(authorization.generation),
            _ => false,
        }
    }

    pub fn token_source(&self) -> Option<&Arc<TokenSource>> {
        match self {
            Self::OAuth(source) => Some(source),
            _ => None,
        }
    }

    /// Calls `each` with every secret the target could echo.
    pub fn each_secret(&self, each: &mut dyn FnMut(&[u8])) {
        match self {
            Self::None => {}
            Self::Key { secret, .. } => each(secret.expose_secret().as_bytes()),
            Self::OAuth(source) => source.each_secret(each),
        }
    }

    /// `bytes` with the credential overwritten wherever it occurs ([`super::mask`]).
    pub fn mask(&self, bytes: Bytes) -> Bytes {
        match self {
            Self::None => bytes,
            Self::Key { secret, .. } => {
                super::mask::mask_all(bytes, [secret.expose_secret().as_bytes()])
            }
            Self::OAuth(source) => source.mask(bytes),
        }
    }

    /// Whether any secret of the credential occurs in `bytes`.
    pub fn occurs_in(&self, bytes: &[u8]) -> bool {
        let mut found = false;
        self.each_secret(&mut |secret| {
            found |= !secret.is_empty() && memchr::memmem::find(bytes, secret).is_some();
        });
        found
    }

    /// `text` with the credential overwritten as [`Self::mask`] does; borrowed when absent.
    pub fn mask_str<'a>(&self, text: &'a str) -> Cow<'a, str> {
        if !self.occurs_in(text.as_bytes()) {
            return Cow::Borrowed(text);
        }
        let masked = self.mask(Bytes::copy_from_slice(text.as_bytes()));
        Cow::Owned(String::from_utf8_lossy(&masked).into_owned())
    }

    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        match self {
            Self::Key { secret, .. } if text.contains(secret.expose_secret()) => {
                Cow::Owned(text.replace(secret.expose_secret(), "[redacted]"))
            }
            Self::OAuth(source) => {
                let redacted = source.redact(text);
                if redacted == text {
                    Cow::Borrowed(text)
                } else {
                    Cow::Owned(redacted)
                }
            }
            _ => Cow::Borrowed(text),
        }
    }
}
