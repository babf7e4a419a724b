//! A target and token server behind an internal CA: trusted with `TARGET_CA_CERT`, refused
//! (with a hint) without it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "in tests a failure should panic"
)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::post;
use common::*;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use llm_proxy::config::{ClientAuth, CredentialConfig, OAuthConfig, TargetConfig, UpstreamConfig};
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// An internal CA and a server certificate for 127.0.0.1 that it signed.
struct Pki {
    ca_pem: String,
    server_cert: CertificateDer<'static>,
    server_key: PrivateKeyDer<'static>,
}

fn pki() -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let server_key = KeyPair::generate().unwrap();
    let server = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&server_key, &issuer)
        .unwrap();
    Pki {
        ca_pem: ca.pem(),
        server_cert: server.der().clone(),
        server_key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der())),
    }
}

/// An HTTPS server on 127.0.0.1:0 answering chat completions and token requests.
async fn tls_server(pki: &Pki) -> String {
    let config = ServerConfig::builder_with_provider(Arc::new(
        tokio_rustls::rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![pki.server_cert.clone()], pki.server_key.clone_key())
    .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let app = Router::new()
        .route(
            "/v1/chat/completions",
            post(|| async {
                (
                    [("content-type", "application/json")],
                    fixture("openai/chat-completion.json"),
                )
            }),
        )
        .route(
            "/token",
            post(|| async {
                (
                    [("content-type", "application/json")],
                    r#"{"access_token":"tls-token","token_type":"Bearer","expires_in":3600}"#,
                )
            }),
        );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let app = app.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(stream).await else {
                    return;
                };
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), TowerToHyperService::new(app))
                    .await;
            });
        }
    });
    format!("https://{addr}")
}

fn target(base: &str, credential: CredentialConfig, ca: Option<&str>) -> UpstreamConfig {
    UpstreamConfig::Target(TargetConfig {
        endpoint: format!("{base}/v1").parse().unwrap(),
        credential,
        extra_roots_pem: ca.map(|pem| pem.as_bytes().to_vec()),
    })
}

fn chat() -> Value {
    json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]})
}

#[tokio::test]
async fn an_internal_ca_is_trusted_only_when_configured() {
    let pki = pki();
    let base = tls_server(&pki).await;

    let trusting = TestProxy::start(config(target(
        &base,
        CredentialConfig::None,
        Some(&pki.ca_pem),
    )))
    .await;
    let response = trusting
        .post("/v1/chat/completions", &chat())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.text().await.unwrap(),
        fixture("openai/chat-completion.json")
    );

    let untrusting = TestProxy::start(config(target(&base, CredentialConfig::None, None))).await;
    let response = untrusting
        .post("/v1/chat/completions", &chat())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    let body: Value = response.json().await.unwrap();
    let message = assert_envelope(&body)["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(message.contains("TARGET_CA_CERT"), "{message}");
}

#[tokio::test]
async fn a_token_server_behind_the_internal_ca_works_with_it() {
    let pki = pki();
    let base = tls_server(&pki).await;
    let oauth = |client_auth| {
        CredentialConfig::OAuth(OAuthConfig {
            token_endpoint: format!("{base}/token").parse().unwrap(),
            client_id: CLIENT_ID.into(),
            client_secret: SecretString::from(CLIENT_SECRET),
            scope: None,
            audience: None,
            client_auth,
            refresh_buffer: Duration::from_secs(300),
        })
    };
    let trusting = TestProxy::start(config(target(
        &base,
        oauth(ClientAuth::Basic),
        Some(&pki.ca_pem),
    )))
    .await;
    let response = trusting
        .post("/v1/chat/completions", &chat())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    let untrusting = TestProxy::start(config(target(&base, oauth(ClientAuth::Basic), None))).await;
    let response = untrusting
        .post("/v1/chat/completions", &chat())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    let body: Value = response.json().await.unwrap();
    let message = assert_envelope(&body)["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        message.contains("token server") && message.contains("TARGET_CA_CERT"),
        "{message}"
    );
}
