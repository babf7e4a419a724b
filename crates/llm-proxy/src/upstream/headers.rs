//! Which headers cross the proxy, in each direction.
//!
//! Hop-by-hop headers (RFC 9110 section 7.6.1, and any that `Connection` names) describe one
//! connection and never cross. The client's credentials never reach the target. Encodings are
//! not negotiated through the proxy: it asks the target for identity bodies so it can read
//! error bodies and streams, and the loopback hop to the client gains nothing from compression.

use axum::http::{HeaderMap, HeaderName, header};

use crate::credential_headers::CREDENTIAL_HEADERS;

const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// Never sent to the target besides the client's own credentials (which are for the proxy):
/// headers the HTTP client sets itself for the outgoing request.
const NOT_FORWARDED: [HeaderName; 4] = [
    header::HOST,
    header::CONTENT_LENGTH,
    header::ACCEPT_ENCODING,
    header::EXPECT,
];

/// Never passed back to the client: framing the server recomputes, and headers that belong to
/// the target's site rather than to the API answer.
const NOT_RETURNED: [HeaderName; 6] = [
    header::CONTENT_LENGTH,
    header::SET_COOKIE,
    header::DATE,
    header::SERVER,
    header::ALT_SVC,
    header::STRICT_TRANSPORT_SECURITY,
];

pub fn forwarded_request_headers(client: &HeaderMap) -> HeaderMap {
    copy_except(client, &[&CREDENTIAL_HEADERS, &NOT_FORWARDED])
}

pub fn returned_response_headers(target: &HeaderMap) -> HeaderMap {
    copy_except(target, &[&NOT_RETURNED])
}

fn copy_except(source: &HeaderMap, excluded: &[&[HeaderName]]) -> HeaderMap {
    let named_by_connection: Vec<HeaderName> = source
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    let mut out = HeaderMap::with_capacity(source.len());
    for (name, value) in source {
        if excluded.iter().any(|list| list.contains(name))
            || HOP_BY_HOP.contains(name)
            || named_by_connection.contains(name)
        {
            continue;
        }
        out.append(name.clone(), value.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn credentials_and_hop_by_hop_headers_stay_behind() {
        let mut client = HeaderMap::new();
        client.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer client"),
        );
        client.insert("api-key", HeaderValue::from_static("client"));
        client.insert("x-api-key", HeaderValue::from_static("client"));
        client.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, x-trace"),
        );
        client.insert("x-trace", HeaderValue::from_static("1"));
        client.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        client.insert("openai-beta", HeaderValue::from_static("assistants=v2"));
        client.insert("x-stainless-lang", HeaderValue::from_static("python"));
        let out = forwarded_request_headers(&client);
        let names: Vec<&str> = out.keys().map(|k| k.as_str()).collect();
        assert_eq!(names.len(), 3, "{names:?}");
        assert!(out.contains_key("openai-beta"));
        assert!(out.contains_key("x-stainless-lang"));
        assert!(out.contains_key(header::CONTENT_TYPE));
    }

    #[test]
    fn rate_limit_and_request_id_headers_come_back() {
        let mut target = HeaderMap::new();
        target.insert("x-request-id", HeaderValue::from_static("req_1"));
        target.insert(
            "x-ratelimit-remaining-requests",
            HeaderValue::from_static("9"),
        );
        target.insert("openai-processing-ms", HeaderValue::from_static("12"));
        target.insert(header::RETRY_AFTER, HeaderValue::from_static("3"));
        target.insert(header::SET_COOKIE, HeaderValue::from_static("session=x"));
        target.insert(header::CONTENT_LENGTH, HeaderValue::from_static("10"));
        let out = returned_response_headers(&target);
        assert_eq!(out.len(), 4);
        assert!(!out.contains_key(header::SET_COOKIE));
    }
}
