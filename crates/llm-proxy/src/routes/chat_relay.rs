//! A chat stream relayed to a client in its own API: the target's (or the placeholder's) chat
//! stream read event by event, across any split of its bytes, and handed to a
//! [`ChatStreamWriter`] that writes the client's events.

use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use futures_util::{StreamExt, stream};
use serde_json::Value;

use crate::formats::chat_stream::{self, ChatStreamWriter};

/// `body`'s chat stream as `writer`'s events. With `keep_alive`, the writer is asked for a
/// keep-alive whenever the target is silent that long.
pub fn event_stream<W: ChatStreamWriter + Send + 'static>(
    body: Body,
    writer: W,
    keep_alive: Option<Duration>,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send {
    let state = Some((
        body.into_data_stream(),
        Converter {
            writer,
            buffer: Vec::new(),
        },
    ));
    stream::unfold(state, move |state| async move {
        let (mut data, mut converter) = state?;
        // Timed from the last bytes the client got: a target's own comments or empty deltas,
        // which make no events, must not hold the keep-alives back.
        let deadline = keep_alive.map(|interval| tokio::time::Instant::now() + interval);
        loop {
            let next = match deadline {
                Some(deadline) => match tokio::time::timeout_at(deadline, data.next()).await {
                    Ok(next) => next,
                    Err(_) => {
                        let mut out = Vec::new();
                        converter.writer.keep_alive(&mut out);
                        return Some((Ok(Bytes::from(out)), Some((data, converter))));
                    }
                },
                None => data.next().await,
            };
            match next {
                Some(Ok(bytes)) => {
                    let out = converter.feed(&bytes);
                    if !out.is_empty() {
                        return Some((Ok(Bytes::from(out)), Some((data, converter))));
                    }
                }
                Some(Err(error)) => {
                    let mut out = Vec::new();
                    converter.writer.error(&error.to_string(), &mut out);
                    return Some((Ok(Bytes::from(out)), None));
                }
                None => return Some((Ok(Bytes::from(converter.end())), None)),
            }
        }
    })
}

struct Converter<W> {
    writer: W,
    buffer: Vec<u8>,
}

impl<W: ChatStreamWriter> Converter<W> {
    /// The events complete in what has arrived, written.
    fn feed(&mut self, bytes: &[u8]) -> Vec<u8> {
        // The common case, nothing held over from the last piece: this one is read in place.
        let held = std::mem::take(&mut self.buffer);
        let data = if held.is_empty() {
            std::borrow::Cow::Borrowed(bytes)
        } else {
            let mut held = held;
            held.extend_from_slice(bytes);
            std::borrow::Cow::Owned(held)
        };
        let mut out = Vec::with_capacity(2 * data.len());
        let mut rest = &data[..];
        while let Some((end, next)) = boundary(rest) {
            self.event(&rest[..end], &mut out);
            rest = &rest[next..];
        }
        self.buffer = rest.to_vec();
        out
    }

    /// The chat stream's end: what is left, then the Messages stream's own end.
    fn end(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        let rest = std::mem::take(&mut self.buffer);
        self.event(&rest, &mut out);
        self.writer.finish(&mut out);
        out
    }

    fn event(&mut self, event: &[u8], out: &mut Vec<u8>) {
        // The common event, one `data:` line of a plain chunk, is read without copies.
        if let Some(data) = event
            .strip_prefix(b"data: ")
            .filter(|data| !data.contains(&b'\n'))
            .and_then(|data| std::str::from_utf8(data).ok())
            && let Some(plain) = chat_stream::plain_event(data)
            && self.writer.plain(&plain, out)
        {
            return;
        }
        let text = String::from_utf8_lossy(event);
        let data: Vec<&str> = text
            .lines()
            .filter_map(|line| line.strip_prefix("data:"))
            .map(|d| d.strip_prefix(' ').unwrap_or(d))
            .collect();
        if data.is_empty() {
            return;
        }
        let data = data.join("\n");
        if data.trim() == "[DONE]" {
            self.writer.finish(out);
        } else if let Ok(chunk) = serde_json::from_str::<Value>(&data) {
            self.writer.chunk(&chunk, out);
        }
    }
}

/// The end of the first event in `buffer` and where the next begins: a blank line, in any of
/// the line endings SSE allows.
fn boundary(buffer: &[u8]) -> Option<(usize, usize)> {
    memchr::memchr2_iter(b'\n', b'\r', buffer).find_map(|at| {
        let after = &buffer[at..];
        [&b"\r\n\r\n"[..], b"\n\n", b"\r\r"]
            .iter()
            .find(|separator| after.starts_with(separator))
            .map(|separator| (at, at + separator.len()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_found_at_any_line_ending() {
        assert_eq!(boundary(b"data: a\n\ndata: b"), Some((7, 9)));
        assert_eq!(boundary(b"data: a\r\n\r\ndata: b"), Some((7, 11)));
        assert_eq!(boundary(b"data: a\r\rx"), Some((7, 9)));
        assert_eq!(boundary(b"data: a\n"), None);
    }
}
