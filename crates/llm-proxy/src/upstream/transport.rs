//! How bytes reach the target: hyper's pooled client over a connector whose route (direct, an
//! HTTP proxy's CONNECT tunnel, or an HTTP proxy forwarding plain HTTP) is worked out once,
//! since the target is fixed by configuration and only the path changes between requests.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::http::uri::{Authority, PathAndQuery, Scheme};
use axum::http::{HeaderMap, HeaderValue, Method, Request, Response, Uri, header};
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::{Full, Limited};
use hyper::body::Incoming;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::client::proxy::matcher::Matcher;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tower::Service;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What can stop the client from being built: all configuration problems, shown at startup.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("TARGET_CA_CERT holds no usable PEM certificate")]
    Certificates,
    #[error("cannot set up TLS: {0}")]
    Tls(#[from] rustls::Error),
    #[error("the target URL cannot be used: {0}")]
    Endpoint(String),
    #[error(
        "the proxy for the target ({scheme}://...) is not an HTTP proxy; set NO_PROXY to the target's host to reach it directly"
    )]
    ProxyScheme { scheme: String },
    #[error("cannot create the OAuth client: {0}")]
    OAuthClient(#[from] reqwest::Error),
}

/// The one TLS configuration for everything the proxy reaches: the operating system's
/// verifier (its trust store, plus TARGET_CA_CERT's certificates when set).
pub fn tls_config(extra_roots_pem: Option<&[u8]>) -> Result<rustls::ClientConfig, BuildError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier = match extra_roots_pem {
        None => rustls_platform_verifier::Verifier::new(provider.clone())?,
        Some(pem) => rustls_platform_verifier::Verifier::new_with_extra_roots(
            pem_certificates(pem)?,
            provider.clone(),
        )?,
    };
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth())
}

/// The certificates of a PEM file (TARGET_CA_CERT): at least one, and nothing unreadable.
pub fn pem_certificates(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, BuildError> {
    let certificates = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| BuildError::Certificates)?;
    if certificates.is_empty() {
        return Err(BuildError::Certificates);
    }
    Ok(certificates)
}

/// The pooled client for one target.
pub struct Transport {
    client: Client<Connector, OutgoingBody>,
    scheme: Scheme,
    authority: Authority,
    /// The endpoint's path without a trailing slash, so `base_path + "/chat/completions"` works.
    base_path: String,
    /// `Host` for a plain-HTTP target, which is always spoken to in HTTP/1.1: made once, where
    /// the pool would format it for every request (3k instructions, callgrind). Over TLS the
    /// protocol is agreed per connection, and the pool sets `Host` for HTTP/1.1 only (HTTP/2
    /// has `:authority`).
    plain_http_host: Option<HeaderValue>,
    /// For a plain-HTTP target reached through a proxy that wants credentials: those go with
    /// each request (a tunnel sends them once, in its CONNECT).
    proxy_authorization: Option<HeaderValue>,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("host", &self.authority.host())
            .finish_non_exhaustive()
    }
}

impl Transport {
    pub fn new(
        endpoint: &url::Url,
        tls: rustls::ClientConfig,
        connect_timeout: Duration,
    ) -> Result<Self, BuildError> {
        if !endpoint.username().is_empty() || endpoint.password().is_some() {
            // They would not be sent (a URL's credentials are not a header), and they would
            // sit in a URL that is shown and logged.
            return Err(BuildError::Endpoint(
                "it holds credentials; give them as TARGET_API_KEY or OAuth settings".into(),
            ));
        }
        let uri: Uri = endpoint
            .as_str()
            .parse()
            .map_err(|e: axum::http::uri::InvalidUri| BuildError::Endpoint(e.to_string()))?;
        let (Some(scheme), Some(authority)) = (uri.scheme().cloned(), uri.authority().cloned())
        else {
            return Err(BuildError::Endpoint("it needs a scheme and a host".into()));
        };

        // Without credentials (refused above) the authority is `host[:port]`, as `Host` wants it.
        let plain_http_host = if scheme == Scheme::HTTP {
            Some(
                HeaderValue::from_str(authority.as_str())
                    .map_err(|e| BuildError::Endpoint(e.to_string()))?,
            )
        } else {
            None
        };

        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(connect_timeout));
        // A TLS proxy is spoken to in HTTP/1.1 only: CONNECT and absolute-form requests.
        let to_proxy = HttpsConnectorBuilder::new()
            .with_tls_config(tls.clone())
            .https_or_http()
            .enable_http1()
            .wrap_connector(http.clone());
        let to_target = HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .enable_http2();

        let mut proxy_authorization = None;
        let route = match Matcher::from_env().intercept(&uri) {
            None => Route::Direct(to_target.wrap_connector(http)),
            Some(proxy) => {
                let proxy_scheme = proxy.uri().scheme_str().unwrap_or_default();
                if proxy_scheme != "http" && proxy_scheme != "https" {
                    return Err(BuildError::ProxyScheme {
                        scheme: proxy_scheme.to_owned(),
                    });
                }
                if scheme == Scheme::HTTPS {
                    let mut tunnel = Tunnel::new(proxy.uri().clone(), to_proxy);
                    if let Some(auth) = proxy.basic_auth() {
                        tunnel = tunnel.with_auth(auth.clone());
                    }
                    Route::Tunnel(to_target.wrap_connector(tunnel))
                } else {
                    proxy_authorization = proxy.basic_auth().cloned();
                    Route::Forward {
                        proxy: proxy.uri().clone(),
                        via: to_proxy,
                    }
                }
            }
        };
        let connector = Connector {
            route: Arc::new(route),
            timeout: connect_timeout,
        };
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .build(connector);
        Ok(Self {
            client,
            scheme,
            authority,
            base_path: endpoint.path().trim_end_matches('/').to_owned(),
            plain_http_host,
            proxy_authorization,
        })
    }

    /// The target's URI for what followed `/v1` in a client's request. A client's path stays
    /// under the endpoint's: `.` and `..` segments, which a server would resolve upwards,
    /// are refused.
    pub fn uri(&self, path_and_query: &str) -> Result<Uri, PathError> {
        let path = path_and_query.split(['?', '#']).next().unwrap_or_default();
        if climbs(path) {
            return Err(PathError::DotSegment);
        }
        let mut full = String::with_capacity(self.base_path.len() + path_and_query.len());
        full.push_str(&self.base_path);
        full.push_str(path_and_query);
        let mut parts = axum::http::uri::Parts::default();
        parts.scheme = Some(self.scheme.clone());
        parts.authority = Some(self.authority.clone());
        parts.path_and_query =
            Some(PathAndQuery::try_from(full).map_err(|e| PathError::Invalid(e.to_string()))?);
        Uri::from_parts(parts).map_err(|e| PathError::Invalid(e.to_string()))
    }

    /// Whether `uri` is on the target's own origin: the only place its redirects are followed,
    /// since anywhere else would be handed the target credential.
    pub fn same_origin(&self, uri: &Uri) -> bool {
        uri.scheme() == Some(&self.scheme)
            && uri.host() == Some(self.authority.host())
            && port_of(uri) == port_of_parts(&self.scheme, &self.authority)
    }

    pub async fn send(
        &self,
        method: Method,
        uri: Uri,
        mut headers: HeaderMap,
        body: OutgoingBody,
    ) -> Result<Response<Incoming>, hyper_util::client::legacy::Error> {
        if let Some(host) = &self.plain_http_host {
            headers.insert(header::HOST, host.clone());
        }
        if let Some(auth) = &self.proxy_authorization {
            headers.insert(header::PROXY_AUTHORIZATION, auth.clone());
        }
        let mut request = Request::new(body);
        *request.method_mut() = method;
        *request.uri_mut() = uri;
        *request.headers_mut() = headers;
        self.client.request(request).await
    }
}

/// Whether a path has a `.` or `..` segment as any server or gateway in front of the target
/// might read it: percent-decoded up to three times (`%252e`), with `\` as `/`, and with a
/// segment's `;parameters` (Tomcat) dropped. A path still encoded after that is refused.
fn climbs(path: &str) -> bool {
    let mut decoded = std::borrow::Cow::Borrowed(path);
    for _ in 0..=3 {
        if has_dot_segment(&decoded) {
            return true;
        }
        if !decoded.contains('%') {
            return false;
        }
        let next = percent_encoding::percent_decode_str(&decoded)
            .decode_utf8_lossy()
            .into_owned();
        if next == decoded {
            return false;
        }
        decoded = std::borrow::Cow::Owned(next);
    }
    true
}

fn has_dot_segment(path: &str) -> bool {
    path.split(['/', '\\'])
        .map(|segment| segment.split(';').next().unwrap_or_default())
        .any(|segment| segment == "." || segment == "..")
}

/// Why a client's path cannot go to the target.
#[derive(Debug, thiserror::Error)]
pub enum PathError {
    #[error("the path has a `.` or `..` segment; paths stay under /v1")]
    DotSegment,
    #[error("the path cannot be sent on: {0}")]
    Invalid(String),
}

fn port_of(uri: &Uri) -> Option<u16> {
    match (uri.scheme(), uri.authority()) {
        (Some(scheme), Some(authority)) => port_of_parts(scheme, authority),
        _ => None,
    }
}

fn port_of_parts(scheme: &Scheme, authority: &Authority) -> Option<u16> {
    authority.port_u16().or(if *scheme == Scheme::HTTPS {
        Some(443)
    } else if *scheme == Scheme::HTTP {
        Some(80)
    } else {
        None
    })
}

/// A request body: in memory (replayable after a rejected token or a redirect) or streamed
/// from the client within its size limit.
pub enum OutgoingBody {
    Bytes(Full<Bytes>),
    Stream(Limited<axum::body::Body>),
}

impl From<Bytes> for OutgoingBody {
    fn from(bytes: Bytes) -> Self {
        Self::Bytes(Full::new(bytes))
    }
}

impl Body for OutgoingBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            Self::Bytes(full) => Pin::new(full)
                .poll_frame(cx)
                .map_err(|never| match never {}),
            Self::Stream(stream) => Pin::new(stream).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Bytes(full) => full.is_end_stream(),
            Self::Stream(stream) => stream.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Bytes(full) => full.size_hint(),
            Self::Stream(stream) => stream.size_hint(),
        }
    }
}

/// Where connections go, decided once from the proxy environment (HTTPS_PROXY, HTTP_PROXY,
/// ALL_PROXY, NO_PROXY, as curl reads them).
enum Route {
    Direct(HttpsConnector<HttpConnector>),
    /// An HTTPS target through a proxy: TLS with the target inside the proxy's CONNECT tunnel.
    Tunnel(HttpsConnector<Tunnel<HttpsConnector<HttpConnector>>>),
    /// A plain-HTTP target through a proxy: the connection is to the proxy, and requests carry
    /// the target's full URL.
    Forward {
        proxy: Uri,
        via: HttpsConnector<HttpConnector>,
    },
}

#[derive(Clone)]
pub struct Connector {
    route: Arc<Route>,
    /// For the whole connection: TCP, the proxy's tunnel and the TLS handshake.
    timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
#[error("connecting took longer than {0:?}")]
struct ConnectTimeout(Duration);

impl Service<Uri> for Connector {
    type Response = Conn;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Conn, BoxError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, target: Uri) -> Self::Future {
        let route = self.route.clone();
        let limit = self.timeout;
        Box::pin(async move {
            let connecting = async {
                Ok::<_, BoxError>(match &*route {
                    Route::Direct(direct) => Conn::new(direct.clone().call(target).await?, false),
                    Route::Tunnel(tunnel) => Conn::new(tunnel.clone().call(target).await?, false),
                    Route::Forward { proxy, via } => {
                        Conn::new(via.clone().call(proxy.clone()).await?, true)
                    }
                })
            };
            match tokio::time::timeout(limit, connecting).await {
                Err(_) => Err(ConnectTimeout(limit).into()),
                // hyper-util's own TCP timeout (the same limit, shared among a host's addresses)
                // says only "deadline has elapsed": the user gets the same words either way.
                Ok(Err(err)) if timed_out(&*err) => Err(ConnectTimeout(limit).into()),
                Ok(connected) => connected,
            }
        })
    }
}

fn timed_out(err: &(dyn std::error::Error + 'static)) -> bool {
    crate::error_chain::find::<std::io::Error>(err)
        .is_some_and(|e| e.kind() == std::io::ErrorKind::TimedOut)
}

trait Io: hyper::rt::Read + hyper::rt::Write + Connection + Send + Unpin + 'static {}
impl<T: hyper::rt::Read + hyper::rt::Write + Connection + Send + Unpin + 'static> Io for T {}

/// One connection of any route: what the pool needs to know is whether requests on it go to a
/// proxy (and so carry full URLs) and which protocol TLS agreed on.
pub struct Conn {
    io: Box<dyn Io>,
    proxied: bool,
}

impl Conn {
    fn new(io: impl Io, proxied: bool) -> Self {
        Self {
            io: Box::new(io),
            proxied,
        }
    }
}

impl Connection for Conn {
    fn connected(&self) -> Connected {
        self.io.connected().proxy(self.proxied)
    }
}

impl hyper::rt::Read for Conn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut *self.io).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for Conn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut *self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut *self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut *self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut *self.io).poll_shutdown(cx)
    }
}
