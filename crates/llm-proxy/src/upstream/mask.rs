//! Masking the target's credential in what the target sends back, successes included: a
//! target that echoes its key (in a body or a header) must not hand it to the client or the log.
//! A secret is overwritten with `*`s of its own length, so a body keeps the length its headers
//! may already promise; nothing is copied when nothing matches.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue};
use bytes::{Bytes, BytesMut};
use http_body::{Body as HttpBody, Frame, SizeHint};
use memchr::memmem;

use super::Credential;

/// `bytes` with every occurrence of each secret overwritten; the same bytes when none occurs.
pub fn mask_all<'a>(bytes: Bytes, secrets: impl IntoIterator<Item = &'a [u8]>) -> Bytes {
    let mut masked: Option<BytesMut> = None;
    for secret in secrets.into_iter().filter(|s| !s.is_empty()) {
        let haystack: &[u8] = masked.as_deref().unwrap_or(&bytes);
        if memmem::find(haystack, secret).is_none() {
            continue;
        }
        let out = masked.get_or_insert_with(|| BytesMut::from(&bytes[..]));
        let mut from = 0;
        while let Some(at) = memmem::find(&out[from..], secret) {
            let start = from + at;
            out[start..start + secret.len()].fill(b'*');
            from = start + secret.len();
        }
    }
    masked.map_or(bytes, BytesMut::freeze)
}

/// Masks the credential in each header value that holds it; a value without it is not copied.
pub fn mask_headers(credential: &Credential, headers: &mut HeaderMap) {
    for value in headers.values_mut() {
        if credential.occurs_in(value.as_bytes())
            && let Ok(masked) = HeaderValue::from_maybe_shared(
                credential.mask(Bytes::copy_from_slice(value.as_bytes())),
            )
        {
            *value = masked;
        }
    }
}

/// A response body with the credential masked in each frame. A frame is a whole JSON answer
/// or whole events; only a pass-through body could split a secret across two frames.
pub struct MaskedBody {
    inner: Body,
    credential: Arc<Credential>,
}

impl MaskedBody {
    pub fn new(inner: Body, credential: Arc<Credential>) -> Self {
        Self { inner, credential }
    }
}

impl HttpBody for MaskedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        Pin::new(&mut this.inner).poll_frame(cx).map(|frame| {
            frame.map(|frame| {
                frame.map(|frame| match frame.into_data() {
                    Ok(data) => Frame::data(this.credential.mask(data)),
                    Err(other) => other,
                })
            })
        })
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_secret_is_overwritten_in_place_and_clean_bytes_are_not_copied() {
        let clean = Bytes::from_static(b"{\"ok\":true}");
        let same = mask_all(clean.clone(), [&b"sk-1"[..]]);
        assert_eq!(same.as_ptr(), clean.as_ptr(), "no copy");
        let echoed = Bytes::from_static(b"key sk-1, again sk-1; token tok");
        assert_eq!(
            &mask_all(echoed, [&b"sk-1"[..], &b"tok"[..]])[..],
            b"key ****, again ****; ***en ***"
        );
    }
}
