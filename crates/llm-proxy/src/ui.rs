//! The dashboard's files (`ui/` at the repository root), embedded at build time so the one
//! binary serves them at `/`, with a strict Content-Security-Policy: the page may load only
//! its own files and talk only to this server.

use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use crate::error::unknown_path;

/// Every file of `ui/`, with its content type. A test checks this list against the folder.
pub const FILES: &[(&str, &[u8], &str)] = &[
    (
        "index.html",
        include_bytes!("../../../ui/index.html"),
        "text/html; charset=utf-8",
    ),
    (
        "style.css",
        include_bytes!("../../../ui/style.css"),
        "text/css; charset=utf-8",
    ),
    (
        "favicon.svg",
        include_bytes!("../../../ui/favicon.svg"),
        "image/svg+xml",
    ),
    ("app.js", include_bytes!("../../../ui/app.js"), JS),
    ("api.js", include_bytes!("../../../ui/api.js"), JS),
    ("desktop.js", include_bytes!("../../../ui/desktop.js"), JS),
    ("store.js", include_bytes!("../../../ui/store.js"), JS),
    ("util.js", include_bytes!("../../../ui/util.js"), JS),
    (
        "views/overview.js",
        include_bytes!("../../../ui/views/overview.js"),
        JS,
    ),
    (
        "views/stats.js",
        include_bytes!("../../../ui/views/stats.js"),
        JS,
    ),
    (
        "views/calls.js",
        include_bytes!("../../../ui/views/calls.js"),
        JS,
    ),
    (
        "views/events.js",
        include_bytes!("../../../ui/views/events.js"),
        JS,
    ),
    (
        "views/settings.js",
        include_bytes!("../../../ui/views/settings.js"),
        JS,
    ),
];

const JS: &str = "text/javascript; charset=utf-8";

/// Only this server's own files and API; no inline script or style, no framing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'";

/// `GET /` and the dashboard's files; anything else is the usual 404 in OpenAI's envelope.
pub async fn fallback(method: Method, uri: Uri) -> Response {
    if method == Method::GET || method == Method::HEAD {
        let path = uri.path().trim_start_matches('/');
        let path = if path.is_empty() { "index.html" } else { path };
        if let Some((_, bytes, content_type)) = FILES.iter().find(|(name, ..)| *name == path) {
            return asset(bytes, content_type);
        }
    }
    unknown_path(uri.path()).into_response()
}

fn asset(bytes: &'static [u8], content_type: &'static str) -> Response {
    let mut response = (StatusCode::OK, bytes).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // Small files that change with the binary: revalidate rather than serve a stale UI.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every file in `ui/` is embedded, and nothing embedded is missing from it.
    #[test]
    fn the_embedded_list_matches_the_folder() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../ui");
        let mut on_disk = Vec::new();
        let mut stack = vec![root.clone()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    on_disk.push(
                        path.strip_prefix(&root)
                            .unwrap()
                            .to_string_lossy()
                            .replace('\\', "/"),
                    );
                }
            }
        }
        on_disk.sort();
        let mut embedded: Vec<String> = FILES.iter().map(|(name, ..)| (*name).to_owned()).collect();
        embedded.sort();
        assert_eq!(on_disk, embedded);
    }
}
