//! OpenAI's shapes that every layer speaks: the error envelope.

use serde::Serialize;

/// OpenAI's error body. `param` and `code` serialize as `null` when absent: clients index them.
#[derive(Debug, Serialize)]
pub struct ErrorBody<'a> {
    error: ErrorDetails<'a>,
}

#[derive(Debug, Serialize)]
struct ErrorDetails<'a> {
    message: String,
    #[serde(rename = "type")]
    kind: &'a str,
    param: Option<&'a str>,
    code: Option<&'a str>,
}

impl<'a> ErrorBody<'a> {
    pub fn new(
        message: String,
        kind: &'a str,
        param: Option<&'a str>,
        code: Option<&'a str>,
    ) -> Self {
        Self {
            error: ErrorDetails {
                message,
                kind,
                param,
                code,
            },
        }
    }

    pub fn message(&self) -> &str {
        &self.error.message
    }

    pub fn to_json(&self) -> Vec<u8> {
        // Serializing strings and options into a Vec cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// `data: {"error":{...}}` and the blank line that ends an event: how a stream that has
    /// already started reports a failure.
    pub fn to_sse_event(&self) -> bytes::Bytes {
        let json = self.to_json();
        let mut out = Vec::with_capacity(json.len() + 8);
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(&json);
        out.extend_from_slice(b"\n\n");
        bytes::Bytes::from(out)
    }
}
