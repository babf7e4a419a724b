//! A fast mock target for the benchmark: a fixed, realistic chat completion (about 700 bytes,
//! with usage) and SSE streams whose chunk count and spacing the client chooses with the
//! `x-mock-chunks` and `x-mock-delay-ms` headers (which the proxy forwards). Prints
//! `listening on <addr>` and serves until killed.
//!
//! `POST /v1/messages` answers as Anthropic's Messages API does (for `TARGET_API=anthropic`):
//! a message with the same text and usage, echoing the request's model, or with
//! `"stream":true` an SSE stream with as many text deltas as the chat stream has content chunks.
//!
//! `mock-target --tls-ca <file>` serves HTTPS instead, as company endpoints do: HTTP/2 when the
//! client offers it (ALPN), with a certificate from a CA made at start and written to `<file>`
//! (for the proxy's `TARGET_CA_CERT`).

use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use futures_util::stream;

const COMPLETION: &str = r#"{"id":"chatcmpl-bench0000000000000000000000","object":"chat.completion","created":1741570283,"model":"gpt-4o-2024-08-06","choices":[{"index":0,"message":{"role":"assistant","content":"Benchmarks measure what matters: the time a proxy adds between a developer's tool and the model it calls, and whether it stays small and steady under load. This answer is a fixed body of realistic size.","refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":18,"completion_tokens":52,"total_tokens":70,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}},"service_tier":"default","system_fingerprint":null}"#;
const CHUNK: &str = r#"data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1741570283,"model":"gpt-4o","system_fingerprint":null,"choices":[{"index":0,"delta":{"content":"token "},"logprobs":null,"finish_reason":null}]}

"#;
const LAST: &str = r#"data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1741570283,"model":"gpt-4o","system_fingerprint":null,"choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]}

data: [DONE]

"#;

async fn chat(headers: HeaderMap, body: Bytes) -> Response {
    let streaming = body.windows(13).any(|w| w == b"\"stream\":true");
    if !streaming {
        return ([(header::CONTENT_TYPE, "application/json")], COMPLETION).into_response();
    }
    let number = |name: &str, default: u64| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let chunks = number("x-mock-chunks", 10);
    let delay = Duration::from_millis(number("x-mock-delay-ms", 0));
    let events = stream::unfold(0u64, move |i| async move {
        if i > chunks {
            return None;
        }
        if i > 0 && !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let piece = if i == chunks {
            Bytes::from_static(LAST.as_bytes())
        } else {
            Bytes::from_static(CHUNK.as_bytes())
        };
        Some((Ok::<_, std::convert::Infallible>(piece), i + 1))
    });
    (
        [(header::CONTENT_TYPE, "text/event-stream")],
        Body::from_stream(events),
    )
        .into_response()
}

/// Anthropic's message, split around the model it echoes; its text is [`COMPLETION`]'s.
const MESSAGE_HEAD: &str =
    r#"{"id":"msg_bench00000000000000000000000","type":"message","role":"assistant","model":""#;
const MESSAGE_TAIL: &str = r#"","content":[{"type":"text","text":"Benchmarks measure what matters: the time a proxy adds between a developer's tool and the model it calls, and whether it stays small and steady under load. This answer is a fixed body of realistic size."}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":18,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":52,"service_tier":"standard"}}"#;
/// The stream's first events, split around the model.
const EVENTS_HEAD: &str = r#"event: message_start
data: {"type":"message_start","message":{"id":"msg_bench00000000000000000000000","type":"message","role":"assistant","model":""#;
const EVENTS_HEAD_TAIL: &str = r#"","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":18,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":1,"service_tier":"standard"}}}

event: content_block_start
data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}

"#;
const DELTA: &str = r#"event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"token "}}

"#;
/// The last events, split around the output tokens.
const EVENTS_END: &str = r#"event: content_block_stop
data: {"type":"content_block_stop","index":0}

event: message_delta
data: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":"#;
const EVENTS_END_TAIL: &str = r#"}}

event: message_stop
data: {"type":"message_stop"}

"#;

/// The request's `"model"` (a plain JSON string), or `claude` when there is none.
fn model_of(body: &[u8]) -> &[u8] {
    const KEY: &[u8] = b"\"model\":\"";
    body.windows(KEY.len())
        .position(|w| w == KEY)
        .map(|at| &body[at + KEY.len()..])
        .and_then(|rest| rest.iter().position(|&b| b == b'"').map(|end| &rest[..end]))
        .unwrap_or(b"claude")
}

fn joined(parts: &[&[u8]]) -> Bytes {
    Bytes::from(parts.concat())
}

/// Anthropic's Messages API: the same answer as [`chat`], in Anthropic's shapes.
async fn messages(headers: HeaderMap, body: Bytes) -> Response {
    let model = model_of(&body);
    let streaming = body.windows(13).any(|w| w == b"\"stream\":true");
    if !streaming {
        let message = joined(&[MESSAGE_HEAD.as_bytes(), model, MESSAGE_TAIL.as_bytes()]);
        return ([(header::CONTENT_TYPE, "application/json")], message).into_response();
    }
    let chunks = number(&headers, "x-mock-chunks", 10);
    let delay = Duration::from_millis(number(&headers, "x-mock-delay-ms", 0));
    // As many pieces, as far apart, as the chat stream: the first events with the first delta,
    // then one delta each, then the last events.
    let tokens = chunks.to_string();
    let end = [
        EVENTS_END.as_bytes(),
        tokens.as_bytes(),
        EVENTS_END_TAIL.as_bytes(),
    ];
    let mut first = vec![EVENTS_HEAD.as_bytes(), model, EVENTS_HEAD_TAIL.as_bytes()];
    if chunks > 0 {
        first.push(DELTA.as_bytes());
    } else {
        first.extend(end);
    }
    let (first, last) = (joined(&first), joined(&end));
    let events = stream::unfold(0u64, move |i| {
        let (first, last) = (first.clone(), last.clone());
        async move {
            if i > chunks {
                return None;
            }
            if i > 0 && !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            let piece = if i == 0 {
                first
            } else if i == chunks {
                last
            } else {
                Bytes::from_static(DELTA.as_bytes())
            };
            Some((Ok::<_, std::convert::Infallible>(piece), i + 1))
        }
    });
    (
        [(header::CONTENT_TYPE, "text/event-stream")],
        Body::from_stream(events),
    )
        .into_response()
}

/// A number from a request header, or `default`.
fn number(headers: &HeaderMap, name: &str, default: u64) -> u64 {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn models() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        r#"{"object":"list","data":[{"id":"gpt-4o","object":"model","created":1715558400,"owned_by":"bench"}]}"#,
    )
        .into_response()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let app = Router::new()
        .route("/v1/chat/completions", post(chat))
        .route("/v1/messages", post(messages))
        .route("/v1/models", get(models));
    // A long accept queue, as the proxy has: the benchmark opens thousands of streams at once.
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(([127, 0, 0, 1], 0).into())?;
    let listener = socket.listen(4096)?;
    let mut args = std::env::args().skip(1);
    if let (Some(flag), Some(ca_file)) = (args.next(), args.next())
        && flag == "--tls-ca"
    {
        return serve_tls(listener, app, &ca_file).await;
    }
    println!("listening on {}", listener.local_addr()?);
    // Streams are many small writes; Nagle would hold each one back.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app).await?;
    Ok(())
}

/// HTTPS with HTTP/2 offered, many streams allowed on one connection.
async fn serve_tls(
    listener: tokio::net::TcpListener,
    app: Router,
    ca_file: &str,
) -> anyhow::Result<()> {
    use std::sync::Arc;

    use hyper_util::rt::{TokioExecutor, TokioIo};
    use hyper_util::service::TowerToHyperService;
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    use tokio_rustls::rustls::ServerConfig;
    use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key)?;
    std::fs::write(ca_file, ca.pem())?;
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate()?;
    let cert = CertificateParams::new(vec!["127.0.0.1".to_owned()])?.signed_by(&key, &issuer)?;
    let mut config = ServerConfig::builder_with_provider(Arc::new(
        tokio_rustls::rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(
        vec![cert.der().clone()],
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    )?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    // Only now: the CA file is written.
    println!("listening on {}", listener.local_addr()?);
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder.http2().max_concurrent_streams(20_000);
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let (acceptor, app, builder) = (acceptor.clone(), app.clone(), builder.clone());
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(stream).await else {
                return;
            };
            let _ = builder
                .serve_connection(TokioIo::new(tls), TowerToHyperService::new(app))
                .await;
        });
    }
}
