//! The report: the conditions of the run, the markdown of BENCHMARKS.md (its hand-written notes
//! kept) and the raw figures in bench-results.json.

use std::path::Path;

use anyhow::Result;
use serde_json::{Value, json};

/// Where the hand-written reading of the figures starts in BENCHMARKS.md.
pub const NOTES_HEADING: &str = "## Reading these figures";

/// Writes bench-results.json and BENCHMARKS.md, keeping the notes under [`NOTES_HEADING`];
/// returns the generated part.
pub fn write(out: &Path, results: &Value) -> Result<String> {
    std::fs::write(
        out.join("bench-results.json"),
        serde_json::to_string_pretty(results)?,
    )?;
    let table = markdown(results);
    // The notes a person wrote under the figures stay.
    let path = out.join("BENCHMARKS.md");
    let notes = std::fs::read_to_string(&path)
        .ok()
        .and_then(|old| old.find(NOTES_HEADING).map(|at| old[at..].to_owned()))
        .unwrap_or_default();
    std::fs::write(&path, format!("{table}\n{notes}"))?;
    Ok(table)
}

/// Writes soak-results.json.
pub fn write_soak(out: &Path, result: &Value) -> Result<()> {
    std::fs::write(
        out.join("soak-results.json"),
        serde_json::to_string_pretty(result)?,
    )?;
    Ok(())
}

/// The parts measured side by side (masking, translation, `--baseline`) as markdown, for
/// `--only`.
pub fn comparisons(results: &Value) -> String {
    let mut out = String::new();
    if !results["masking"].is_null() {
        out.push_str(&masking_paragraph(&results["masking"]));
    }
    if !results["translation"].is_null() {
        out.push_str(&translation_paragraph(&results["translation"]));
    }
    for api in &SERVED_APIS {
        if !results[api.key].is_null() {
            out.push_str(&served_paragraph(api, &results[api.key]));
        }
    }
    if !results["baseline"].is_null() {
        out.push_str(&baseline_section(&results["baseline"]));
    }
    out
}

/// The machine and build the figures were measured on.
pub fn conditions() -> Result<Value> {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, m)| m.trim().to_owned())
        .unwrap_or_default();
    let rustc = std::process::Command::new("rustc")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    Ok(json!({
        "cores": std::thread::available_parallelism().map(usize::from).unwrap_or(0),
        "cpu": cpu,
        "load_average": load.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
        "rustc": rustc,
        "proxy_version": env!("CARGO_PKG_VERSION"),
        "date": chrono_free_date(),
    }))
}

/// Today's date from `date`, without a date crate for one line.
fn chrono_free_date() -> String {
    std::process::Command::new("date")
        .arg("-u")
        .arg("+%Y-%m-%d %H:%M UTC")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

/// The generated part of BENCHMARKS.md: everything above [`NOTES_HEADING`].
pub fn markdown(results: &Value) -> String {
    let c = &results["conditions"];
    let mut out = String::from("# Benchmarks\n\n");
    out.push_str(&format!(
        "Measured {} on {} cores ({}), load average {}, {}, proxy {}.{}\n\n",
        c["date"].as_str().unwrap_or_default(),
        c["cores"],
        c["cpu"].as_str().unwrap_or_default(),
        c["load_average"].as_str().unwrap_or_default(),
        c["rustc"].as_str().unwrap_or_default(),
        c["proxy_version"].as_str().unwrap_or_default(),
        if results["smoke"] == true {
            " **Smoke run: figures are not meaningful.**"
        } else {
            ""
        },
    ));
    out.push_str("Client, proxy and mock target share the machine. Reproduce: `cargo build --release -p llm-proxy -p llm-proxy-bench && target/release/bench`.\n\n");
    out.push_str("| Measure | request log on | request log off |\n| --- | --- | --- |\n");
    let runs = results["runs"].as_array().cloned().unwrap_or_default();
    let row = |label: &str, get: &dyn Fn(&Value) -> String| {
        let cells: Vec<String> = runs.iter().map(get).collect();
        format!("| {label} | {} |\n", cells.join(" | "))
    };
    out.push_str(&row("Added latency p50, c=1 (us)", &|r| {
        r["latency"]["added_p50_us"].to_string()
    }));
    out.push_str(&row("Added latency p99, c=1 (us)", &|r| {
        r["latency"]["added_p99_us"].to_string()
    }));
    out.push_str(&row("Direct p50 / proxy p50 (us)", &|r| {
        format!(
            "{} / {}",
            r["latency"]["direct_p50_us"], r["latency"]["proxy_p50_us"]
        )
    }));
    out.push_str(&row("Proxy CPU per 1,000 requests, c=1 / c=64 (s)", &|r| {
        format!(
            "{} / {}",
            r["latency"]["cpu_s_per_1000"], r["throughput"]["cpu_s_per_1000"]
        )
    }));
    out.push_str(&row("Throughput c=64, proxy / direct", &|r| {
        format!(
            "{} ({} / {} req/s, {} errors)",
            r["throughput"]["ratio"],
            r["throughput"]["proxy_rps"],
            r["throughput"]["direct_rps"],
            r["throughput"]["proxy_errors"]
        )
    }));
    out.push_str(&row("Idle RSS / peak RSS (MB)", &|r| {
        format!("{} / {}", r["idle_rss_mb"], r["peak_rss_mb"])
    }));
    out.push_str(&row("Start to first /v1/models (ms)", &|r| {
        r["start_to_first_models_ms"].to_string()
    }));
    out.push_str(&row(
        "Stream c=1: added TTFB / added chunk gap (us)",
        &|r| {
            format!(
                "{} / {}",
                r["streaming_c1"]["added_ttfb_us"], r["streaming_c1"]["added_gap_us"]
            )
        },
    ));
    out.push_str(&row(
        "Stream c=64: added TTFB / added chunk gap (us)",
        &|r| {
            format!(
                "{} / {}",
                r["streaming_c64"]["added_ttfb_us"], r["streaming_c64"]["added_gap_us"]
            )
        },
    ));
    out.push_str(&row(
        "Slow streams, 100 chunks 50 ms apart, HTTPS + HTTP/2 to the target (completed / failed / stalled, peak RSS)",
        &|r| {
            let s = &r["slow_streams"];
            if s.is_null() {
                "–".into()
            } else {
                format!(
                    "{} of {} / {} / {}, {} open at once, mean gap {} ms, {} MB (direct: {} / {} / {}, {} open at once, mean gap {} ms)",
                    s["completed"],
                    s["streams"],
                    s["failed"],
                    s["stalled"],
                    s["peak_open"],
                    s["mean_gap_ms"],
                    (s["peak_rss_kb"].as_f64().unwrap_or(0.0) / 1024.0).round(),
                    s["direct"]["completed"],
                    s["direct"]["failed"],
                    s["direct"]["stalled"],
                    s["direct"]["peak_open"],
                    s["direct"]["mean_gap_ms"],
                )
            }
        },
    ));
    let floor = &results["slow_streams_floor"];
    if !floor.is_null() {
        out.push_str(&format!(
            "\nThe floor under the slow streams' memory: the same {} streams straight to a bare axum server (the mock, \
             `axum::serve`) over HTTP/1, a connection each: {} of {} completed, {} failed, {} stalled, peak RSS {} MB \
             (idle {} MB).\n",
            floor["streams"],
            floor["completed"],
            floor["streams"],
            floor["failed"],
            floor["stalled"],
            (floor["peak_rss_kb"].as_f64().unwrap_or(0.0) / 1024.0).round(),
            (floor["idle_rss_kb"].as_f64().unwrap_or(0.0) / 1024.0).round(),
        ));
    }
    let full = &results["full_log_start"];
    if !full.is_null() {
        out.push_str(&format!(
            "\nA full request log: after {} calls with a 50 KB prompt each (16 at a time) the proxy holds {} MB, \
             {} MB after 12 s idle; restarted on them ({} MB stored), {} ms to the first /v1/models, peak RSS {} MB.\n",
            full["calls"],
            full["rss_after_calls_mb"],
            full["rss_idle_12s_later_mb"],
            full["log_mb"],
            full["start_to_first_models_ms"],
            full["peak_rss_mb"],
        ));
    }
    let masking = &results["masking"];
    if !masking.is_null() {
        out.push_str(&masking_paragraph(masking));
    }
    let translation = &results["translation"];
    if !translation.is_null() {
        out.push_str(&translation_paragraph(translation));
    }
    for api in &SERVED_APIS {
        if !results[api.key].is_null() {
            out.push_str(&served_paragraph(api, &results[api.key]));
        }
    }
    out.push_str("\nRaw figures: `bench-results.json`.\n");
    let baseline = &results["baseline"];
    if !baseline.is_null() {
        out.push_str(&baseline_section(baseline));
    }
    out
}

fn masking_paragraph(m: &Value) -> String {
    let (without, with, difference) = (&m["without_key"], &m["with_key"], &m["difference"]);
    format!(
        "\nMasking the target credential: the same proxy without a target credential and with a {}-character \
         `TARGET_API_KEY` (which it then sends, and searches each answer of the target for; the mock never echoes \
         it), request log on, side by side in alternating rounds ({} rounds of {} requests each at c=1): added \
         latency p50 {} us without the key and {} us with it (difference {} us), p99 {} and {} us (difference {} \
         us); proxy CPU per request {} and {} us (difference {} us).\n",
        m["key_chars"],
        m["rounds"],
        m["requests_per_round"],
        without["added_p50_us"],
        with["added_p50_us"],
        difference["added_p50_us"],
        without["added_p99_us"],
        with["added_p99_us"],
        difference["added_p99_us"],
        without["cpu_us_per_request"],
        with["cpu_us_per_request"],
        difference["cpu_us_per_request"],
    )
}

/// "met", or "**not met**" and what missed, for a side-by-side part's targets.
fn verdict(target: &Value) -> String {
    if target["met"] == true {
        return "met".to_owned();
    }
    let mut missed = Vec::new();
    if target["request_met"] != true {
        missed.push("per request");
    }
    if target["event_met"] != true {
        missed.push("per streamed event");
    }
    format!("**not met** ({})", missed.join(", "))
}

/// A client API the proxy serves from a chat target, as the report names it.
struct ServedApi {
    /// Its key in the results.
    key: &'static str,
    title: &'static str,
    path: &'static str,
    written_as: &'static str,
}

const SERVED_APIS: [ServedApi; 2] = [
    ServedApi {
        key: "messages",
        title: "Anthropic's Messages API (Claude Code's)",
        path: "/v1/messages",
        written_as: "Messages",
    },
    ServedApi {
        key: "responses",
        title: "OpenAI's Responses API (Codex's)",
        path: "/v1/responses",
        written_as: "a Response and its events",
    },
];

fn served_paragraph(api: &ServedApi, m: &Value) -> String {
    let (answers, streams, target) = (&m["answers"], &m["streams"], &m["target"]);
    let key = api.key;
    format!(
        "\nServing {} from a chat-completions target: two proxies of the same \
         configuration on the same mock, one asked for chat completions (A) and one for `{}` (B: read as a \
         chat request, the answer and stream written back as {}), request log on, side by side in alternating \
         rounds. Whole answers ({} rounds of {} requests each at c=1): added latency p50 {} us through A and {} us \
         through B (difference {} us); proxy CPU per request {} and {} us (difference {} us). Streams of {} text \
         deltas ({} rounds of {} streams each at c=1): added time to the last byte p50 {} and {} us (difference {} \
         us); proxy CPU per stream {} and {} us (difference {} us, {} us per streamed event, the stream's own costs \
         included). The target, at most {} us of proxy CPU per request and {} us per streamed event above plain \
         forwarding: {}.\n",
        api.title,
        api.path,
        api.written_as,
        m["rounds"],
        m["requests_per_round"],
        answers["chat"]["added_p50_us"],
        answers[key]["added_p50_us"],
        answers["difference"]["added_p50_us"],
        answers["chat"]["cpu_us_per_request"],
        answers[key]["cpu_us_per_request"],
        answers["difference"]["cpu_us_per_request"],
        m["events_per_stream"],
        m["rounds"],
        m["streams_per_round"],
        streams["chat"]["added_p50_us"],
        streams[key]["added_p50_us"],
        streams["difference"]["added_p50_us"],
        streams["chat"]["cpu_us_per_stream"],
        streams[key]["cpu_us_per_stream"],
        streams["difference"]["cpu_us_per_stream"],
        m["cpu_us_per_event_difference"],
        target["cpu_us_per_request"],
        target["cpu_us_per_event"],
        verdict(target),
    )
}

fn translation_paragraph(t: &Value) -> String {
    let (answers, streams, target) = (&t["answers"], &t["streams"], &t["target"]);
    let verdict = verdict(target);
    format!(
        "\nTranslating to Anthropic's Messages API: the same proxy with the same `TARGET_API_KEY`, passing chat \
         requests through (A) and with `TARGET_API=anthropic` (B: each request written as `POST /messages`, each \
         answer and stream event written back as OpenAI's), request log on, on the same mock target, side by side in \
         alternating rounds. Whole answers ({} rounds of {} requests each at c=1): added latency p50 {} us through A \
         and {} us through B (difference {} us); proxy CPU per request {} and {} us (difference {} us). Streams of {} \
         text deltas sent at once, read to their end ({} rounds of {} streams each at c=1): added time to the last \
         byte p50 {} and {} us (difference {} us); proxy CPU per stream {} and {} us (difference {} us, {} us per \
         streamed event, the stream's own costs included). The target, translation adding at most {} us of proxy \
         CPU per request and {} us per streamed event: {}.\n",
        t["rounds"],
        t["requests_per_round"],
        answers["passthrough"]["added_p50_us"],
        answers["anthropic"]["added_p50_us"],
        answers["difference"]["added_p50_us"],
        answers["passthrough"]["cpu_us_per_request"],
        answers["anthropic"]["cpu_us_per_request"],
        answers["difference"]["cpu_us_per_request"],
        t["events_per_stream"],
        t["rounds"],
        t["streams_per_round"],
        streams["passthrough"]["added_p50_us"],
        streams["anthropic"]["added_p50_us"],
        streams["difference"]["added_p50_us"],
        streams["passthrough"]["cpu_us_per_stream"],
        streams["anthropic"]["cpu_us_per_stream"],
        streams["difference"]["cpu_us_per_stream"],
        t["cpu_us_per_event_difference"],
        target["cpu_us_per_request"],
        target["cpu_us_per_event"],
        verdict,
    )
}

fn baseline_section(b: &Value) -> String {
    let runs = b["runs"].as_array().cloned().unwrap_or_default();
    let first = runs.first().cloned().unwrap_or_default();
    let (latency, throughput) = (&first["latency"], &first["throughput"]);
    let mut how = Vec::new();
    if !latency.is_null() {
        how.push(format!(
            "{} rounds of {} requests each at c=1 (added latency p50: the median of the rounds' p50; p99 over all \
             rounds)",
            latency["rounds"], latency["requests_per_round"]
        ));
    }
    if !throughput.is_null() {
        how.push(format!(
            "{} rounds of {} s each at c={}",
            throughput["rounds"], throughput["seconds_per_round"], throughput["concurrency"]
        ));
    }
    let mut out = format!(
        "\n## Against a baseline\n\nThis build (`{}`) and the baseline (`{}`) side by side on the same mock target, \
         in alternating rounds in the same run: {}; proxy CPU per request over all rounds.\n\n",
        b["current_binary"].as_str().unwrap_or_default(),
        b["binary"].as_str().unwrap_or_default(),
        how.join(", and "),
    );
    out.push_str(
        "| Measure | this build | baseline | this build / baseline |\n| --- | --- | --- | --- |\n",
    );
    for run in &runs {
        let log = if run["logging"] == true {
            "request log on"
        } else {
            "request log off"
        };
        let mut row = |label: String, part: &Value, key: &str| {
            if !part.is_null() {
                let ratio = &part["ratio"][key];
                out.push_str(&format!(
                    "| {label} | {} | {} | {} |\n",
                    part["current"][key],
                    part["baseline"][key],
                    if ratio.is_null() {
                        "–".to_owned()
                    } else {
                        ratio.to_string()
                    },
                ));
            }
        };
        let (latency, throughput) = (&run["latency"], &run["throughput"]);
        row(
            format!("Added latency p50, c=1, {log} (us)"),
            latency,
            "added_p50_us",
        );
        row(
            format!("Added latency p99, c=1, {log} (us)"),
            latency,
            "added_p99_us",
        );
        row(
            format!("Proxy CPU per request, c=1, {log} (us)"),
            latency,
            "cpu_us_per_request",
        );
        row(format!("Throughput c=64, {log} (req/s)"), throughput, "rps");
        row(
            format!("Proxy CPU per request, c=64, {log} (us)"),
            throughput,
            "cpu_us_per_request",
        );
    }
    out
}
