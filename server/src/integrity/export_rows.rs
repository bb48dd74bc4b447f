//! Reads an export's events file back into stored rows: the bundle needs
//! each row's locator while it streams, `attest verify` each row's columns
//! to recompute its leaf. NDJSON lines are JSON objects; CSV records are
//! read by the rules docs/INTEGRITY.md section 10 writes down, so that an
//! independent verifier reads the same values from the same bytes:
//! RFC 4180 fields, ClickHouse's array literals, and the `'` that the CSV
//! export adds to neutralise spreadsheet formulas taken off again.

use serde::Deserialize;
use serde_json::Value;

use crate::store::{EventRow, ExportCell, ExportFormat, EXPORT_COLUMNS};

/// A row of the events file: the stored columns its leaf is computed
/// from, and its `content_hash` cell, the identity Search counted it by
/// (which must be the hash those columns give: docs/INTEGRITY.md section
/// 12, step 8).
#[derive(Debug)]
pub struct ExportedRow {
    pub row: EventRow,
    pub content_hash: String,
}

/// The one cell of an NDJSON line that `EventRow` does not hold.
#[derive(Deserialize)]
struct ContentHashCell {
    content_hash: String,
}

/// Why a record of the events file is not a row.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RowError {
    #[error("{0}")]
    Json(String),
    #[error("not CSV as the export writes it: {0}")]
    Csv(&'static str),
    #[error("the header has no column {0}")]
    MissingColumn(&'static str),
    #[error("has {found} fields, the header {expected}")]
    Width { found: usize, expected: usize },
    #[error("column {column}: {why}")]
    Cell { column: &'static str, why: String },
}

/// The index of the line feed that ends the record starting at `from`,
/// carrying the quote state across calls. In CSV a line feed inside a
/// quoted field (a user agent may hold one) belongs to the field; a
/// doubled quote toggles the state twice, so it needs no case of its own.
fn record_end(bytes: &[u8], from: usize, csv: bool, quoted: &mut bool) -> Option<usize> {
    for (i, b) in bytes.iter().enumerate().skip(from) {
        match b {
            b'"' if csv => *quoted = !*quoted,
            b'\n' if !*quoted => return Some(i),
            _ => {}
        }
    }
    None
}

/// The non-empty records of a whole events file, in order, each without
/// its line feed (a last record may lack one).
pub fn records(data: &[u8], format: ExportFormat) -> impl Iterator<Item = &[u8]> {
    let csv = format == ExportFormat::Csv;
    let mut start = 0;
    let mut quoted = false;
    std::iter::from_fn(move || loop {
        if start >= data.len() {
            return None;
        }
        let end = record_end(data, start, csv, &mut quoted).unwrap_or(data.len());
        let record = &data[start..end];
        start = end.saturating_add(1);
        if !record.is_empty() {
            return Some(record);
        }
    })
}

/// [`records`] for a file that arrives in chunks cut anywhere.
pub struct RecordSplitter {
    csv: bool,
    pending: Vec<u8>,
    /// How much of `pending` was scanned (with `quoted` as its state).
    scanned: usize,
    quoted: bool,
}

impl RecordSplitter {
    pub fn new(format: ExportFormat) -> RecordSplitter {
        RecordSplitter {
            csv: format == ExportFormat::Csv,
            pending: Vec::new(),
            scanned: 0,
            quoted: false,
        }
    }

    /// Takes a chunk; `each` sees every record it completes, in order.
    pub fn push<E>(
        &mut self,
        chunk: &[u8],
        mut each: impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        self.pending.extend_from_slice(chunk);
        let mut start = 0;
        let mut from = self.scanned;
        while let Some(end) = record_end(&self.pending, from, self.csv, &mut self.quoted) {
            let record = &self.pending[start..end];
            if !record.is_empty() {
                each(record)?;
            }
            start = end.saturating_add(1);
            from = start;
        }
        self.pending.drain(..start);
        self.scanned = self.pending.len();
        Ok(())
    }

    /// The end of the file: a last record without a line feed, if any.
    pub fn finish<E>(self, each: impl FnOnce(&[u8]) -> Result<(), E>) -> Result<(), E> {
        if self.pending.is_empty() {
            Ok(())
        } else {
            each(&self.pending)
        }
    }
}

/// The export's columns in file order, with what each holds: the list the
/// export's SQL is made from, so a column added to the export is read here
/// too. `occurred_at_utc` is read and left (it is for people); the
/// `content_hash` cell is kept beside the row, which recomputes it.
fn columns() -> impl Iterator<Item = (&'static str, ExportCell)> {
    EXPORT_COLUMNS.iter().map(|(name, _, cell)| (*name, *cell))
}

/// Turns the records of an events file into rows, in order.
pub struct RowReader {
    format: ExportFormat,
    /// CSV: where each column is, from the header (the first record).
    header: Option<Header>,
}

struct Header {
    /// Each export column, what it holds and its field in a record.
    at: Vec<(&'static str, ExportCell, usize)>,
    width: usize,
}

impl RowReader {
    pub fn new(format: ExportFormat) -> RowReader {
        RowReader {
            format,
            header: None,
        }
    }

    /// The row a record holds, with its content hash cell (what `attest
    /// verify` checks); `None` for CSV's header record.
    pub fn read(&mut self, record: &[u8]) -> Result<Option<ExportedRow>, RowError> {
        match (self.format, &self.header) {
            (ExportFormat::Ndjson, _) => {
                let row = ndjson_row(record)?;
                // Parsed a second time for the one cell rather than
                // through `#[serde(flatten)]`, which buffers every value
                // of the line first.
                let ContentHashCell { content_hash } =
                    serde_json::from_slice(record).map_err(json_error)?;
                Ok(Some(ExportedRow { row, content_hash }))
            }
            _ => self.read_csv(record),
        }
    }

    /// The row a record holds, without its content hash cell: what the
    /// bundle needs to locate it, NDJSON parsed once.
    pub fn read_row(&mut self, record: &[u8]) -> Result<Option<EventRow>, RowError> {
        match self.format {
            ExportFormat::Ndjson => ndjson_row(record).map(Some),
            ExportFormat::Csv => Ok(self.read_csv(record)?.map(|read| read.row)),
        }
    }

    fn read_csv(&mut self, record: &[u8]) -> Result<Option<ExportedRow>, RowError> {
        match &self.header {
            None => {
                self.header = Some(header(&csv_fields(record)?)?);
                Ok(None)
            }
            Some(header) => csv_row(header, &csv_fields(record)?).map(Some),
        }
    }
}

fn json_error(e: serde_json::Error) -> RowError {
    RowError::Json(e.to_string())
}

fn ndjson_row(record: &[u8]) -> Result<EventRow, RowError> {
    serde_json::from_slice(record).map_err(json_error)
}

fn header(names: &[String]) -> Result<Header, RowError> {
    let at = columns()
        .map(|(column, cell)| {
            names
                .iter()
                .position(|n| n == column)
                .map(|i| (column, cell, i))
                .ok_or(RowError::MissingColumn(column))
        })
        .collect::<Result<_, _>>()?;
    Ok(Header {
        at,
        width: names.len(),
    })
}

/// A CSV record as the JSON object its NDJSON line would be (each cell by
/// what its column holds), then read into a row as NDJSON is: one mapping
/// from the export's names to the row's fields for both formats.
fn csv_row(header: &Header, fields: &[String]) -> Result<ExportedRow, RowError> {
    if fields.len() != header.width {
        return Err(RowError::Width {
            found: fields.len(),
            expected: header.width,
        });
    }
    let mut object = serde_json::Map::with_capacity(header.at.len());
    for &(column, cell, i) in &header.at {
        let text = fields.get(i).map_or("", String::as_str);
        let value = match cell {
            ExportCell::Text => Value::from(unneutralise(text)),
            ExportCell::Number => Value::from(number::<i64>(text, column)?),
            ExportCell::Array => {
                Value::from(array_literal(text).map_err(|why| RowError::Cell {
                    column,
                    why: why.into(),
                })?)
            }
        };
        object.insert(column.to_owned(), value);
    }
    // The header has every export column, and this one is text.
    let content_hash = object
        .get("content_hash")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    // A number out of its field's range (a negative `schema_id`) is named
    // by the column the deserializer stopped at.
    let row = serde_path_to_error::deserialize(Value::Object(object)).map_err(|e| {
        let path = e.path().to_string();
        match header.at.iter().find(|(column, _, _)| *column == path) {
            Some(&(column, _, _)) => RowError::Cell {
                column,
                why: e.into_inner().to_string(),
            },
            None => RowError::Json(e.to_string()),
        }
    })?;
    Ok(ExportedRow { row, content_hash })
}

/// The stored text of a CSV text cell: the export added one `'` to every
/// text starting with `'` or a formula character
/// (`store::search::sql::csv_export_sql`), so one leading `'` is taken off.
pub fn unneutralise(cell: &str) -> &str {
    cell.strip_prefix('\'').unwrap_or(cell)
}

/// An optional `-` and decimal digits, nothing else (`parse` would take a
/// `+` too, which ClickHouse never writes).
fn number<T: std::str::FromStr>(cell: &str, column: &'static str) -> Result<T, RowError> {
    let digits = cell.strip_prefix('-').unwrap_or(cell);
    let parsed = (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| cell.parse().ok())
        .flatten();
    parsed.ok_or_else(|| RowError::Cell {
        column,
        why: format!("{cell:?} is not a number"),
    })
}

/// The fields of one CSV record (RFC 4180): a field in double quotes holds
/// any bytes up to its closing quote, a doubled quote standing for one; an
/// unquoted field runs to the next comma and holds no quote.
fn csv_fields(record: &[u8]) -> Result<Vec<String>, RowError> {
    let mut fields = Vec::new();
    let mut bytes = record.iter().copied().peekable();
    loop {
        let mut value = Vec::new();
        if bytes.peek() == Some(&b'"') {
            bytes.next();
            loop {
                match bytes.next() {
                    None => return Err(RowError::Csv("a quoted field is not closed")),
                    Some(b'"') if bytes.peek() == Some(&b'"') => {
                        bytes.next();
                        value.push(b'"');
                    }
                    Some(b'"') => break,
                    Some(b) => value.push(b),
                }
            }
        } else {
            while let Some(b) = bytes.next_if(|b| *b != b',') {
                if b == b'"' {
                    return Err(RowError::Csv("a quote inside an unquoted field"));
                }
                value.push(b);
            }
        }
        fields.push(String::from_utf8(value).map_err(|_| RowError::Csv("a field is not UTF-8"))?);
        match bytes.next() {
            None => return Ok(fields),
            Some(b',') => {}
            Some(_) => return Err(RowError::Csv("text after a closing quote")),
        }
    }
}

/// ClickHouse's text form of an `Array(String)`, as its CSV cell holds it:
/// `[`, then the elements separated by `,` (no spaces), `]`. Each element
/// is in single quotes, with a backslash before each of `\b \f \n \r \t
/// \0` (as those letters), `\` and `'`; every other byte stands for
/// itself. `[]` is the empty array.
pub fn array_literal(cell: &str) -> Result<Vec<String>, &'static str> {
    let inner = cell
        .strip_prefix('[')
        .and_then(|c| c.strip_suffix(']'))
        .ok_or("an array is not in [ ]")?;
    let mut elements = Vec::new();
    if inner.is_empty() {
        return Ok(elements);
    }
    let mut bytes = inner.bytes();
    loop {
        if bytes.next() != Some(b'\'') {
            return Err("an array element does not start with '");
        }
        let mut value = Vec::new();
        loop {
            match bytes.next() {
                None => return Err("an array element is not closed"),
                Some(b'\'') => break,
                Some(b'\\') => value.push(match bytes.next() {
                    Some(b'b') => 0x08,
                    Some(b'f') => 0x0c,
                    Some(b'n') => b'\n',
                    Some(b'r') => b'\r',
                    Some(b't') => b'\t',
                    Some(b'0') => 0,
                    Some(b'\\') => b'\\',
                    Some(b'\'') => b'\'',
                    _ => return Err("an unknown escape in an array element"),
                }),
                Some(b) => value.push(b),
            }
        }
        elements.push(String::from_utf8(value).map_err(|_| "an array element is not UTF-8")?);
        match bytes.next() {
            None => return Ok(elements),
            Some(b',') => {}
            Some(_) => return Err("text after an array element"),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::integrity::leaf::Sealed;

    #[test]
    fn csv_records_end_outside_quotes_wherever_the_chunks_are_cut() {
        let file = b"\"h1\",\"h2\"\n\"a\nb\",1\n\"c\"\"\n\",2\n\n\"last\",3";
        let whole: Vec<&[u8]> = records(file, ExportFormat::Csv).collect();
        assert_eq!(
            whole,
            [
                &b"\"h1\",\"h2\""[..],
                b"\"a\nb\",1",
                b"\"c\"\"\n\",2",
                b"\"last\",3"
            ]
        );
        for cut in 0..file.len() {
            for size in [1, 2, 5] {
                let mut splitter = RecordSplitter::new(ExportFormat::Csv);
                let mut got: Vec<Vec<u8>> = Vec::new();
                let (head, tail) = file.split_at(cut);
                for chunk in head.chunks(size).chain(tail.chunks(size + 1)) {
                    splitter
                        .push(chunk, |r| {
                            got.push(r.to_vec());
                            Ok::<_, ()>(())
                        })
                        .unwrap();
                }
                splitter
                    .finish(|r| {
                        got.push(r.to_vec());
                        Ok::<_, ()>(())
                    })
                    .unwrap();
                assert_eq!(got, whole, "cut at {cut}, chunks of {size}");
            }
        }
        // NDJSON has no quoting: a quote in a line is just a byte.
        let lines: Vec<&[u8]> = records(b"{\"a\":\"\\\"\"}\n{}\n", ExportFormat::Ndjson).collect();
        assert_eq!(lines, [&b"{\"a\":\"\\\"\"}"[..], b"{}"]);
    }

    #[test]
    fn csv_fields_are_rfc_4180() {
        assert_eq!(
            csv_fields(b"\"a,b\",12,-3,\"say \"\"hi\"\"\",\"\",\"x\ny\"").unwrap(),
            ["a,b", "12", "-3", "say \"hi\"", "", "x\ny"]
        );
        assert_eq!(csv_fields(b"1,").unwrap(), ["1", ""]);
        assert_eq!(csv_fields(b"\"\xc3\xbc\"").unwrap(), ["ü"]);
        assert!(csv_fields(b"\"open").is_err());
        assert!(csv_fields(b"\"a\"b").is_err());
        assert!(csv_fields(b"a\"b").is_err());
        assert!(csv_fields(b"\"\xff\"").is_err());
    }

    #[test]
    fn array_literals_read_back_every_byte() {
        assert_eq!(array_literal("[]").unwrap(), Vec::<String>::new());
        assert_eq!(array_literal("['']").unwrap(), [""]);
        assert_eq!(
            array_literal(r#"['a\'b','c,d','e\nf','g\\h','ü€😀','t\tab','\'=x','=y','q"q','[x]']"#)
                .unwrap(),
            [
                "a'b",
                "c,d",
                "e\nf",
                "g\\h",
                "ü€😀",
                "t\tab",
                "'=x",
                "=y",
                "q\"q",
                "[x]"
            ]
        );
        assert_eq!(
            array_literal(r"['\r\0\b\f','x\',\'y']").unwrap(),
            ["\r\0\u{8}\u{c}", "x','y"]
        );
        for (bad, why) in [
            ("", "an array is not in [ ]"),
            ("['a'", "an array is not in [ ]"),
            ("['a']x", "an array is not in [ ]"),
            ("['a' ,'b']", "text after an array element"),
            ("['a'x]", "text after an array element"),
            ("['a',]", "an array element does not start with '"),
            ("[a]", "an array element does not start with '"),
            (r"['\x41']", "an unknown escape in an array element"),
            (r"['a\']", "an array element is not closed"),
        ] {
            assert_eq!(array_literal(bad), Err(why), "{bad}");
        }
    }

    /// The bytes ClickHouse 18.16 and 26.5 (chdb) both write for
    /// `SELECT 'x"y' AS s, [...] AS arr, toInt64(-5), toUInt32(7), 'a\nb',
    /// []` in CSVWithNames: the reading is held to the real thing.
    #[test]
    fn what_clickhouse_writes_reads_back() {
        let file = b"\"s\",\"arr\",\"n\",\"u\",\"nl\",\"empty\"\n\"x\"\"y\",\"['a\\'b','c,d','e\\nf','g\\\\h','\xc3\xbc\xe2\x82\xac\xf0\x9f\x98\x80','t\\tab','\\'=x','=y','q\"\"q','cr\\r','\\0nul','\x01ctl','\x7fdel','\\bbs\\ffeed','[x]','']\",-5,7,\"a\nb\",\"[]\"\n";
        let rows: Vec<&[u8]> = records(file, ExportFormat::Csv).collect();
        assert_eq!(rows.len(), 2);
        let fields = csv_fields(rows[1]).unwrap();
        assert_eq!(fields[0], "x\"y");
        assert_eq!(
            array_literal(&fields[1]).unwrap(),
            [
                "a'b",
                "c,d",
                "e\nf",
                "g\\h",
                "ü€😀",
                "t\tab",
                "'=x",
                "=y",
                "q\"q",
                "cr\r",
                "\0nul",
                "\u{1}ctl",
                "\u{7f}del",
                "\u{8}bs\u{c}feed",
                "[x]",
                ""
            ]
        );
        assert_eq!(number::<i64>(&fields[2], "n"), Ok(-5));
        assert_eq!(number::<u32>(&fields[3], "u"), Ok(7));
        assert_eq!(fields[4], "a\nb");
        assert_eq!(array_literal(&fields[5]).unwrap(), Vec::<String>::new());
    }

    #[test]
    fn text_cells_lose_exactly_one_added_quote() {
        assert_eq!(unneutralise("'=SUM(1)"), "=SUM(1)");
        assert_eq!(unneutralise("''=x"), "'=x");
        assert_eq!(unneutralise("'"), "");
        assert_eq!(unneutralise("plain"), "plain");
        assert_eq!(unneutralise("a'b"), "a'b");
    }

    #[test]
    fn numbers_are_digits_only() {
        assert_eq!(number::<i64>("-5", "n"), Ok(-5));
        assert_eq!(number::<u32>("7", "n"), Ok(7));
        for bad in ["", "-", "+5", " 5", "5 ", "1_0", "1e3", "\"5\""] {
            assert!(number::<i64>(bad, "n").is_err(), "{bad:?}");
        }
        assert!(number::<u32>("-1", "n").is_err());
    }

    /// The reader finds every column of the export, in the export's order
    /// and with the export's kinds, and the file ClickHouse writes (as the
    /// fixture below has it) names the same columns in the same order.
    #[test]
    fn the_reader_reads_the_exports_columns_in_order() {
        let file = csv_like_clickhouse(&[]);
        let names = csv_fields(file.trim_end().as_bytes()).unwrap();
        let reader: Vec<(&str, ExportCell)> = header(&names)
            .unwrap()
            .at
            .iter()
            .enumerate()
            .map(|(i, &(column, cell, at))| {
                assert_eq!(at, i, "{column} is not where the export puts it");
                (column, cell)
            })
            .collect();
        let export: Vec<(&str, ExportCell)> = EXPORT_COLUMNS
            .iter()
            .map(|(name, _, cell)| (*name, *cell))
            .collect();
        assert_eq!(reader, export);
        assert_eq!(names, export.iter().map(|(n, _)| *n).collect::<Vec<_>>());
        // Every column is required, the two a leaf does not need included.
        for (i, column) in names.iter().enumerate() {
            let mut without = names.clone();
            without.remove(i);
            assert_eq!(
                header(&without).err(),
                Some(RowError::MissingColumn(EXPORT_COLUMNS[i].0)),
                "{column}"
            );
        }
    }

    /// What the CSV export writes for a row: the SQL's neutralising, then
    /// ClickHouse's CSVWithNames (the integration test holds the real
    /// ClickHouse to the same reading, server/tests/export_proofs.rs).
    pub(crate) fn csv_like_clickhouse(rows: &[EventRow]) -> String {
        fn quoted(s: &str) -> String {
            format!("\"{}\"", s.replace('"', "\"\""))
        }
        fn text(s: &str) -> String {
            if s.starts_with(['=', '+', '-', '@', '\t', '\r', '\'']) {
                quoted(&format!("'{s}"))
            } else {
                quoted(s)
            }
        }
        fn array(values: &[String]) -> String {
            let elements: Vec<String> = values
                .iter()
                .map(|v| {
                    let mut e = String::from("'");
                    for c in v.chars() {
                        match c {
                            '\u{8}' => e.push_str("\\b"),
                            '\u{c}' => e.push_str("\\f"),
                            '\n' => e.push_str("\\n"),
                            '\r' => e.push_str("\\r"),
                            '\t' => e.push_str("\\t"),
                            '\0' => e.push_str("\\0"),
                            '\\' => e.push_str("\\\\"),
                            '\'' => e.push_str("\\'"),
                            c => e.push(c),
                        }
                    }
                    e.push('\'');
                    e
                })
                .collect();
            quoted(&format!("[{}]", elements.join(",")))
        }
        let mut out = String::from(
            "\"event_id\",\"tenant_id\",\"occurred_at\",\"occurred_at_utc\",\"received_at\",\
             \"category\",\"action\",\"outcome\",\"actor_id\",\"actor_type\",\"actor_ip\",\
             \"actor_user_agent\",\"resource_type\",\"resource_id\",\"source_service\",\
             \"request_id\",\"metadata_key\",\"metadata_value\",\"schema_id\",\
             \"kafka_partition\",\"kafka_offset\",\"content_hash\"\n",
        );
        for r in rows {
            let cells = [
                text(&r.event_id),
                text(&r.tenant_id),
                r.occurred_at.to_string(),
                text("1970-01-01 00:00:00.000"),
                r.received_at.to_string(),
                text(&r.category),
                text(&r.action),
                text(&r.outcome),
                text(&r.actor_id),
                text(&r.actor_type),
                text(&r.actor_ip),
                text(&r.actor_user_agent),
                text(&r.resource_type),
                text(&r.resource_id),
                text(&r.source_service),
                text(&r.request_id),
                array(&r.metadata_key),
                array(&r.metadata_value),
                r.schema_id.to_string(),
                r.kafka_partition.to_string(),
                r.kafka_offset.to_string(),
                text(&Sealed::from(r).content_hash()),
            ];
            out.push_str(&cells.join(","));
            out.push('\n');
        }
        out
    }

    /// Values that test every rule: formula characters, an added quote, a
    /// quote already there, CSV's quotes, commas and line feeds, and every
    /// escape of an array literal.
    pub(crate) fn tricky_row(i: i64) -> EventRow {
        let s = String::from;
        EventRow {
            event_id: format!("-e{i}"),
            tenant_id: s("acme"),
            occurred_at: 1_795_435_200_123 + i,
            received_at: 1_795_435_200_456,
            category: s("authentication"),
            action: s("'=already.quoted"),
            outcome: s("success"),
            actor_id: s("=HYPERLINK(\"http://evil.example\",\"x\")"),
            actor_type: s("'"),
            actor_ip: s(""),
            actor_user_agent: s("\tMozilla \"5.0\",\r\nline two \\ ü€😀"),
            resource_type: s("@SUM(1+1)"),
            resource_id: s("a,b;'c'"),
            source_service: s("+svc"),
            request_id: s("-2+3"),
            metadata_key: vec![s("k'1"), s("k,2"), s("['k3']"), s("")],
            metadata_value: vec![
                s("'=v"),
                s("line\nfeed\ttab\rcr\0nul\u{8}bs\u{c}ff"),
                s("back\\slash \"quote\" 😀"),
                s("=1+1"),
            ],
            schema_id: 3,
            kafka_partition: 1,
            kafka_offset: 42 + i,
        }
    }

    fn read_all(file: &str) -> Result<Vec<ExportedRow>, RowError> {
        let mut reader = RowReader::new(ExportFormat::Csv);
        let mut rows = Vec::new();
        for record in records(file.as_bytes(), ExportFormat::Csv) {
            if let Some(row) = reader.read(record)? {
                rows.push(row);
            }
        }
        Ok(rows)
    }

    #[test]
    fn a_csv_export_reads_back_as_the_stored_rows() {
        let stored = vec![tricky_row(0), tricky_row(1)];
        let file = csv_like_clickhouse(&stored);
        assert!(file.contains(r#""'=HYPERLINK(""http://evil.example"",""x"")""#));
        assert!(file.contains(r#""''=already.quoted""#), "{file}");
        assert!(
            file.contains(
                r#""['\'=v','line\nfeed\ttab\rcr\0nul\bbs\fff','back\\slash ""quote"" 😀','=1+1']""#
            ),
            "{file}"
        );
        // EventRow has no PartialEq: compare what it serializes to.
        let json = |rows: &[EventRow]| serde_json::to_value(rows).unwrap();
        let read = read_all(&file).unwrap();
        let rows: Vec<EventRow> = read.iter().map(|r| r.row.clone()).collect();
        assert_eq!(json(&rows), json(&stored));
        // The content hash cell is kept beside the row.
        for (r, s) in read.iter().zip(&stored) {
            assert_eq!(r.content_hash, Sealed::from(s).content_hash());
        }

        let mut reader = RowReader::new(ExportFormat::Csv);
        let header = file.lines().next().unwrap();
        assert!(matches!(reader.read(header.as_bytes()), Ok(None)));
        assert_eq!(
            reader.read(b"\"x\",1").unwrap_err(),
            RowError::Width {
                found: 2,
                expected: 22
            }
        );
        let broken = file.replacen("['k\\'1'", "['k\\q1'", 1);
        assert_eq!(
            read_all(&broken).unwrap_err(),
            RowError::Cell {
                column: "metadata_key",
                why: "an unknown escape in an array element".into()
            }
        );
        assert_eq!(
            RowReader::new(ExportFormat::Csv)
                .read(b"\"event_id\"")
                .unwrap_err(),
            RowError::MissingColumn("tenant_id")
        );
        // Digits out of their field's range name the field.
        let negative = file.replacen(",3,1,42,", ",-3,1,42,", 1);
        assert!(
            matches!(
                read_all(&negative).unwrap_err(),
                RowError::Cell { column: "schema_id", ref why } if why.contains("-3")
            ),
            "{negative}"
        );
    }
}
