//! Serves one accepted connection: HTTP/1.1, or HTTP/2 when the client opens with the HTTP/2
//! preface (prior knowledge, as `curl --http2-prior-knowledge` does on plain HTTP).
//!
//! The protocol is told by peeking at the socket, not by reading: hyper-util's auto builder
//! reads and replays the first bytes, which doubled every HTTP/1 connection's read buffer
//! (BENCHMARKS.md), and it waited forever on a client that sends nothing.

use std::io;
use std::time::Duration;

use hyper::server::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::Watcher;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

/// The start of every HTTP/2 connection with prior knowledge (RFC 9113, section 3.4). Its
/// first three bytes already decide: no HTTP/1 client sends the method `PRI`.
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const DECIDING: usize = 3;

/// How connections are served; built once per server.
pub struct Protocols {
    http1: http1::Builder,
    http2: http2::Builder<TokioExecutor>,
    /// How long a client may take to send its first bytes (the headers' own limit starts
    /// after them, in hyper).
    first_bytes_timeout: Duration,
}

impl Protocols {
    /// `max_header_bytes` bounds a request's head in both protocols; `header_read_timeout`
    /// bounds how long a client may take to send it.
    pub fn new(max_header_bytes: usize, header_read_timeout: Duration) -> Self {
        let mut http1 = http1::Builder::new();
        http1
            .timer(TokioTimer::new())
            .header_read_timeout(header_read_timeout)
            .max_buf_size(max_header_bytes);
        let mut http2 = http2::Builder::new(TokioExecutor::new());
        http2
            .timer(TokioTimer::new())
            .max_header_list_size(u32::try_from(max_header_bytes).unwrap_or(u32::MAX));
        Self {
            http1,
            http2,
            first_bytes_timeout: header_read_timeout,
        }
    }

    /// Serves `stream` until it closes; `watcher` lets a graceful shutdown end it between
    /// requests, and `shutdown` ends it at once while it has not sent its first bytes (the
    /// watcher alone would hold the shutdown until they came or the limit passed).
    pub async fn serve<S>(
        &self,
        stream: TcpStream,
        service: S,
        watcher: Watcher,
        shutdown: &CancellationToken,
    ) where
        S: tower::Service<
                axum::http::Request<hyper::body::Incoming>,
                Response = axum::response::Response,
                Error = std::convert::Infallible,
            > + Clone
            + Send
            + 'static,
        S::Future: Send + 'static,
    {
        let first_bytes = tokio::time::timeout(self.first_bytes_timeout, sniff(&stream));
        let sniffed = tokio::select! {
            sniffed = first_bytes => sniffed,
            () = shutdown.cancelled() => return,
        };
        let http2 = match sniffed {
            Ok(Ok(http2)) => http2,
            // Closed before a byte, a reset, or nothing sent in time: nothing to answer.
            Ok(Err(err)) => {
                tracing::debug!(error = %err, "connection closed before its first request");
                return;
            }
            Err(_) => {
                tracing::debug!("connection sent nothing in time; closed");
                return;
            }
        };
        let io = TokioIo::new(stream);
        let service = TowerToHyperService::new(service);
        let result = if http2 {
            watcher
                .watch(self.http2.serve_connection(io, service))
                .await
        } else {
            watcher
                .watch(self.http1.serve_connection(io, service))
                .await
        };
        if let Err(err) = result {
            tracing::debug!(error = %err, "connection ended with an error");
        }
    }
}

/// Whether the client speaks HTTP/2 with prior knowledge, from its first bytes, left unread.
async fn sniff(stream: &TcpStream) -> io::Result<bool> {
    let mut first = [0u8; DECIDING];
    loop {
        let n = stream.peek(&mut first).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        if first[..n] != PREFACE[..n] {
            return Ok(false);
        }
        if n == DECIDING {
            return Ok(true);
        }
        // "P" or "PR" so far (a client writing byte by byte): `peek` would return the same
        // bytes at once, so wait a moment for the rest. Real clients send a whole line.
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpListener;

    /// Sniffs a connection whose client writes `pieces` one after another, the sniffing
    /// already waiting (so a partial preface is seen partial whenever the writes land).
    async fn sniffed(pieces: &[&'static [u8]]) -> io::Result<bool> {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let sniffing = tokio::spawn(async move {
            let result = sniff(&server).await;
            let mut left = [0u8; 64];
            let n = if result.is_ok() {
                server.peek(&mut left).await.unwrap()
            } else {
                0
            };
            (result, left[..n].to_vec())
        });
        for piece in pieces {
            client.write_all(piece).await.unwrap();
            client.flush().await.unwrap();
            tokio::task::yield_now().await;
        }
        if pieces.is_empty() {
            client.shutdown().await.unwrap();
        }
        let (result, left) = sniffing.await.unwrap();
        // Peeking leaves the bytes for the protocol to read.
        assert!(pieces.concat().starts_with(&left));
        assert!(result.is_err() || !left.is_empty());
        result
    }

    #[tokio::test]
    async fn tells_http1_from_http2_by_the_first_bytes() {
        assert!(!sniffed(&[b"GET /health HTTP/1.1\r\n"]).await.unwrap());
        assert!(
            !sniffed(&[b"POST /v1/chat/completions HTTP/1.1\r\n"])
                .await
                .unwrap()
        );
        assert!(sniffed(&[PREFACE]).await.unwrap());
        // Byte by byte: "P" and "PR" do not decide, "POST" and "PRI" do.
        assert!(!sniffed(&[b"P", b"O", b"ST / HTTP/1.1\r\n"]).await.unwrap());
        assert!(sniffed(&[b"P", b"R", &PREFACE[2..]]).await.unwrap());
        assert_eq!(
            sniffed(&[]).await.unwrap_err().kind(),
            io::ErrorKind::UnexpectedEof
        );
    }
}
