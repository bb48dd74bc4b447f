//! Exports: every event a search matches, streamed from ClickHouse in CSV or
//! NDJSON chunk by chunk, never held whole in memory.

use app::search_model::{QueryLimit, SearchQuery};
use app::store::StoreError as ConsoleError;
use axum::body::Bytes;
use clickhouse::query::BytesCursor;

use super::sql::{self, Filter};
use super::Plan;
use crate::store::Store;

/// Also the `events_format` of an export bundle's manifest
/// (docs/INTEGRITY.md, section 11).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    Csv,
    Ndjson,
}

impl ExportFormat {
    /// `csv` or `ndjson`, as in `?format=`.
    pub fn from_param(text: &str) -> Option<ExportFormat> {
        match text {
            "csv" => Some(ExportFormat::Csv),
            "ndjson" => Some(ExportFormat::Ndjson),
            _ => None,
        }
    }

    /// Both exist on 18.16 and current releases, and both end every row
    /// with a newline, which [`TrailerGuard`] relies on.
    fn clickhouse_format(self) -> &'static str {
        match self {
            ExportFormat::Csv => "CSVWithNames",
            ExportFormat::Ndjson => "JSONEachRow",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            ExportFormat::Csv => "text/csv; charset=utf-8",
            ExportFormat::Ndjson => "application/x-ndjson",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            ExportFormat::Csv => "csv",
            ExportFormat::Ndjson => "ndjson",
        }
    }
}

/// An export under way. The first chunk has already arrived, so a query
/// ClickHouse refuses at once is an error before anything is sent.
pub struct ExportStream {
    cursor: BytesCursor,
    first: Option<Bytes>,
    guard: TrailerGuard,
    done: bool,
    store: Store,
    /// Distinct events the export holds, counted before it started.
    pub rows: u64,
}

impl ExportStream {
    /// The next piece of the file; `Ok(None)` at its end. After an error
    /// the stream is over: the caller must abort the response, so that a
    /// cut-off export can never pass for a whole one.
    pub async fn next_chunk(&mut self) -> Result<Option<Bytes>, ConsoleError> {
        if let Some(first) = self.first.take() {
            return Ok(Some(first));
        }
        while !self.done {
            match self.cursor.next().await {
                Ok(Some(chunk)) => {
                    let ready = self.guard.push(&chunk);
                    if !ready.is_empty() {
                        return Ok(Some(Bytes::from(ready)));
                    }
                }
                Ok(None) => {
                    self.done = true;
                    let rest = std::mem::take(&mut self.guard)
                        .finish()
                        .map_err(|message| self.store.export_failed(&message))?;
                    return Ok((!rest.is_empty()).then(|| Bytes::from(rest)));
                }
                Err(error) => {
                    self.done = true;
                    return Err(self.store.export_failed(&error));
                }
            }
        }
        Ok(None)
    }
}

impl Store {
    fn export_failed(&self, error: &dyn std::fmt::Display) -> ConsoleError {
        self.limits
            .classify(error, self.limits.export_max_execution_seconds)
    }

    /// Starts an export of the whole search (all its pages, under the
    /// cursor's snapshot if it has one).
    pub async fn export(
        &self,
        query: &SearchQuery,
        format: ExportFormat,
        now_ms: i64,
    ) -> Result<ExportStream, ConsoleError> {
        let plan = Plan::new(query, now_ms)?;
        let filter = Filter::new(&plan.compiled, &query.tenants(), plan.span(), None);
        let seconds = self.limits.export_max_execution_seconds;
        // Counting first turns "too many rows" into a clear answer before
        // the download starts, instead of a download that breaks off.
        let rows: u64 = self
            .filtered_query_within(
                &sql::count_sql(&filter.sql),
                |query| query,
                &filter,
                seconds,
            )
            .fetch_one()
            .await
            .map_err(|e| self.export_failed(&e))?;
        if rows > self.limits.max_result_rows {
            return Err(ConsoleError::Limit(QueryLimit::ResultRows {
                rows: self.limits.max_result_rows,
            }));
        }
        let text = match format {
            // In the order of the pages the analyst was shown.
            ExportFormat::Csv => sql::csv_export_sql(&filter.sql, query.sort),
            ExportFormat::Ndjson => sql::export_sql(&filter.sql, query.sort),
        };
        let mut export = self.filtered_query_within(&text, |query| query, &filter, seconds);
        if format == ExportFormat::Ndjson {
            // Epoch milliseconds as JSON numbers rather than strings, the
            // same on every version.
            export = export.with_setting("output_format_json_quote_64bit_integers", "0");
        }
        let cursor = export
            .fetch_bytes(format.clickhouse_format())
            .map_err(|e| self.export_failed(&e))?;
        let mut stream = ExportStream {
            cursor,
            first: None,
            guard: TrailerGuard::default(),
            done: false,
            store: self.clone(),
            rows,
        };
        stream.first = stream.next_chunk().await?;
        Ok(stream)
    }
}

/// ClickHouse 18.16 reports an error that happens after the first rows were
/// sent by appending `Code: N, e.displayText() = DB::Exception: …` as a last
/// line of a `200` response; the client crate recognises only the way newer
/// servers mark it. So the last line received is held back until the next
/// chunk shows it was not the end, and checked at the end.
#[derive(Default)]
struct TrailerGuard {
    held: Vec<u8>,
}

impl TrailerGuard {
    /// Takes a chunk and returns what can be passed on: everything up to
    /// the start of the last line.
    fn push(&mut self, chunk: &[u8]) -> Vec<u8> {
        self.held.extend_from_slice(chunk);
        let before_last_byte = self.held.len().saturating_sub(1);
        match self.held[..before_last_byte]
            .iter()
            .rposition(|b| *b == b'\n')
        {
            Some(end_of_line) => {
                let last_line = self.held.split_off(end_of_line + 1);
                std::mem::replace(&mut self.held, last_line)
            }
            None => Vec::new(),
        }
    }

    /// The held-back rest, or the exception it turned out to be. Rows can
    /// never look like one: CSV quotes the first column (the event id) and
    /// NDJSON rows start with `{`.
    fn finish(self) -> Result<Vec<u8>, String> {
        let text = String::from_utf8_lossy(&self.held);
        if text.starts_with("Code: ") && text.contains("DB::Exception") {
            Err(text.trim().to_string())
        } else {
            Ok(self.held)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(chunks: &[&str]) -> (String, Result<String, String>) {
        let mut guard = TrailerGuard::default();
        let mut passed = String::new();
        for chunk in chunks {
            passed.push_str(&String::from_utf8(guard.push(chunk.as_bytes())).unwrap());
        }
        let rest = guard.finish().map(|r| String::from_utf8(r).unwrap());
        (passed, rest)
    }

    #[test]
    fn passes_rows_and_holds_only_the_last_line() {
        let (passed, rest) = run(&["\"id\",\"t\"\n\"a\",", "1\n\"b\",2\n", "\"c\",3\n"]);
        assert_eq!(passed, "\"id\",\"t\"\n\"a\",1\n\"b\",2\n");
        assert_eq!(rest.unwrap(), "\"c\",3\n");
        let (passed, rest) = run(&[]);
        assert_eq!((passed.as_str(), rest.unwrap().as_str()), ("", ""));
    }

    #[test]
    fn an_appended_exception_is_an_error_even_when_split() {
        let (passed, rest) = run(&[
            "{\"a\":1}\n{\"a\":2}\nCode: 159, e.displayText() = DB",
            "::Exception: Timeout exceeded, e.what() = DB::Exception\n",
        ]);
        assert_eq!(passed, "{\"a\":1}\n{\"a\":2}\n");
        let error = rest.unwrap_err();
        assert!(error.starts_with("Code: 159"), "{error}");
    }

    #[test]
    fn rows_that_mention_exceptions_are_rows() {
        let (_, rest) = run(&["\"Code: 1 DB::Exception\",\"x\"\n"]);
        assert!(rest.is_ok());
    }

    #[test]
    fn formats() {
        assert_eq!(ExportFormat::from_param("csv"), Some(ExportFormat::Csv));
        assert_eq!(
            ExportFormat::from_param("ndjson"),
            Some(ExportFormat::Ndjson)
        );
        assert_eq!(ExportFormat::from_param("CSV"), None);
        assert_eq!(ExportFormat::from_param("xlsx"), None);
    }
}
