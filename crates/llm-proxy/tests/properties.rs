//! Property tests for the parsers that take outside input: the stream relay (whatever the
//! bytes and however the network splits them) and the configuration (whatever the user
//! types). No input may make them panic; valid input must come out intact.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "in tests a failure should panic"
)]

mod common;

use llm_proxy::formats::answer::Stamp;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use clap::Parser;
use common::*;
use futures_util::{StreamExt, stream};
use llm_proxy::cli::Args;
use llm_proxy::formats::chat_stream::{Assembled, assemble_stream};
use llm_proxy::formats::sse::Framing;
use llm_proxy::normalize::RequestContext;
use llm_proxy::normalize::stream::Transcoder;
use llm_proxy::notes::StreamConclusion;
use llm_proxy::upstream::Credential;
use llm_proxy::upstream::sse::{Conclusion, RelayOptions, relay};
use proptest::prelude::*;
use serde_json::Value;

fn run_relay(input: &[u8], cuts: &[usize], transcode: bool) -> Vec<u8> {
    run_relay_concluding(input, cuts, transcode).0
}

/// What the relay sends, and the answer it hands to the log (with the transcoder only).
fn run_relay_concluding(
    input: &[u8],
    cuts: &[usize],
    transcode: bool,
) -> (Vec<u8>, Option<Assembled>) {
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
    cuts.sort_unstable();
    let mut pieces = Vec::new();
    let mut from = 0;
    for cut in cuts.into_iter().chain(std::iter::once(input.len())) {
        pieces.push(Ok::<_, std::io::Error>(Bytes::copy_from_slice(
            &input[from..cut],
        )));
        from = cut;
    }
    let context = RequestContext {
        model: "m".into(),
        include_usage: false,
        answer_format: None,
        stamp: Stamp::now(),
    };
    let slot = StreamConclusion::default();
    let options = RelayOptions {
        idle_timeout: Duration::from_secs(5),
        host: "t".into(),
        framing: Framing::Sse,
        transcoder: transcode.then(|| Transcoder::new(Framing::Sse, &context)),
        note: None,
        conclusion: Some(Conclusion {
            slot: slot.clone(),
            credential: Arc::new(Credential::None),
        }),
        cut_off: Default::default(),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let out = runtime.block_on(async {
        let out: Vec<Bytes> = relay(stream::iter(pieces), options)
            .map(|r| r.unwrap())
            .collect()
            .await;
        out.concat()
    });
    (out, slot.take())
}

fn valid_events() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec("[a-zA-Z0-9 ]{0,12}", 0..12).prop_map(|texts| {
        let mut events: Vec<String> = texts
            .iter()
            .map(|t| {
                let chunk = serde_json::json!({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
                    "choices": [{"index": 0, "delta": {"content": t}, "finish_reason": null}]});
                format!("data: {chunk}\n\n")
            })
            .collect();
        events.push("data: [DONE]\n\n".to_owned());
        events
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// A valid OpenAI stream arrives exactly as sent, wherever the network cut it.
    #[test]
    fn valid_streams_pass_intact_at_any_cuts(events in valid_events(), cuts in prop::collection::vec(any::<usize>(), 0..8), transcode in any::<bool>()) {
        let input = events.concat();
        let (output, concluded) = run_relay_concluding(input.as_bytes(), &cuts, transcode);
        prop_assert_eq!(String::from_utf8(output).unwrap(), input.clone());
        if transcode {
            // The log's answer, from the transcoder's own reading, is the stream's text.
            prop_assert_eq!(concluded, Some(assemble_stream(input.as_bytes())));
        }
    }

    /// Arbitrary bytes never make the relay panic, and what it sends is whole events: each
    /// either relayed as it came or a final error event.
    #[test]
    fn arbitrary_bytes_never_break_the_relay(input in prop::collection::vec(any::<u8>(), 0..512), cuts in prop::collection::vec(any::<usize>(), 0..6)) {
        let output = run_relay(&input, &cuts, false);
        let text = String::from_utf8_lossy(&output);
        prop_assert!(output.is_empty() || output.ends_with(b"\n\n") || output.ends_with(b"\r\n\r\n") || output.ends_with(b"\r\r"));
        if let Some(last) = text.rsplit("data: ").next().filter(|l| l.contains("upstream_stream_error")) {
            let value: Value = serde_json::from_str(last.trim()).unwrap();
            assert_envelope(&value);
        }
        // With the transcoder every event sent is JSON (a chunk or an error) or [DONE], and the
        // answer the relay hands to the log is the one read back from what it sent.
        let (transcoded, concluded) = run_relay_concluding(&input, &cuts, true);
        prop_assert_eq!(concluded, Some(assemble_stream(&transcoded)));
        for data in sse_data(&String::from_utf8_lossy(&transcoded)) {
            prop_assert!(data == "[DONE]" || serde_json::from_str::<Value>(&data).is_ok(), "{}", data);
        }
    }

    /// Whatever a user puts in the variables, the configuration is built or refused with an
    /// error naming a variable; it never panics.
    #[test]
    fn configuration_never_panics(values in prop::collection::vec(".{0,24}", 12)) {
        let flags = [
            "--port", "--host", "--base-url", "--access-token", "--target-endpoint", "--target-api-key",
            "--oauth-token-endpoint", "--oauth-client-id", "--oauth-client-secret", "--cors-origins",
            "--allowed-hosts", "--max-request-body-mb",
        ];
        let mut argv = vec!["llm-proxy".to_owned()];
        for (flag, value) in flags.iter().zip(&values) {
            argv.push(format!("{flag}={value}"));
        }
        if let Ok(args) = Args::try_parse_from(&argv)
            && let Err(err) = args.into_config()
        {
            let message = err.to_string();
            prop_assert!(message.contains("PROXY_") || message.contains("TARGET_") || message.contains("OAUTH_"), "{}", message);
        }
    }
}
