//! The SQLite side of the log: schema and migrations, batched inserts, retention, and the
//! queries behind the dashboard API. WAL mode, so the dashboard reads while the writer writes,
//! and a process killed mid-write leaves a database that opens.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use rusqlite::{Connection, OptionalExtension, params, params_from_iter};
use serde_json::Value;

use super::queries::{CallQuery, EventQuery};
use super::record::{ApiCall, CallSummary, StoredHeaders, UsageSource, unix_ms};
use super::store::{LogStore, Retention, StoreError};
use super::{Level, ServerEvent};
use crate::formats::usage::Usage;
use crate::stats::Sample;

/// How often entries past `LOG_MAX_AGE_DAYS` are deleted: days of retention need no finer grain.
const AGE_CHECK_INTERVAL: Duration = Duration::from_secs(60);

/// The log in SQLite: a connection for the writer, and one for the dashboard's reads (WAL lets
/// them run side by side).
pub struct SqliteStore {
    writing: Mutex<Writing>,
    reader: Mutex<Connection>,
    retention: Retention,
}

/// The writer's connection and what retention has done so far.
struct Writing {
    conn: Connection,
    /// The highest call and event ids stored.
    last_ids: (i64, i64),
    /// The id cuts already applied, and when the age cut last ran.
    calls_cut: i64,
    events_cut: i64,
    age_checked: Option<Instant>,
}

impl SqliteStore {
    /// Opens (creating and migrating) the database at `path`.
    pub fn open(path: &Path, retention: Retention) -> rusqlite::Result<Self> {
        let conn = open(path)?;
        let reader = open(path)?;
        let last_ids = last_ids(&conn)?;
        Ok(Self {
            writing: Mutex::new(Writing {
                conn,
                last_ids,
                calls_cut: i64::MIN,
                events_cut: i64::MIN,
                age_checked: None,
            }),
            reader: Mutex::new(reader),
            retention,
        })
    }

    /// The highest call and event ids stored: new ones continue after them.
    pub fn last_ids(&self) -> (i64, i64) {
        lock(&self.writing).last_ids
    }

    /// Feeds `each` what the statistics need of every call since `since_ms` ([`samples_since`]).
    pub fn samples_since(
        &self,
        since_ms: i64,
        each: impl FnMut(Sample<'_>),
    ) -> rusqlite::Result<()> {
        samples_since(&lock(&self.reader), since_ms, each)
    }
}

impl LogStore for SqliteStore {
    fn write(&self, calls: &[ApiCall], events: &[ServerEvent]) -> Result<(), StoreError> {
        let mut writing = lock(&self.writing);
        let w = &mut *writing;
        if let Some(call) = calls.last() {
            w.last_ids.0 = w.last_ids.0.max(call.id);
        }
        if let Some(event) = events.last() {
            w.last_ids.1 = w.last_ids.1.max(event.id);
        }
        // Ids are sequential, so "keep the newest N" is a delete below an id: an index range,
        // cheap enough to run with every batch. Only what can have changed is deleted: the id
        // cuts once a table is over the cap (then with every batch, exactly), the age cut once a
        // minute; a batch often holds one call, and four deletes would cost more than the insert.
        let keep = self.retention.max_entries as i64;
        let calls_below = Some(w.last_ids.0 + 1 - keep).filter(|&b| b > w.calls_cut);
        let events_below = Some(w.last_ids.1 + 1 - keep).filter(|&b| b > w.events_cut);
        let age_due = w
            .age_checked
            .is_none_or(|at| at.elapsed() >= AGE_CHECK_INTERVAL);
        let cutoff = age_due.then(|| unix_ms(SystemTime::now()) - self.retention.max_age_ms);
        insert(&mut w.conn, calls, events)?;
        retain(&w.conn, calls_below, events_below, cutoff)?;
        w.calls_cut = w.calls_cut.max(calls_below.unwrap_or(i64::MIN));
        w.events_cut = w.events_cut.max(events_below.unwrap_or(i64::MIN));
        if age_due {
            w.age_checked = Some(Instant::now());
        }
        Ok(())
    }

    fn clear(&self) -> Result<(), StoreError> {
        Ok(clear(&lock(&self.writing).conn)?)
    }

    fn call_summaries(&self, query: &CallQuery) -> Result<Vec<Value>, StoreError> {
        Ok(call_summaries(&lock(&self.reader), query)?)
    }

    fn calls(&self, query: &CallQuery) -> Result<Vec<ApiCall>, StoreError> {
        Ok(calls(&lock(&self.reader), query)?)
    }

    fn call(&self, id: i64) -> Result<Option<ApiCall>, StoreError> {
        Ok(call(&lock(&self.reader), id)?)
    }

    fn events(&self, query: &EventQuery) -> Result<Vec<ServerEvent>, StoreError> {
        Ok(events(&lock(&self.reader), query)?)
    }

    fn put_response(&self, id: &str, time_ms: i64, record: &str) -> Result<(), StoreError> {
        let writing = lock(&self.writing);
        writing
            .conn
            .prepare_cached(
                "INSERT OR REPLACE INTO responses (id, time_ms, record) VALUES (?1, ?2, ?3)",
            )?
            .execute(rusqlite::params![id, time_ms, record])?;
        // Rowids grow with each insert: the newest `max_entries` are those above this.
        writing
            .conn
            .prepare_cached(
                "DELETE FROM responses WHERE rowid <= (SELECT MAX(rowid) FROM responses) - ?1",
            )?
            .execute([self.retention.max_entries as i64])?;
        Ok(())
    }

    fn response(&self, id: &str) -> Result<Option<String>, StoreError> {
        use rusqlite::OptionalExtension;
        Ok(lock(&self.reader)
            .prepare_cached("SELECT record FROM responses WHERE id = ?1")?
            .query_row([id], |row| row.get(0))
            .optional()?)
    }

    fn delete_response(&self, id: &str) -> Result<bool, StoreError> {
        let writing = lock(&self.writing);
        let deleted = writing
            .conn
            .prepare_cached("DELETE FROM responses WHERE id = ?1")?
            .execute([id])?;
        Ok(deleted > 0)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing panics while holding these locks; if something did, the connection is still usable.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Bumped with each migration; `PRAGMA user_version` records how far a file has come.
const SCHEMA_VERSION: i64 = 4;

pub fn open(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // With WAL, NORMAL loses at most the last transactions on power loss, never consistency.
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    migrate(&conn)?;
    Ok(conn)
}

fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if version < 1 {
        conn.execute_batch(
            "BEGIN;
             CREATE TABLE IF NOT EXISTS api_calls (
                 id INTEGER PRIMARY KEY,
                 time_ms INTEGER NOT NULL,
                 method TEXT NOT NULL,
                 path TEXT NOT NULL,
                 model TEXT,
                 stream INTEGER NOT NULL,
                 client TEXT,
                 status INTEGER NOT NULL,
                 latency_ms REAL NOT NULL,
                 ttfb_ms REAL,
                 upstream_ms REAL,
                 prompt_tokens INTEGER,
                 completion_tokens INTEGER,
                 total_tokens INTEGER,
                 usage_source TEXT NOT NULL,
                 request_headers TEXT NOT NULL,
                 request_body TEXT,
                 response_body TEXT,
                 chunk_count INTEGER,
                 error TEXT,
                 normalization TEXT
             );
             CREATE INDEX IF NOT EXISTS api_calls_time ON api_calls(time_ms);
             CREATE TABLE IF NOT EXISTS server_events (
                 id INTEGER PRIMARY KEY,
                 time_ms INTEGER NOT NULL,
                 level TEXT NOT NULL,
                 message TEXT NOT NULL
             );
             CREATE INDEX IF NOT EXISTS server_events_time ON server_events(time_ms);
             COMMIT;",
        )?;
    }
    if version < 2 {
        // Version 1 indexed the model. Every call paid for it (4.2k of the writer's 39k
        // instructions a call, callgrind: a string compared down a B-tree at a random place),
        // while it served only the dashboard's model filter, which reads newest first and
        // stops at a page of matches, as the status and text filters always have: a model
        // used by one call in 5,000, among the default 10,000 calls, is found in about 5 ms.
        conn.execute_batch("DROP INDEX IF EXISTS api_calls_model;")?;
    }
    if version < 3 {
        // Request headers were a JSON object; they are `name:value` lines now (see
        // `StoredHeaders`). An object's members become its lines, in order.
        conn.execute_batch(
            "UPDATE api_calls SET request_headers = COALESCE(
                 (SELECT group_concat(key || ':' || value, char(10)) || char(10)
                  FROM json_each(api_calls.request_headers)), '')
             WHERE json_valid(request_headers);",
        )?;
    }
    if version < 4 {
        // Responses API answers kept for `previous_response_id`.
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS responses (
                 id TEXT PRIMARY KEY,
                 time_ms INTEGER NOT NULL,
                 record TEXT NOT NULL
             );
             CREATE INDEX IF NOT EXISTS responses_time ON responses(time_ms);",
        )?;
    }
    conn.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    Ok(())
}

/// The highest ids stored, so new records continue the sequence after a restart.
pub fn last_ids(conn: &Connection) -> rusqlite::Result<(i64, i64)> {
    let calls = conn.query_row("SELECT COALESCE(MAX(id), 0) FROM api_calls", [], |r| {
        r.get(0)
    })?;
    let events = conn.query_row("SELECT COALESCE(MAX(id), 0) FROM server_events", [], |r| {
        r.get(0)
    })?;
    Ok((calls, events))
}

pub fn insert(
    conn: &mut Connection,
    calls: &[ApiCall],
    events: &[ServerEvent],
) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    {
        let mut insert_call = tx.prepare_cached(
            "INSERT INTO api_calls (id, time_ms, method, path, model, stream, client, status, latency_ms,
                 ttfb_ms, upstream_ms, prompt_tokens, completion_tokens, total_tokens, usage_source,
                 request_headers, request_body, response_body, chunk_count, error, normalization)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21)",
        )?;
        for call in calls {
            insert_call.execute(params![
                call.id,
                call.time,
                call.method,
                call.path,
                call.model,
                call.stream,
                call.client,
                call.status,
                call.latency_ms,
                call.ttfb_ms,
                call.upstream_ms,
                call.usage.map(|u| u.prompt_tokens as i64),
                call.usage.map(|u| u.completion_tokens as i64),
                call.usage.map(|u| u.total_tokens as i64),
                call.usage_source.as_str(),
                call.request_headers.as_str(),
                call.request_body,
                call.response_body,
                call.chunk_count,
                call.error,
                call.normalization.as_ref().map(Value::to_string),
            ])?;
        }
        let mut insert_event = tx.prepare_cached(
            "INSERT INTO server_events (id, time_ms, level, message) VALUES (?1, ?2, ?3, ?4)",
        )?;
        for event in events {
            insert_event.execute(params![
                event.id,
                event.time,
                event.level.as_str(),
                event.message
            ])?;
        }
    }
    tx.commit()
}

/// Deletes calls and events with an id below the given ones, and both older than the cutoff.
/// `None` skips that part: the writer asks only for what can have changed since it last asked.
pub fn retain(
    conn: &Connection,
    calls_below: Option<i64>,
    events_below: Option<i64>,
    cutoff_ms: Option<i64>,
) -> rusqlite::Result<()> {
    // Fixed statements, prepared once per connection.
    const BY_ID: [&str; 2] = [
        "DELETE FROM api_calls WHERE id < ?1",
        "DELETE FROM server_events WHERE id < ?1",
    ];
    const BY_AGE: [&str; 3] = [
        "DELETE FROM api_calls WHERE time_ms < ?1",
        "DELETE FROM server_events WHERE time_ms < ?1",
        "DELETE FROM responses WHERE time_ms < ?1",
    ];
    for (sql, below) in BY_ID.into_iter().zip([calls_below, events_below]) {
        if let Some(below) = below {
            conn.prepare_cached(sql)?.execute([below])?;
        }
    }
    if let Some(cutoff) = cutoff_ms {
        for sql in BY_AGE {
            conn.prepare_cached(sql)?.execute([cutoff])?;
        }
    }
    Ok(())
}

pub fn clear(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch("DELETE FROM api_calls; DELETE FROM server_events; DELETE FROM responses;")
}

/// A call's columns but its headers and bodies, which a listing does not show and which may
/// be 256 KB each: listings and the statistics read these alone.
macro_rules! summary_columns {
    () => {
        "id, time_ms, method, path, model, stream, client, status, latency_ms, ttfb_ms, \
         upstream_ms, prompt_tokens, completion_tokens, total_tokens, usage_source, chunk_count, \
         error, normalization"
    };
}

const SUMMARY_COLUMNS: &str = summary_columns!();
/// Where the summary's last column, `normalization`, is read.
const NORMALIZATION_AT: usize = 17;
/// The summary's columns first, so that both read them at the same places.
const CALL_COLUMNS: &str = concat!(
    summary_columns!(),
    ", request_headers, request_body, response_body"
);

/// The summaries of the calls `query` asks for, newest first, made from the stored row without
/// copying its text: the API serves them as they are.
pub fn call_summaries(conn: &Connection, query: &CallQuery) -> rusqlite::Result<Vec<Value>> {
    select_calls(conn, SUMMARY_COLUMNS, query, |row| {
        let normalization = parsed_normalization(row)?;
        Ok(summary_from_row(row, normalization.as_ref())?.to_json())
    })
}

/// The whole calls `query` asks for, newest first.
pub fn calls(conn: &Connection, query: &CallQuery) -> rusqlite::Result<Vec<ApiCall>> {
    select_calls(conn, CALL_COLUMNS, query, call_from_row)
}

fn select_calls<T>(
    conn: &Connection,
    columns: &str,
    query: &CallQuery,
    each: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<Vec<T>> {
    let mut clauses = Vec::new();
    let mut args: Vec<rusqlite::types::Value> = Vec::new();
    if let Some(before) = query.before {
        clauses.push("id < ?");
        args.push(before.into());
    }
    if let Some(model) = &query.model {
        clauses.push("model = ?");
        args.push(model.clone().into());
    }
    if let Some((low, high)) = query.status_range() {
        clauses.push("status BETWEEN ? AND ?");
        args.push(i64::from(low).into());
        args.push(i64::from(high).into());
    }
    if let Some(text) = &query.text {
        let columns = ["path", "model", "error", "request_body", "response_body"];
        clauses.push("(path LIKE ? ESCAPE '\\' OR model LIKE ? ESCAPE '\\' OR error LIKE ? ESCAPE '\\' OR request_body LIKE ? ESCAPE '\\' OR response_body LIKE ? ESCAPE '\\')");
        let pattern = like_pattern(text);
        args.extend(columns.iter().map(|_| pattern.clone().into()));
    }
    let mut sql = format!("SELECT {columns} FROM api_calls");
    if !clauses.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(&clauses.join(" AND "));
    }
    sql.push_str(" ORDER BY id DESC LIMIT ?");
    args.push((query.limit as i64).into());
    let mut statement = conn.prepare(&sql)?;
    let rows = statement.query_map(params_from_iter(args), each)?;
    rows.collect()
}

pub fn call(conn: &Connection, id: i64) -> rusqlite::Result<Option<ApiCall>> {
    conn.query_row(
        &format!("SELECT {CALL_COLUMNS} FROM api_calls WHERE id = ?1"),
        [id],
        call_from_row,
    )
    .optional()
}

pub fn events(conn: &Connection, query: &EventQuery) -> rusqlite::Result<Vec<ServerEvent>> {
    let levels: Vec<&str> = Level::ALL
        .iter()
        .filter(|l| **l >= query.min_level)
        .map(|l| l.as_str())
        .collect();
    let placeholders = vec!["?"; levels.len()].join(", ");
    let mut statement = conn.prepare(&format!(
        "SELECT id, time_ms, level, message FROM server_events WHERE level IN ({placeholders}) ORDER BY id DESC LIMIT ?"
    ))?;
    let mut args: Vec<rusqlite::types::Value> =
        levels.iter().map(|l| (*l).to_owned().into()).collect();
    args.push((query.limit as i64).into());
    let rows = statement.query_map(params_from_iter(args), |row| {
        Ok(ServerEvent {
            id: row.get(0)?,
            time: row.get(1)?,
            level: Level::parse(&row.get::<_, String>(2)?),
            message: row.get(3)?,
        })
    })?;
    rows.collect()
}

/// Feeds `each` what the statistics need of every call since `since_ms`, oldest first, for
/// rebuilding them at start. The bodies are never read: whether a call failed is asked of
/// `error` with `typeof`, which SQLite answers from the row's header, where `IS NOT NULL` would
/// walk the bodies' overflow pages to reach the text stored after them (measured: 3,000 failed
/// calls with 100 KB of bodies, 3 ms against 45).
pub fn samples_since(
    conn: &Connection,
    since_ms: i64,
    mut each: impl FnMut(Sample<'_>),
) -> rusqlite::Result<()> {
    let mut statement = conn.prepare(
        "SELECT time_ms, latency_ms, status >= 400 OR typeof(error) != 'null', prompt_tokens,
        completion_tokens, total_tokens, model FROM api_calls WHERE time_ms >= ?1 ORDER BY id",
    )?;
    let mut rows = statement.query([since_ms])?;
    while let Some(row) = rows.next()? {
        each(Sample {
            time: row.get(0)?,
            latency_ms: row.get(1)?,
            failed: row.get(2)?,
            usage: usage_from_row(row, 3)?,
            model: row.get_ref(6)?.as_str_or_null()?,
        });
    }
    Ok(())
}

/// The three token counts from `first` on; a call has usage only when all three are stored.
fn usage_from_row(row: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<Option<Usage>> {
    let count = |i| row.get::<_, Option<i64>>(first + i);
    Ok(match (count(0)?, count(1)?, count(2)?) {
        (Some(p), Some(c), Some(t)) => Some(Usage {
            prompt_tokens: p as u64,
            completion_tokens: c as u64,
            total_tokens: t as u64,
        }),
        _ => None,
    })
}

/// The summary's `normalization`, parsed: the summary borrows it, so it is read apart.
fn parsed_normalization(row: &rusqlite::Row<'_>) -> rusqlite::Result<Option<Value>> {
    Ok(row
        .get_ref(NORMALIZATION_AT)?
        .as_str_or_null()?
        .and_then(|n| serde_json::from_str(n).ok()))
}

/// The summary of a row read with [`SUMMARY_COLUMNS`] first, its text borrowed from the row.
fn summary_from_row<'a>(
    row: &'a rusqlite::Row<'_>,
    normalization: Option<&'a Value>,
) -> rusqlite::Result<CallSummary<'a>> {
    let text = |i| row.get_ref(i).and_then(|v| v.as_str().map_err(Into::into));
    let optional_text = |i| {
        row.get_ref(i)
            .and_then(|v| v.as_str_or_null().map_err(Into::into))
    };
    Ok(CallSummary {
        id: row.get(0)?,
        time: row.get(1)?,
        method: text(2)?,
        path: text(3)?,
        model: optional_text(4)?,
        stream: row.get(5)?,
        client: optional_text(6)?,
        status: row.get(7)?,
        latency_ms: row.get(8)?,
        ttfb_ms: row.get(9)?,
        upstream_ms: row.get(10)?,
        usage: usage_from_row(row, 11)?,
        usage_source: UsageSource::from_stored(text(14)?),
        chunk_count: row.get(15)?,
        error: optional_text(16)?,
        normalization,
    })
}

/// A whole call, read with [`CALL_COLUMNS`]: its summary's fields, then headers and bodies.
fn call_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<ApiCall> {
    let normalization = parsed_normalization(row)?;
    let summary = summary_from_row(row, None)?;
    let owned = |text: Option<&str>| text.map(str::to_owned);
    Ok(ApiCall {
        id: summary.id,
        time: summary.time,
        method: summary.method.to_owned(),
        path: summary.path.to_owned(),
        model: owned(summary.model),
        stream: summary.stream,
        client: owned(summary.client),
        status: summary.status,
        latency_ms: summary.latency_ms,
        ttfb_ms: summary.ttfb_ms,
        upstream_ms: summary.upstream_ms,
        usage: summary.usage,
        usage_source: summary.usage_source,
        chunk_count: summary.chunk_count,
        error: owned(summary.error),
        normalization,
        request_headers: StoredHeaders::from_stored(row.get(NORMALIZATION_AT + 1)?),
        request_body: row.get(NORMALIZATION_AT + 2)?,
        response_body: row.get(NORMALIZATION_AT + 3)?,
    })
}

/// `%text%` with LIKE's wildcards escaped, so a search for `50%` means what it says.
fn like_pattern(text: &str) -> String {
    let escaped = text
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::record::ApiCall;

    fn call(id: i64, time: i64) -> ApiCall {
        ApiCall {
            id,
            time,
            method: "POST".into(),
            path: "/v1/chat/completions".into(),
            model: Some("m".into()),
            stream: false,
            client: None,
            status: 200,
            latency_ms: 1.0,
            ttfb_ms: None,
            upstream_ms: None,
            usage: None,
            usage_source: UsageSource::None,
            request_headers: StoredHeaders::default(),
            request_body: Some("50% off_sale".into()),
            response_body: None,
            chunk_count: None,
            error: None,
            normalization: None,
        }
    }

    fn query() -> CallQuery {
        CallQuery {
            limit: 100,
            ..CallQuery::default()
        }
    }

    #[test]
    fn retention_drops_entries_past_the_age_and_the_count() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&conn).unwrap();
        let calls: Vec<ApiCall> = (1..=6).map(|id| call(id, id * 1000)).collect();
        insert(&mut conn, &calls, &[]).unwrap();
        // Older than 2500 ms goes (ids 1 and 2); below id 4 goes too: ids 4 to 6 stay.
        retain(&conn, Some(4), Some(1), Some(2500)).unwrap();
        let ids: Vec<i64> = call_summaries(&conn, &query())
            .unwrap()
            .iter()
            .map(|c| c["id"].as_i64().unwrap())
            .collect();
        assert_eq!(ids, vec![6, 5, 4]);
    }

    #[test]
    fn text_search_takes_like_wildcards_literally() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&conn).unwrap();
        insert(&mut conn, &[call(1, 1)], &[]).unwrap();
        let find = |text: &str| {
            call_summaries(
                &conn,
                &CallQuery {
                    text: Some(text.into()),
                    ..query()
                },
            )
            .unwrap()
            .len()
        };
        assert_eq!(find("50%"), 1);
        assert_eq!(find("off_sale"), 1);
        assert_eq!(find("5_%"), 0);
        assert_eq!(find("%"), 1);
    }

    /// Every field filled, text that needs escaping, a body past a page: what a listing reads
    /// straight from the row must be what the call itself summarizes to.
    fn full_call(id: i64) -> ApiCall {
        let mut headers = axum::http::HeaderMap::new();
        headers.insert("user-agent", "OpenAI/Python 2.8".parse().unwrap());
        ApiCall {
            model: Some("gpt-\"4o\"".into()),
            client: Some("OpenAI/Python 2.8".into()),
            status: 502,
            ttfb_ms: Some(3.25),
            upstream_ms: Some(4.5),
            usage: Some(Usage {
                prompt_tokens: 11,
                completion_tokens: 7,
                total_tokens: 18,
            }),
            usage_source: UsageSource::Stream,
            stream: true,
            request_headers: StoredHeaders::redacted(&crate::logs::compact::HeaderCopy::of(
                &headers,
            )),
            request_body: Some("x".repeat(20_000)),
            response_body: Some("data: {}\n\n".into()),
            chunk_count: Some(2),
            error: Some("target reset the connection: \u{e9}".into()),
            normalization: Some(serde_json::json!({"addedId": true})),
            ..call(id, id * 1000)
        }
    }

    #[test]
    fn a_listed_row_is_the_calls_own_summary() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&conn).unwrap();
        let calls = [full_call(1), call(2, 2000)];
        insert(&mut conn, &calls, &[]).unwrap();
        let listed = call_summaries(&conn, &query()).unwrap();
        let expected: Vec<Value> = calls.iter().rev().map(ApiCall::summary).collect();
        assert_eq!(listed, expected);
        // And the whole call comes back whole.
        let stored = super::call(&conn, 1).unwrap().unwrap();
        assert_eq!(
            serde_json::to_value(&stored).unwrap(),
            serde_json::to_value(&calls[0]).unwrap()
        );
    }

    #[test]
    fn the_statistics_samples_are_the_calls_own() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&conn).unwrap();
        let failed_with_200 = ApiCall {
            status: 200,
            ..full_call(3)
        };
        let no_model = ApiCall {
            model: None,
            ..call(4, 4000)
        };
        let calls = [call(1, 1000), full_call(2), failed_with_200, no_model];
        insert(&mut conn, &calls, &[]).unwrap();
        let mut seen = Vec::new();
        samples_since(&conn, 2000, |s| seen.push(format!("{s:?}"))).unwrap();
        let expected: Vec<String> = calls[1..]
            .iter()
            .map(|c| format!("{:?}", c.sample()))
            .collect();
        assert_eq!(seen, expected);
        assert!(seen[1].contains("failed: true"), "an error on a 200 counts");
    }

    #[test]
    fn a_version_1_file_loses_the_model_index_and_keeps_its_calls() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&conn).unwrap();
        insert(&mut conn, &[call(1, 1)], &[]).unwrap();
        conn.execute_batch(
            "CREATE INDEX api_calls_model ON api_calls(model); PRAGMA user_version = 1;",
        )
        .unwrap();
        migrate(&conn).unwrap();
        let indexes: Vec<String> = conn
            .prepare(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'api_calls'",
            )
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(indexes, ["api_calls_time"]);
        let found = call_summaries(
            &conn,
            &CallQuery {
                model: call(1, 1).model,
                ..query()
            },
        )
        .unwrap();
        assert_eq!(found.len(), 1);
    }

    #[test]
    fn a_version_2_file_has_its_headers_turned_into_lines() {
        let conn = Connection::open_in_memory().unwrap();
        migrate(&conn).unwrap();
        conn.execute_batch(
            r#"INSERT INTO api_calls (id, time_ms, method, path, stream, status, latency_ms,
                   usage_source, request_headers)
               VALUES (1, 1, 'POST', '/v1/x', 0, 200, 1.0, 'none',
                   '{"user-agent":"OpenAI/Python","authorization":"[redacted]","x-tag":"a, b"}'),
                      (2, 2, 'POST', '/v1/x', 0, 200, 1.0, 'none', 'null');
               PRAGMA user_version = 2;"#,
        )
        .unwrap();
        migrate(&conn).unwrap();
        let shown = |id: i64| {
            let call = super::call(&conn, id).unwrap().unwrap();
            serde_json::to_value(&call.request_headers).unwrap()
        };
        assert_eq!(
            shown(1),
            serde_json::json!({"user-agent": "OpenAI/Python", "authorization": "[redacted]", "x-tag": "a, b"})
        );
        assert_eq!(shown(2), serde_json::json!({}));
        // Lines are not JSON: a second pass leaves them as they are.
        conn.execute_batch("PRAGMA user_version = 2;").unwrap();
        migrate(&conn).unwrap();
        assert_eq!(shown(1)["x-tag"], "a, b");
    }

    #[test]
    fn migration_is_idempotent() {
        let conn = Connection::open_in_memory().unwrap();
        migrate(&conn).unwrap();
        migrate(&conn).unwrap();
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
    }
}
