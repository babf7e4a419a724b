//! Relays a target's stream to the client, event by event as it arrives.
//!
//! The relay finds event boundaries (a blank line for server-sent events, a newline for
//! NDJSON) so that a client never receives half an event. An OpenAI stream that needs no repair
//! passes as the target's own bytes; otherwise a [`Transcoder`] repairs or translates each
//! event. The relay watches for three ways a stream can go wrong: the connection breaks, the
//! target falls silent past the idle limit, or the stream ends before its answer is complete.
//! Each ends the stream with one last OpenAI error event, so a client sees an error instead of
//! a silently truncated answer.

use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt, stream};
use memchr::memmem;

use crate::formats::openai::ErrorBody;
use crate::formats::sse::Framing;
use crate::normalize::Changes;
use crate::normalize::stream::{Output, Transcoder};
use crate::notes::StreamConclusion;
use crate::upstream::Credential;

/// Where a stream stands; kept by the relay between chunks.
struct Relay<S> {
    upstream: S,
    /// Bytes of an event whose end has not arrived yet.
    pending: BytesMut,
    idle_timeout: Duration,
    framing: Framing,
    transcoder: Option<Transcoder>,
    /// Where the transcoder's record of changes goes when the stream is over (the call log).
    note: Option<Arc<OnceLock<Changes>>>,
    conclusion: Option<Conclusion>,
    done_seen: bool,
    finished: bool,
    host: String,
    cut_off: CancellationToken,
}

/// How to relay one stream.
pub struct RelayOptions {
    pub idle_timeout: Duration,
    pub host: String,
    pub framing: Framing,
    pub transcoder: Option<Transcoder>,
    pub note: Option<Arc<OnceLock<Changes>>>,
    /// Where the transcoder's assembled answer goes when the stream is over or dropped.
    pub conclusion: Option<Conclusion>,
    /// Ends the stream with an error event when cancelled (the server's shutdown grace is over).
    pub cut_off: CancellationToken,
}

/// Where a transcoded stream's answer goes, with the target credential to mask in it as it is
/// masked in what the client receives.
pub struct Conclusion {
    pub slot: StreamConclusion,
    pub credential: Arc<Credential>,
}

/// Wraps the target's byte stream. The returned stream never yields an error: failures become
/// a final `data: {"error":...}` event, since a 200 with a broken body is all a client could
/// otherwise see.
pub fn relay<S, E>(
    upstream: S,
    options: RelayOptions,
) -> impl Stream<Item = Result<Bytes, std::io::Error>>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin + Send,
    E: std::error::Error + 'static,
{
    let state = Relay {
        upstream,
        pending: BytesMut::new(),
        idle_timeout: options.idle_timeout,
        framing: options.framing,
        transcoder: options.transcoder,
        note: options.note,
        conclusion: options.conclusion,
        done_seen: false,
        finished: false,
        host: options.host,
        cut_off: options.cut_off,
    };
    stream::unfold(state, |mut relay| async move {
        loop {
            if relay.finished {
                return None;
            }
            let next = tokio::select! {
                next = tokio::time::timeout(relay.idle_timeout, relay.upstream.next()) => next,
                () = relay.cut_off.cancelled() => {
                    let message = "The proxy shut down before the stream was complete".to_owned();
                    return Some((Ok(relay.fail_with(message, "shutdown")), relay));
                }
            };
            match next {
                Ok(Some(Ok(chunk))) => {
                    if let Some(events) = relay.complete_events(chunk)
                        && let Some(out) = relay.transcode(events)
                    {
                        return Some((Ok(out), relay));
                    }
                }
                Ok(Some(Err(err))) => {
                    let message = format!(
                        "The stream from the target {} broke off: {}",
                        relay.host,
                        super::root_cause(&err)
                    );
                    return Some((Ok(relay.fail(message)), relay));
                }
                Ok(None) => {
                    if let Some(out) = relay.end() {
                        return Some((Ok(out), relay));
                    }
                    return None;
                }
                Err(_) => {
                    let message = format!(
                        "The target {} sent nothing for {} s inside a stream (STREAM_IDLE_TIMEOUT_SECONDS)",
                        relay.host,
                        relay.idle_timeout.as_secs_f64()
                    );
                    return Some((Ok(relay.fail(message)), relay));
                }
            }
        }
    })
}

impl<S> Relay<S> {
    /// Returns the complete events now available, or `None` when the chunk ended inside an
    /// event. The common case, a chunk holding whole events, passes without a copy.
    fn complete_events(&mut self, chunk: Bytes) -> Option<Bytes> {
        let ready = if self.pending.is_empty() && ends_with_boundary(&chunk, self.framing) {
            chunk
        } else {
            self.pending.extend_from_slice(&chunk);
            let end = last_boundary_end(&self.pending, self.framing)?;
            self.pending.split_to(end).freeze()
        };
        if self.transcoder.is_none() && !self.done_seen && memmem::find(&ready, b"[DONE]").is_some()
        {
            self.done_seen = true;
        }
        Some(ready)
    }

    /// The bytes to send for `events`: the same bytes when nothing needed changing, `None`
    /// when nothing is left to send.
    fn transcode(&mut self, events: Bytes) -> Option<Bytes> {
        let Some(transcoder) = self.transcoder.as_mut() else {
            return Some(events);
        };
        let mut rebuilt: Option<Vec<u8>> = None;
        let mut start = 0;
        for end in boundaries(&events, self.framing) {
            let event = &events[start..end];
            let output = transcoder.event(event);
            match (output, self.framing) {
                (Output::Unchanged, Framing::Sse) => {
                    if let Some(out) = rebuilt.as_mut() {
                        out.extend_from_slice(event);
                    }
                }
                (Output::Unchanged, Framing::Ndjson) => {
                    let out = rebuilt.get_or_insert_with(|| events[..start].to_vec());
                    out.extend_from_slice(b"data: ");
                    out.extend_from_slice(event.trim_ascii());
                    out.extend_from_slice(b"\n\n");
                }
                (Output::Replace(bytes), _) => {
                    let out = rebuilt.get_or_insert_with(|| events[..start].to_vec());
                    out.extend_from_slice(&bytes);
                }
            }
            start = end;
            if transcoder.terminated() {
                // Nothing may follow [DONE] or an error: stop reading from the target.
                self.finished = true;
                self.record();
                break;
            }
        }
        let out = match rebuilt {
            None => events,
            Some(bytes) => Bytes::from(bytes),
        };
        (!out.is_empty()).then_some(out)
    }

    /// The target closed the stream cleanly: close it for the client, or report that it
    /// ended before its answer was complete.
    fn end(&mut self) -> Option<Bytes> {
        self.finished = true;
        if self.transcoder.is_some() {
            let mut out = Vec::new();
            if self.framing == Framing::Ndjson && !self.only_whitespace_pending() {
                // A last line without its newline is still a whole line.
                let last = self.pending.split().freeze();
                if let Some(bytes) = self.transcode(last) {
                    out.extend_from_slice(&bytes);
                }
            }
            let closing = self.transcoder.as_mut().and_then(Transcoder::finish);
            return match closing {
                Some(bytes) => {
                    self.record();
                    out.extend_from_slice(&bytes);
                    (!out.is_empty()).then(|| Bytes::from(out))
                }
                None => {
                    let message = format!(
                        "The stream from the target {} ended before the answer was complete",
                        self.host
                    );
                    out.extend_from_slice(&self.fail(message));
                    Some(Bytes::from(out))
                }
            };
        }
        if self.done_seen {
            return None;
        }
        let message = if self.only_whitespace_pending() {
            format!(
                "The stream from the target {} ended without [DONE]",
                self.host
            )
        } else {
            format!(
                "The stream from the target {} ended in the middle of an event",
                self.host
            )
        };
        Some(self.fail(message))
    }

    fn record(&mut self) {
        if let (Some(note), Some(changes)) = (
            &self.note,
            self.transcoder.as_ref().and_then(Transcoder::changes),
        ) {
            let _ = note.set(changes);
        }
        self.conclude();
    }

    /// Hands the assembled answer over, once: at the end, or when the client went away.
    fn conclude(&mut self) {
        if let (Some(conclusion), Some(transcoder)) =
            (self.conclusion.take(), self.transcoder.as_mut())
        {
            let mut answer = transcoder.conclusion();
            answer.redact(|text| conclusion.credential.mask_str(text));
            conclusion.slot.put(answer);
        }
    }

    fn only_whitespace_pending(&self) -> bool {
        self.pending.iter().all(u8::is_ascii_whitespace)
    }

    /// The final event. A partial event the target left behind is dropped: half a JSON
    /// object would only make the client fail to parse.
    fn fail(&mut self, message: String) -> Bytes {
        tracing::warn!(%message, "stream from target failed");
        self.fail_with(message, "upstream_stream_error")
    }

    fn fail_with(&mut self, message: String, code: &str) -> Bytes {
        self.finished = true;
        self.pending.clear();
        if let Some(transcoder) = self.transcoder.as_mut() {
            transcoder.failed(&message);
        }
        self.record();
        ErrorBody::new(message, "server_error", None, Some(code)).to_sse_event()
    }
}

impl<S> Drop for Relay<S> {
    /// A stream dropped before its end (the client went away) still leaves what it sent.
    fn drop(&mut self) {
        self.conclude();
    }
}

fn separators(framing: Framing) -> &'static [&'static [u8]] {
    match framing {
        Framing::Sse => &[b"\n\n", b"\r\n\r\n", b"\r\r"],
        Framing::Ndjson => &[b"\n"],
    }
}

fn ends_with_boundary(bytes: &[u8], framing: Framing) -> bool {
    separators(framing).iter().any(|sep| bytes.ends_with(sep))
}

/// End of the last complete event: just past the last blank line (or newline, for NDJSON),
/// whichever line endings the target uses (SSE allows `\n`, `\r\n` and `\r`).
fn last_boundary_end(bytes: &[u8], framing: Framing) -> Option<usize> {
    separators(framing)
        .iter()
        .filter_map(|sep| memmem::rfind(bytes, sep).map(|at| at + sep.len()))
        .max()
}

/// The end of each event in `bytes` (which ends on a boundary), boundary included.
fn boundaries(bytes: &[u8], framing: Framing) -> impl Iterator<Item = usize> + '_ {
    let mut from = 0;
    std::iter::from_fn(move || {
        if from >= bytes.len() {
            return None;
        }
        let end = next_boundary_end(&bytes[from..], framing).map_or(bytes.len(), |e| from + e);
        from = end;
        Some(end)
    })
}

/// Just past the first boundary in `bytes`. One pass over the line endings: this runs for
/// every event of every stream, where searching for each separator in turn showed in profiles.
fn next_boundary_end(bytes: &[u8], framing: Framing) -> Option<usize> {
    let mut from = 0;
    while let Some(at) = memchr::memchr2(b'\n', b'\r', &bytes[from..]).map(|at| from + at) {
        // The earliest separator to start also ends first: none is a prefix of another.
        if let Some(sep) = separators(framing)
            .iter()
            .find(|sep| bytes[at..].starts_with(sep))
        {
            return Some(at + sep.len());
        }
        from = at + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::chat_stream::{Assembled, assemble_stream};

    fn options(idle_timeout: Duration) -> RelayOptions {
        RelayOptions {
            idle_timeout,
            host: "target.test".into(),
            framing: Framing::Sse,
            transcoder: None,
            note: None,
            conclusion: None,
            cut_off: Default::default(),
        }
    }

    async fn run(chunks: Vec<Result<&'static str, &'static str>>) -> Vec<String> {
        let upstream = stream::iter(chunks.into_iter().map(|c| {
            c.map(|s| Bytes::from_static(s.as_bytes()))
                .map_err(std::io::Error::other)
        }));
        relay(upstream, options(Duration::from_secs(5)))
            .map(|r| String::from_utf8(r.unwrap().to_vec()).unwrap())
            .collect()
            .await
    }

    #[tokio::test]
    async fn whole_events_pass_unchanged() {
        let out = run(vec![Ok("data: {\"a\":1}\n\n"), Ok("data: [DONE]\n\n")]).await;
        assert_eq!(out, vec!["data: {\"a\":1}\n\n", "data: [DONE]\n\n"]);
    }

    #[tokio::test]
    async fn split_events_are_joined_at_boundaries() {
        let out = run(vec![
            Ok("data: {\"a\""),
            Ok(":1}\n\ndata: {\"b"),
            Ok("\":2}\n\ndata: [DO"),
            Ok("NE]\n\n"),
        ])
        .await;
        assert_eq!(
            out.concat(),
            "data: {\"a\":1}\n\ndata: {\"b\":2}\n\ndata: [DONE]\n\n"
        );
        assert_eq!(out[0], "data: {\"a\":1}\n\n");
    }

    #[tokio::test]
    async fn crlf_events_are_recognised() {
        let out = run(vec![Ok("data: {}\r\n\r\ndata: [DONE]\r\n\r\n")]).await;
        assert_eq!(out, vec!["data: {}\r\n\r\ndata: [DONE]\r\n\r\n"]);
    }

    #[tokio::test]
    async fn a_broken_connection_ends_with_an_error_event_and_no_half_event() {
        let out = run(vec![
            Ok("data: {\"a\":1}\n\ndata: {\"par"),
            Err("connection reset"),
        ])
        .await;
        assert_eq!(out[0], "data: {\"a\":1}\n\n");
        assert_eq!(out.len(), 2);
        let last: serde_json::Value =
            serde_json::from_str(out[1].trim().strip_prefix("data: ").unwrap()).unwrap();
        assert_eq!(last["error"]["code"], "upstream_stream_error");
        assert!(
            last["error"]["message"]
                .as_str()
                .unwrap()
                .contains("connection reset")
        );
    }

    /// The answer the relay hands to the log (read from what the transcoder read and wrote)
    /// and the answer read back from the bytes the client received.
    async fn conclusion_and_reading(
        framing: Framing,
        pieces: Vec<&'static [u8]>,
    ) -> (Assembled, Assembled) {
        let slot = StreamConclusion::default();
        let context = crate::normalize::RequestContext {
            model: "asked-model".into(),
            include_usage: true,
            answer_format: None,
            stamp: crate::formats::answer::Stamp::now(),
        };
        let mut options = options(Duration::from_secs(5));
        options.framing = framing;
        options.transcoder = Some(Transcoder::new(framing, &context));
        options.conclusion = Some(Conclusion {
            slot: slot.clone(),
            credential: Arc::new(Credential::None),
        });
        let upstream = stream::iter(
            pieces
                .into_iter()
                .map(|p| Ok::<_, std::io::Error>(Bytes::from_static(p))),
        );
        let out: Vec<Bytes> = relay(Box::pin(upstream), options)
            .map(|r| r.unwrap())
            .collect()
            .await;
        let concluded = slot.take().expect("the relay hands over its answer");
        (concluded, assemble_stream(&out.concat()))
    }

    #[tokio::test]
    async fn the_relays_answer_for_the_log_is_what_the_client_received() {
        let fixture = |name: &str| -> &'static [u8] {
            let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
            Box::leak(std::fs::read(path).unwrap().into_boxed_slice())
        };
        let recorded = fixture("openai/chat-completion-stream.sse");
        let cases: Vec<(&str, Framing, Vec<&'static [u8]>)> = vec![
            ("plain OpenAI", Framing::Sse, vec![recorded]),
            ("plain OpenAI, cut short", Framing::Sse, vec![&recorded[..recorded.len() / 2]]),
            ("OpenAI with gaps", Framing::Sse, vec![fixture("formats/openai-no-done.sse")]),
            ("Azure", Framing::Sse, vec![fixture("formats/azure.sse")]),
            ("llama.cpp", Framing::Sse, vec![fixture("formats/llamacpp.sse")]),
            ("Anthropic", Framing::Sse, vec![fixture("formats/anthropic.sse")]),
            ("Anthropic tools", Framing::Sse, vec![fixture("anthropic/tool-use-stream.sse")]),
            ("Anthropic error", Framing::Sse, vec![fixture("formats/anthropic-error.sse")]),
            ("Gemini", Framing::Sse, vec![fixture("formats/gemini.sse")]),
            ("Cohere", Framing::Sse, vec![fixture("formats/cohere-v2.sse")]),
            ("TGI", Framing::Sse, vec![fixture("formats/tgi.sse")]),
            ("Ollama", Framing::Ndjson, vec![fixture("formats/ollama.ndjson")]),
            (
                "tool calls and an error event",
                Framing::Sse,
                vec![
                    b"data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"tool_calls\":[{\"index\":0,\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}]},\"finish_reason\":null}]}\n\n",
                    b"data: {\"error\":{\"message\":\"overloaded\",\"type\":\"server_error\",\"param\":null,\"code\":null}}\n\n",
                ],
            ),
        ];
        for (name, framing, pieces) in cases {
            let (concluded, read) = conclusion_and_reading(framing, pieces).await;
            assert!(concluded.chunks > 0, "{name}: nothing assembled");
            assert_eq!(concluded, read, "{name}");
        }
    }

    #[tokio::test]
    async fn a_clean_end_without_done_is_reported() {
        let out = run(vec![Ok("data: {\"a\":1}\n\n")]).await;
        assert_eq!(out.len(), 2);
        assert!(out[1].contains("without [DONE]"));
    }

    #[tokio::test]
    async fn silence_past_the_idle_limit_ends_the_stream() {
        let upstream = stream::iter(vec![Ok::<_, std::io::Error>(Bytes::from_static(
            b"data: {}\n\n",
        ))])
        .chain(stream::pending());
        // Real time: a short limit keeps tokio's test clock (and a second build) out of the tree.
        let out: Vec<Bytes> = relay(Box::pin(upstream), options(Duration::from_millis(50)))
            .map(|r| r.unwrap())
            .collect()
            .await;
        assert_eq!(out.len(), 2);
        assert!(String::from_utf8_lossy(&out[1]).contains("STREAM_IDLE_TIMEOUT_SECONDS"));
    }
}
