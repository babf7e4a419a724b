//! What handlers note on their responses (as extensions) for the request recorder: what they
//! learnt of the request, and what forwarding learnt of the answer on its way.

use std::time::Duration;

use bytes::Bytes;

use crate::formats::chat_stream::Assembled;
use crate::formats::usage::Usage;
use crate::normalize::Changes;

/// Set by a handler on its response: what it learnt of the request.
#[derive(Debug, Clone)]
pub struct CallNotes {
    /// `None` when the body had no usable `model`.
    pub model: Option<String>,
    pub stream: bool,
    pub request_body: Bytes,
    /// Set when the request was written in the target's API.
    pub translation: Option<RequestTranslation>,
}

/// A request written in another API for the target (`TARGET_API`), and the hints it could
/// not carry, for the log.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RequestTranslation {
    /// The API the request was written in, when not the client's.
    #[serde(rename = "translatedTo", skip_serializing_if = "Option::is_none")]
    pub api: Option<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dropped: Vec<String>,
    /// The model sent, when `MODEL_ALIASES` changed the client's.
    #[serde(rename = "sentModel", skip_serializing_if = "Option::is_none")]
    pub sent_model: Option<String>,
    /// What writing the answer back in the client's API could not carry as it was.
    #[serde(rename = "answerNotes", skip_serializing_if = "Vec::is_empty")]
    pub answer_notes: Vec<String>,
}

/// Set by the forwarding code on its response: how long the target took to answer.
#[derive(Debug, Clone, Copy)]
pub struct UpstreamTime(pub Duration);

/// Set by the forwarding code: what normalization changed. Filled when known, which for a
/// stream is only at its end, hence the shared cell.
#[derive(Debug, Clone)]
pub struct NormalizationNote(pub std::sync::Arc<std::sync::OnceLock<Changes>>);

/// Set by the forwarding code when normalization read the response's token usage on its way
/// (the fast path), so the record is made without parsing the body again.
#[derive(Debug, Clone, Copy)]
pub struct KnownUsage(pub Usage);

/// Set by the forwarding code on a transcoded stream: the answer the client was sent, put in
/// by the relay at the stream's end (or when the client went away), so the log need not parse
/// the events again.
#[derive(Debug, Clone, Default)]
pub struct StreamConclusion(std::sync::Arc<std::sync::Mutex<Option<Assembled>>>);

impl StreamConclusion {
    pub fn put(&self, answer: Assembled) {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(answer);
    }

    pub fn take(&self) -> Option<Assembled> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
    }
}
