//! Compact copies of what a call's record needs, kept on the request path while a response
//! streams.
//!
//! A stream lasts seconds to minutes and coding agents hold thousands at once, so what its
//! record keeps meanwhile is multiplied. Two things dominated (massif, thousands of slow
//! streams with the log on): the request's headers, whose values are slices of the
//! connection's 8 KB read buffer and so kept all of it, and the events, copied one allocation
//! each. Here the headers are copied into one small buffer, and each event is kept as what
//! differs from the one before it: consecutive chunks of a stream repeat their id, model and
//! structure and differ in a few bytes of content, so a stream keeps a few bytes per event
//! instead of a few hundred. The writer decodes them when the stream is over.

use axum::http::HeaderMap;

/// A request's headers as `name:value\n` lines in one buffer. Unambiguous: a header name has
/// no `:`, and a value has no line break (hyper refuses them).
#[derive(Debug, Default)]
pub struct HeaderCopy(Box<[u8]>);

impl HeaderCopy {
    pub fn of(headers: &HeaderMap) -> Self {
        let size = headers
            .iter()
            .map(|(name, value)| name.as_str().len() + value.len() + 2)
            .sum();
        let mut buffer = Vec::with_capacity(size);
        // `iter` yields a repeated header's values one after another, which the record's
        // joining of them relies on.
        for (name, value) in headers {
            buffer.extend_from_slice(name.as_str().as_bytes());
            buffer.push(b':');
            buffer.extend_from_slice(value.as_bytes());
            buffer.push(b'\n');
        }
        Self(buffer.into_boxed_slice())
    }

    /// The `name:value\n` lines.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Name and value of each header, in the order received, repeated names adjacent.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.0
            .split(|&b| b == b'\n')
            .filter(|line| !line.is_empty())
            .filter_map(|line| {
                let colon = line.iter().position(|&b| b == b':')?;
                let name = std::str::from_utf8(&line[..colon]).ok()?;
                Some((name, &line[colon + 1..]))
            })
    }

    /// The first value of `name` (lowercase, as header names are stored).
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }
}

/// The pieces of a response body, each stored as the length of the start and of the end it
/// shares with the piece before, and the bytes in between.
#[derive(Debug, Default)]
pub struct EventCopy {
    encoded: Vec<u8>,
    /// The last piece, to compare the next with.
    previous: Vec<u8>,
}

impl EventCopy {
    pub fn held_bytes(&self) -> usize {
        self.encoded.capacity() + self.previous.capacity()
    }

    pub fn push(&mut self, piece: &[u8]) {
        let shared_start = common_len(self.previous.iter(), piece.iter());
        let shared_end = common_len(
            self.previous[shared_start..].iter().rev(),
            piece[shared_start..].iter().rev(),
        );
        let middle = &piece[shared_start..piece.len() - shared_end];
        put_len(&mut self.encoded, shared_start);
        put_len(&mut self.encoded, shared_end);
        put_len(&mut self.encoded, middle.len());
        self.encoded.extend_from_slice(middle);
        self.previous.clear();
        self.previous.extend_from_slice(piece);
    }

    /// Every piece pushed, one after another.
    pub fn decode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        // Where the piece before lies in `out`: each piece is rebuilt from it.
        let mut previous = 0..0;
        let mut rest = self.encoded.as_slice();
        while let (Some(start), Some(end), Some(middle)) = (
            take_len(&mut rest),
            take_len(&mut rest),
            take_len(&mut rest),
        ) {
            let Some(bytes) = rest.get(..middle) else {
                break;
            };
            if start + end > previous.len() {
                break;
            }
            let piece_start = out.len();
            out.extend_from_within(previous.start..previous.start + start);
            out.extend_from_slice(bytes);
            out.extend_from_within(previous.end - end..previous.end);
            rest = &rest[middle..];
            previous = piece_start..out.len();
        }
        out
    }
}

fn common_len<'a>(a: impl Iterator<Item = &'a u8>, b: impl Iterator<Item = &'a u8>) -> usize {
    a.zip(b).take_while(|(x, y)| x == y).count()
}

/// LEB128: seven bits a byte, the high bit set on all but the last.
fn put_len(out: &mut Vec<u8>, mut len: usize) {
    while len >= 0x80 {
        out.push((len as u8) | 0x80);
        len >>= 7;
    }
    out.push(len as u8);
}

fn take_len(rest: &mut &[u8]) -> Option<usize> {
    let mut len = 0usize;
    for (i, &byte) in rest.iter().enumerate().take(10) {
        len |= usize::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            *rest = &rest[i + 1..];
            return Some(len);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use proptest::prelude::*;

    const RECORDED: &str = include_str!("../../tests/fixtures/openai/chat-completion-stream.sse");

    fn copied(pieces: &[&[u8]]) -> EventCopy {
        let mut events = EventCopy::default();
        for piece in pieces {
            events.push(piece);
        }
        events
    }

    #[test]
    fn a_recorded_stream_comes_back_whole_in_a_fraction_of_its_size() {
        let events: Vec<String> = RECORDED
            .split_inclusive("\n\n")
            .map(str::to_owned)
            .collect();
        assert!(events.len() > 10);
        let pieces: Vec<&[u8]> = events.iter().map(|e| e.as_bytes()).collect();
        let copy = copied(&pieces);
        assert_eq!(copy.decode(), RECORDED.as_bytes());
        assert!(
            copy.encoded.len() * 4 < RECORDED.len(),
            "{} of {} bytes",
            copy.encoded.len(),
            RECORDED.len()
        );
    }

    #[test]
    fn pieces_that_share_nothing_or_everything_come_back_whole() {
        let pieces: [&[u8]; 7] = [b"", b"abc", b"abc", b"", b"xyz", b"xaz", b"x"];
        assert_eq!(copied(&pieces).decode(), pieces.concat());
        // Shared start and end that would overlap in the shorter piece.
        let pieces: [&[u8]; 3] = [b"aaaa", b"aa", b"aaaaaa"];
        assert_eq!(copied(&pieces).decode(), pieces.concat());
        // A piece longer than one LEB128 byte can count.
        let long = vec![b'q'; 70_000];
        let pieces: [&[u8]; 3] = [&long, b"q", &long];
        assert_eq!(copied(&pieces).decode(), pieces.concat());
    }

    proptest! {
        #[test]
        fn any_pieces_come_back_whole(pieces in prop::collection::vec(
            prop::collection::vec(prop::sample::select(b"ab\n{}".to_vec()), 0..40), 0..30)
        ) {
            let slices: Vec<&[u8]> = pieces.iter().map(Vec::as_slice).collect();
            prop_assert_eq!(copied(&slices).decode(), pieces.concat());
        }
    }

    #[test]
    fn headers_keep_their_order_values_and_repeats() {
        let mut headers = HeaderMap::new();
        headers.insert("user-agent", HeaderValue::from_static("OpenAI/Python 1.0"));
        headers.append("x-tag", HeaderValue::from_static("a"));
        headers.insert("authorization", HeaderValue::from_static("Bearer s:e:c"));
        headers.append("x-tag", HeaderValue::from_static("b"));
        headers.insert("x-empty", HeaderValue::from_static(""));
        headers.insert("x-latin", HeaderValue::from_bytes(b"caf\xe9").unwrap());
        let copy = HeaderCopy::of(&headers);
        let seen: Vec<(&str, &[u8])> = copy.iter().collect();
        assert_eq!(
            seen,
            [
                ("user-agent", &b"OpenAI/Python 1.0"[..]),
                ("x-tag", b"a"),
                ("x-tag", b"b"),
                ("authorization", b"Bearer s:e:c"),
                ("x-empty", b""),
                ("x-latin", b"caf\xe9"),
            ]
        );
        assert_eq!(copy.get("x-tag"), Some(&b"a"[..]));
        assert_eq!(copy.get("host"), None);
    }
}
