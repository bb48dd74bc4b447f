//! The SQL text of the search queries. The text depends only on the shape
//! of a search (tenant or not, cursor or not, which side of the snapshot,
//! the order of pages) and on the compiled query's fixed text; every value,
//! the analyst's included, is a bound `?`.

use app::query::{Compiled, Param};
use app::search_state::{Cursor, Sort, SortColumn, SortDir};

/// Columns of [`app::search_model::SearchHit`] but its metadata, in its
/// field order (RowBinary is positional).
const HIT_FIELDS: &str = "event_id, tenant_id, occurred_at, received_at, category, \
     action, outcome, actor_id, actor_type, actor_ip, actor_user_agent, resource_type, \
     resource_id, source_service, request_id, content_hash";

/// The hit's metadata: the entries whose key is in the bound array of
/// keys, as `(key, value)` pairs in the event's order. Only the keys the
/// page shows as columns travel: an event may carry 64 entries of up to
/// 8 KiB each (ingest's limits), so all of them for 100 rows could be
/// megabytes, where the chosen ones are a few short values. ClickHouse
/// reads the metadata arrays of every matching row in the window to sort
/// them (18.16 does not read late), which is what a `metadata.` term in
/// the query costs too; without metadata columns the arrays are not read.
const HIT_METADATA: &str = "arrayFilter(e -> has(?, tupleElement(e, 1)), \
     arrayMap((k, v) -> (k, v), metadata.key, metadata.value)) AS hit_metadata";

/// No metadata asked for: an empty array of the same type, reading no
/// column.
const NO_HIT_METADATA: &str = "arrayFilter(e -> 0, [('', '')]) AS hit_metadata";

/// Every column of a [`app::search_model::SearchHit`], in its field order.
/// With `metadata`, the SQL has one `?` before all others: the array of
/// metadata keys to carry.
pub(crate) fn hit_columns(metadata: bool) -> String {
    let entries = if metadata {
        HIT_METADATA
    } else {
        NO_HIT_METADATA
    };
    format!("{HIT_FIELDS}, {entries}")
}

/// An event's identity (docs/DESIGN.md, "Event identity"): the id is chosen
/// by each tenant, and two events sent with one id are two events unless
/// their content is the same. Every query that dedupes or counts uses it.
///
/// The identity is (tenant, id, content hash), and the content hash alone
/// names it: the hash's input begins with the event id and the tenant,
/// each length-prefixed (migration 0009), so two identities sharing a hash
/// would be a SHA-256 collision, which the integrity seals already rely on
/// never meeting. Keying on one column instead of three makes every count
/// about 1.5 times faster over months (docs/DESIGN.md, "Dashboard"); the
/// integration tests count the three columns and must agree.
pub(crate) const IDENTITY: &str = "content_hash";

/// The default page order, newest first; the identity breaks ties, so
/// every row has one place and the cursor can name it.
#[cfg(test)]
pub(crate) const PAGE_ORDER: &str =
    "occurred_at DESC, event_id DESC, tenant_id DESC, content_hash DESC";

/// What breaks ties under every order: the newest first, then the
/// identity, as the default order has always done.
const TIE_BREAK: [(&str, SortDir); 4] = [
    ("occurred_at", SortDir::Desc),
    ("event_id", SortDir::Desc),
    ("tenant_id", SortDir::Desc),
    ("content_hash", SortDir::Desc),
];

/// What a sorted column orders by: the stored column it shows, or for
/// the resource the `type/id` the page shows (`SearchHit::sort_value`
/// builds the same text for the cursor). Every one is part of the
/// event's content, so all stored copies of one event share it and
/// `LIMIT 1 BY` the identity keeps the event in one place.
pub(crate) fn sort_expr(column: SortColumn) -> &'static str {
    match column {
        SortColumn::Time => "occurred_at",
        SortColumn::Tenant => "tenant_id",
        SortColumn::Category => "category",
        SortColumn::Action => "action",
        SortColumn::Outcome => "outcome",
        SortColumn::Actor => "actor_id",
        SortColumn::ActorType => "actor_type",
        SortColumn::Ip => "actor_ip",
        SortColumn::UserAgent => "actor_user_agent",
        SortColumn::Resource => "concat(resource_type, '/', resource_id)",
        SortColumn::Source => "source_service",
        SortColumn::RequestId => "request_id",
        SortColumn::EventId => "event_id",
    }
}

/// The keys of a page order, most significant first: the sorted column,
/// then [`TIE_BREAK`] (whose first key is the sorted one for time).
fn order_keys(sort: Sort) -> Vec<(&'static str, SortDir)> {
    let mut keys = vec![(sort_expr(sort.column), sort.dir)];
    let rest = match sort.column {
        SortColumn::Time => &TIE_BREAK[1..],
        _ => &TIE_BREAK[..],
    };
    keys.extend_from_slice(rest);
    keys
}

/// The ORDER BY of pages and exports under `sort`.
pub(crate) fn page_order(sort: Sort) -> String {
    let keys: Vec<String> = order_keys(sort)
        .into_iter()
        .map(|(expr, dir)| {
            let dir = match dir {
                SortDir::Asc => "ASC",
                SortDir::Desc => "DESC",
            };
            format!("{expr} {dir}")
        })
        .collect();
    keys.join(", ")
}

/// Rows strictly after the cursor's in [`page_order`]: for keys k1…kn,
/// `(k1 after ? OR (k1 = ? AND (…(kn after ?))))`, each key but the last
/// bound twice. Written out, as the default order's always was, rather
/// than as a tuple comparison, which cannot mix directions (a text column
/// ascending, then the newest first).
fn after_cursor(keys: &[(&str, SortDir)]) -> String {
    let op = |dir: SortDir| match dir {
        SortDir::Asc => ">",
        SortDir::Desc => "<",
    };
    match keys {
        [] => "1".to_owned(),
        [(expr, dir)] => format!("{expr} {} ?", op(*dir)),
        [(expr, dir), rest @ ..] => {
            let inner = after_cursor(rest);
            format!("({expr} {} ? OR ({expr} = ? AND {inner}))", op(*dir))
        }
    }
}

/// Which events of the window a query counts, relative to the snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Arrival {
    /// Received up to the snapshot: the pages of one search.
    UpToSnapshot,
    /// Received after it: the "newer events" notice.
    AfterSnapshot,
}

/// What decides the text of a search's WHERE clause.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Shape {
    /// How many tenants it is narrowed to; 0 for every tenant.
    pub tenants: usize,
    /// The order of the page the cursor is on, if there is a cursor.
    pub cursor: Option<Sort>,
    pub arrival: Arrival,
}

/// Everything after `FROM audit_events` that selects a search's rows, `expr`
/// being the compiled query. The `event_time` bounds let ClickHouse skip
/// month partitions outside the window; the `occurred_at` bounds are the
/// exact window. The query's own conditions go in PREWHERE: ClickHouse then
/// reads only their columns for every row of the window, and the wide
/// columns (user agent, metadata) only for the rows that match. Its own
/// choice of PREWHERE picks a cheap key condition instead, which narrows
/// nothing once the primary key has. PREWHERE is AND with WHERE, so the
/// rows are the same; the values of `expr` come first, in text order.
pub(crate) fn where_sql(shape: Shape, expr: &str) -> String {
    let mut sql = String::new();
    if expr != MATCH_ALL {
        sql.push_str("PREWHERE ");
        sql.push_str(expr);
        sql.push(' ');
    }
    sql.push_str(
        "WHERE event_time >= toDateTime(?, 'UTC') AND event_time <= toDateTime(?, 'UTC') \
         AND occurred_at >= ? AND occurred_at <= ?",
    );
    sql.push_str(match shape.arrival {
        Arrival::UpToSnapshot => " AND received_at <= ?",
        Arrival::AfterSnapshot => " AND received_at > ?",
    });
    sql.push_str(&crate::store::queries::tenant_condition(shape.tenants));
    if let Some(sort) = shape.cursor {
        sql.push_str(" AND ");
        sql.push_str(&after_cursor(&order_keys(sort)));
    }
    sql
}

/// What an empty query compiles to.
const MATCH_ALL: &str = "1";

/// A search's PREWHERE and WHERE clauses and their values, in placeholder
/// order.
pub(crate) struct Filter {
    pub sql: String,
    pub params: Vec<Param>,
}

/// The time a search covers and which arrivals it counts.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Span {
    pub from_ms: i64,
    pub to_ms: i64,
    pub arrival: Arrival,
    /// The snapshot the arrival is measured against.
    pub snapshot_ms: i64,
}

impl Filter {
    /// `tenants` empty: every tenant.
    pub fn new(
        compiled: &Compiled,
        tenants: &[String],
        span: Span,
        cursor: Option<&Cursor>,
    ) -> Filter {
        let shape = Shape {
            tenants: tenants.len(),
            cursor: cursor.map(|c| c.sort),
            arrival: span.arrival,
        };
        // The query's values first: its conditions stand first, in PREWHERE.
        let mut params: Vec<Param> = if compiled.sql == MATCH_ALL {
            Vec::new()
        } else {
            compiled.params.clone()
        };
        params.extend([
            Param::Int(epoch_seconds(span.from_ms)),
            Param::Int(epoch_seconds(span.to_ms)),
            Param::Int(span.from_ms),
            Param::Int(span.to_ms),
            Param::Int(span.snapshot_ms),
        ]);
        params.extend(tenants.iter().map(|t| Param::Str(t.clone())));
        if let Some(c) = cursor {
            params.extend(cursor_values(c));
        }
        Filter {
            sql: where_sql(shape, &compiled.sql),
            params,
        }
    }
}

/// The cursor's values in [`after_cursor`]'s placeholder order: each key's
/// value, twice but for the last key's.
fn cursor_values(c: &Cursor) -> Vec<Param> {
    // [`order_keys`]: the sorted column's value unless it is time, then
    // the tie-break's.
    let mut keyed = Vec::with_capacity(TIE_BREAK.len() + 1);
    if c.sort.column != SortColumn::Time {
        // `Cursor::decode` gives every cursor of a column but time its
        // value, and the store writes it.
        keyed.push(Param::Str(c.value.clone().unwrap_or_default()));
    }
    keyed.extend([
        Param::Int(c.occurred_at),
        Param::Str(c.event_id.clone()),
        Param::Str(c.tenant_id.clone()),
        Param::Str(c.content_hash.clone()),
    ]);
    let last = keyed.len().saturating_sub(1);
    let mut values = Vec::with_capacity(keyed.len() * 2);
    for (index, value) in keyed.into_iter().enumerate() {
        if index < last {
            values.push(value.clone());
        }
        values.push(value);
    }
    values
}

/// `event_time` is a `DateTime`, an unsigned 32-bit count of seconds: a
/// bound outside it would wrap around and skip the wrong partitions. Events
/// are from the year 2000 on, so clamping loses nothing.
pub(crate) fn epoch_seconds(ms: i64) -> i64 {
    ms.div_euclid(1000).clamp(0, i64::from(u32::MAX))
}

/// In `sort`'s order (newest first by default). `LIMIT 1 BY` the identity
/// hides the copies a re-delivered batch left before ReplacingMergeTree
/// merged them, and nothing else. One row more than the page tells whether
/// there is a next page.
pub(crate) fn page_sql(filter: &str, metadata: bool, sort: Sort) -> String {
    format!(
        "SELECT {} FROM audit_events {filter} \
         ORDER BY {} \
         LIMIT 1 BY {IDENTITY} \
         LIMIT ?",
        hit_columns(metadata),
        page_order(sort)
    )
}

/// The live tail (`app::tail`): a search's rows received after a moment
/// and past a position of Kafka offsets. The position is bound as two
/// arrays, next offsets and their `category/partition` keys; a row of a
/// partition the position does not name finds index 0, whose element is
/// 0, so all of it is new. Then the writers' committed offsets, bound the
/// same way (`app::tail::Delivered`): only rows below them, all of whose
/// predecessors are in the table too; a partition without a commit finds
/// 0 and is not read yet. In offset order, so a full poll is a prefix of
/// each partition and the next one continues it. No `LIMIT 1 BY`: every
/// copy moves the position on, and `TailPosition::accept` drops repeats.
pub(crate) fn tail_sql(filter: &str, metadata: bool) -> String {
    format!(
        concat!(
            "SELECT {}, kafka_partition, kafka_offset FROM audit_events {filter} \
             AND kafka_offset >= arrayElement(?, indexOf(?, concat(category, '/', toString(kafka_partition)))) \
             AND ",
            below_committed!(),
            " ORDER BY kafka_offset, category, kafka_partition LIMIT ?"
        ),
        hit_columns(metadata),
        filter = filter,
    )
}

/// Distinct events, whatever copies are stored.
pub(crate) fn count_sql(filter: &str) -> String {
    format!("SELECT uniqExact({IDENTITY}) AS events FROM audit_events {filter}")
}

/// Top values of every facet field in one pass: each matching row is
/// unfolded into one `(field, value)` pair per field, then counted per pair.
pub(crate) fn facets_sql(filter: &str) -> String {
    use app::search_model::FacetField;
    let columns: Vec<&str> = FacetField::ALL.iter().map(|f| f.column()).collect();
    let pairs: Vec<String> = columns.iter().map(|c| format!("('{c}', {c})")).collect();
    format!(
        "SELECT tupleElement(facet, 1) AS field, tupleElement(facet, 2) AS value, \
         uniqExact({IDENTITY}) AS events \
         FROM (SELECT {IDENTITY}, {} FROM audit_events {filter}) \
         ARRAY JOIN [{}] AS facet \
         GROUP BY field, value \
         ORDER BY field, events DESC, value \
         LIMIT ? BY field",
        columns.join(", "),
        pairs.join(", ")
    )
}

/// The most frequent values of one facet field, ties by value; then the
/// limit. Empty values are counted too, as the facets count them.
pub(crate) fn count_by_sql(field: app::search_model::FacetField, filter: &str) -> String {
    let column = field.column();
    format!(
        "SELECT {column} AS value, uniqExact({IDENTITY}) AS events \
         FROM audit_events {filter} \
         GROUP BY value \
         ORDER BY events DESC, value \
         LIMIT ?"
    )
}

/// Columns of the detail row, in its field order.
pub(crate) const DETAIL_COLUMNS: &str = "event_id, tenant_id, occurred_at, received_at, \
     category, action, outcome, actor_id, actor_type, actor_ip, actor_user_agent, \
     resource_type, resource_id, source_service, request_id, metadata.key, metadata.value, \
     schema_id, kafka_partition, kafka_offset, content_hash";

/// Every event of a tenant sent with one id, each content once, first
/// received first. It reads the tenant's ids in every month rather than
/// the one the event is in, because a conflicting event may carry any
/// time: the page must show them all.
pub(crate) fn detail_sql() -> String {
    format!(
        "SELECT {DETAIL_COLUMNS} FROM audit_events \
         WHERE tenant_id = ? AND event_id = ? \
         ORDER BY received_at, content_hash \
         LIMIT 1 BY content_hash \
         LIMIT ?"
    )
}

/// `occurred_at` as the console shows it, `YYYY-MM-DD HH:MM:SS.mmm` UTC,
/// with functions 18.16 has (no DateTime64 there).
const UTC_TEXT: &str = "concat(toString(toDateTime(intDiv(occurred_at, 1000), 'UTC')), '.', \
     substring(toString(1000 + occurred_at % 1000), 2, 3))";

/// What a column of an export holds, which decides how CSV writes it (and
/// how `attest verify` reads it back, `integrity::export_rows`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cell {
    /// A string: CSV quotes it and neutralises formulas ([`csv_export_sql`]).
    Text,
    /// An integer: written as decimal digits, unquoted.
    Number,
    /// `Array(String)`: one quoted CSV field holding the array literal.
    Array,
}

/// The columns of an export, in file order: the name in the file, what it
/// is read from, and what it holds. The one list: the export's SQL is made
/// from it, and the verifier reads an exported file back by it.
pub(crate) const EXPORT_COLUMNS: [(&str, &str, Cell); 22] = [
    ("event_id", "event_id", Cell::Text),
    ("tenant_id", "tenant_id", Cell::Text),
    ("occurred_at", "occurred_at", Cell::Number),
    ("occurred_at_utc", UTC_TEXT, Cell::Text),
    ("received_at", "received_at", Cell::Number),
    ("category", "category", Cell::Text),
    ("action", "action", Cell::Text),
    ("outcome", "outcome", Cell::Text),
    ("actor_id", "actor_id", Cell::Text),
    ("actor_type", "actor_type", Cell::Text),
    ("actor_ip", "actor_ip", Cell::Text),
    ("actor_user_agent", "actor_user_agent", Cell::Text),
    ("resource_type", "resource_type", Cell::Text),
    ("resource_id", "resource_id", Cell::Text),
    ("source_service", "source_service", Cell::Text),
    ("request_id", "request_id", Cell::Text),
    ("metadata_key", "metadata.key", Cell::Array),
    ("metadata_value", "metadata.value", Cell::Array),
    ("schema_id", "schema_id", Cell::Number),
    ("kafka_partition", "kafka_partition", Cell::Number),
    ("kafka_offset", "kafka_offset", Cell::Number),
    ("content_hash", "content_hash", Cell::Text),
];

/// [`export_sql`] for CSV, with formulas neutralised reversibly.
///
/// Spreadsheets run a cell starting with `=`, `+`, `-`, `@`, tab or
/// carriage return as a formula, and an audit export is opened in
/// spreadsheets while its text comes from the sending services (or from
/// whoever could write to ClickHouse: hence every text column, even those
/// Attest validates to a fixed vocabulary). So, as OWASP advises for CSV
/// files, such a cell gets a leading `'`, which makes it text.
///
/// A cell that already starts with `'` gets one too: otherwise a stored
/// `'=x` and a neutralised `=x` would both read `'=x`, and the exact value
/// could not be recovered (the export bundle's verifier recomputes each
/// row's hash from the file, docs/INTEGRITY.md section 10). The rule for
/// reading back is then one: a text cell starting with `'` had one `'`
/// added; remove it. Numbers and the metadata arrays (which start with
/// `[`) are never touched.
///
/// The neutralising is done outside the inner query so ordering and
/// de-duplication see the stored values; NDJSON keeps them exact.
pub(crate) fn csv_export_sql(filter: &str, sort: Sort) -> String {
    let columns: Vec<String> = EXPORT_COLUMNS
        .iter()
        .map(|(name, _, cell)| {
            if *cell == Cell::Text {
                // The quote is written `\x27`: the client crate rewrites
                // the `\'` escape before the text reaches ClickHouse.
                format!(
                    "if(substring({name}, 1, 1) IN ('=', '+', '-', '@', '\\t', '\\r', '\\x27'), \
                     concat('\\x27', {name}), {name}) AS {name}"
                )
            } else {
                (*name).to_owned()
            }
        })
        .collect();
    format!(
        "SELECT {} FROM ({})",
        columns.join(", "),
        export_sql(filter, sort)
    )
}

/// Every stored field of each matching event, in the order of the pages.
pub(crate) fn export_sql(filter: &str, sort: Sort) -> String {
    let columns: Vec<String> = EXPORT_COLUMNS
        .iter()
        .map(|(name, source, _)| {
            if name == source {
                (*name).to_owned()
            } else {
                format!("{source} AS {name}")
            }
        })
        .collect();
    format!(
        "SELECT {} \
         FROM audit_events {filter} \
         ORDER BY {} \
         LIMIT 1 BY {IDENTITY}",
        columns.join(", "),
        page_order(sort)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use app::query::compile_str;

    fn cursor() -> Cursor {
        Cursor {
            sort: Sort::default(),
            value: None,
            snapshot_ms: 9,
            occurred_at: 5,
            event_id: "e'1".into(),
            tenant_id: "t".into(),
            content_hash: "ab".repeat(32),
        }
    }

    #[test]
    fn every_shape_binds_each_placeholder() {
        let compiled = compile_str("outcome:failure \"x y\" metadata.k:v*", 0).unwrap();
        let one = ["acme".to_owned()];
        let two = ["acme".to_owned(), "globex".to_owned()];
        for tenants in [&[][..], &one[..], &two[..]] {
            for with_cursor in [false, true] {
                for arrival in [Arrival::UpToSnapshot, Arrival::AfterSnapshot] {
                    let span = Span {
                        from_ms: 1_000,
                        to_ms: 2_000,
                        arrival,
                        snapshot_ms: 3_000,
                    };
                    let c = cursor();
                    let filter = Filter::new(&compiled, tenants, span, with_cursor.then_some(&c));
                    assert_eq!(filter.sql.matches('?').count(), filter.params.len());
                    // The cursor names a tenant too, after "(".
                    assert_eq!(
                        filter.sql.contains(" AND tenant_id = ?"),
                        tenants.len() == 1
                    );
                    assert_eq!(
                        filter.sql.contains("tenant_id IN (?, ?)"),
                        tenants.len() == 2
                    );
                    for t in tenants {
                        assert!(filter.params.contains(&Param::Str(t.clone())));
                    }
                    assert_eq!(filter.sql.contains("event_id < ?"), with_cursor);
                    // The only quotes are the two 'UTC' literals: user text
                    // is only ever a value.
                    assert_eq!(filter.sql.matches('\'').count(), 4);
                    assert!(filter.params.contains(&Param::Str("failure".into())));
                }
            }
        }
    }

    /// A window of 1.5 s to 2.5 s, pages up to a snapshot at 3 ms.
    fn small_span() -> Span {
        Span {
            from_ms: 1_500,
            to_ms: 2_500,
            arrival: Arrival::UpToSnapshot,
            snapshot_ms: 3,
        }
    }

    #[test]
    fn cursor_values_follow_the_page_order() {
        let compiled = compile_str("", 0).unwrap();
        let span = small_span();
        let c = cursor();
        let filter = Filter::new(&compiled, &["acme".to_owned()], span, Some(&c));
        assert_eq!(
            filter.params,
            [
                Param::Int(1),
                Param::Int(2),
                Param::Int(1_500),
                Param::Int(2_500),
                Param::Int(3),
                Param::Str("acme".into()),
                Param::Int(5),
                Param::Int(5),
                Param::Str("e'1".into()),
                Param::Str("e'1".into()),
                Param::Str("t".into()),
                Param::Str("t".into()),
                Param::Str("ab".repeat(32)),
            ]
        );
        assert!(filter.sql.starts_with("WHERE event_time"), "{}", filter.sql);
        assert!(filter.sql.contains("received_at <= ?"));
    }

    #[test]
    fn the_query_stands_first_in_prewhere_with_its_values_first() {
        let compiled = compile_str("outcome:failure", 0).unwrap();
        let span = small_span();
        let filter = Filter::new(&compiled, &["acme".to_owned()], span, None);
        let (prewhere, rest) = filter.sql.split_once(" WHERE ").unwrap();
        assert_eq!(prewhere, format!("PREWHERE {}", compiled.sql));
        assert!(!rest.contains("PREWHERE"));
        let n = compiled.params.len();
        assert_eq!(filter.params[..n], compiled.params[..]);
        assert!(filter.params.contains(&Param::Str("failure".into())));
        assert_eq!(
            filter.params[n..],
            [
                Param::Int(1),
                Param::Int(2),
                Param::Int(1_500),
                Param::Int(2_500),
                Param::Int(3),
                Param::Str("acme".into()),
            ]
        );
    }

    #[test]
    fn event_time_bounds_never_wrap() {
        assert_eq!(epoch_seconds(-5_000), 0);
        assert_eq!(epoch_seconds(i64::MAX), i64::from(u32::MAX));
        assert_eq!(epoch_seconds(1_795_435_200_999), 1_795_435_200);
    }

    /// Every query that dedupes or counts does so by the whole identity:
    /// deduplicating by id alone would hide a different event sent with a
    /// used id.
    #[test]
    fn pages_are_deduplicated_by_identity_and_ordered() {
        let identity = "LIMIT 1 BY content_hash";
        let order = "ORDER BY occurred_at DESC, event_id DESC, tenant_id DESC, content_hash DESC";
        let sql = page_sql("1", false, Sort::default());
        assert!(sql.contains(order) && sql.contains(identity), "{sql}");
        assert!(
            sql.starts_with("SELECT event_id,")
                && sql.contains("request_id, content_hash, arrayFilter(")
                && sql.contains(" AS hit_metadata FROM")
        );
        let export = export_sql("1", Sort::default());
        assert!(
            export.contains(order) && export.contains(identity),
            "{export}"
        );
        assert!(
            export.contains("kafka_offset, content_hash FROM"),
            "{export}"
        );
        assert!(csv_export_sql("1", Sort::default()).contains(identity));
        assert!(count_sql("1").contains("uniqExact(content_hash)"));
        let facets = facets_sql("1");
        assert!(facets.contains("uniqExact(content_hash) AS events"));
        assert!(facets.contains("FROM (SELECT content_hash, "));
        assert!(facets.contains("('actor_ip', actor_ip)"));
        assert!(facets.ends_with("LIMIT ? BY field"));
        for sql in [
            page_sql("1", true, Sort::default()),
            export_sql("1", Sort::default()),
            facets,
            count_sql("1"),
        ] {
            assert!(!sql.contains("BY event_id") && !sql.contains("BY tenant_id, event_id L"));
        }
    }

    /// Every text column, and only those, is neutralised in CSV, with `'`
    /// among the characters that get one more `'` (so it can be undone).
    #[test]
    fn csv_neutralises_every_text_column_reversibly() {
        let sql = csv_export_sql("1", Sort::default());
        let (outer, _) = sql.split_once(" FROM (").unwrap();
        for (name, _, cell) in EXPORT_COLUMNS {
            let neutralised = outer.contains(&format!(
                "if(substring({name}, 1, 1) IN ('=', '+', '-', '@', '\\t', '\\r', '\\x27'), \
                 concat('\\x27', {name}), {name}) AS {name}"
            ));
            assert_eq!(neutralised, cell == Cell::Text, "{name}");
        }
        assert!(outer.contains(", metadata_key, metadata_value, schema_id, kafka_partition,"));
    }

    /// Metadata values travel only for the keys asked for, and a page
    /// without metadata columns reads no metadata column at all.
    #[test]
    fn hits_carry_only_the_metadata_asked_for() {
        let without = page_sql("1", false, Sort::default());
        assert!(!without.contains("metadata."), "{without}");
        assert_eq!(without.matches('?').count(), 1);
        let with = page_sql("1", true, Sort::default());
        assert_eq!(with.matches('?').count(), 2);
        // The keys' placeholder comes first, before the filter's.
        let select = with.split(" FROM audit_events").next().unwrap_or_default();
        assert!(select.contains("has(?, tupleElement(e, 1))"), "{with}");
        assert!(select.contains("metadata.key, metadata.value"), "{with}");
        let tail = tail_sql("1", true);
        assert!(tail.contains("AS hit_metadata, kafka_partition, kafka_offset FROM"));
        assert!(!tail_sql("1", false).contains("metadata."));
    }

    #[test]
    fn detail_lists_every_content_of_an_id() {
        let sql = detail_sql();
        assert_eq!(sql.matches('?').count(), 3);
        assert!(sql.contains("WHERE tenant_id = ? AND event_id = ?"));
        assert!(sql.contains("LIMIT 1 BY content_hash"));
        assert!(
            sql.contains("metadata.value, schema_id, kafka_partition, kafka_offset, content_hash")
        );
    }

    #[test]
    fn the_cursor_resumes_after_the_whole_identity() {
        let compiled = compile_str("", 0).unwrap();
        let c = cursor();
        let filter = Filter::new(&compiled, &[], small_span(), Some(&c));
        assert!(filter.sql.ends_with(
            "AND (occurred_at < ? OR (occurred_at = ? AND (event_id < ? OR (event_id = ? \
             AND (tenant_id < ? OR (tenant_id = ? AND content_hash < ?))))))"
        ));
        assert_eq!(filter.params.last(), Some(&Param::Str(c.content_hash)));
    }

    fn by(column: SortColumn, dir: SortDir) -> Sort {
        Sort { column, dir }
    }

    #[test]
    fn the_default_order_is_the_page_order_it_always_was() {
        assert_eq!(page_order(Sort::default()), PAGE_ORDER);
        assert_eq!(
            page_order(by(SortColumn::Time, SortDir::Asc)),
            "occurred_at ASC, event_id DESC, tenant_id DESC, content_hash DESC"
        );
        assert_eq!(
            page_order(by(SortColumn::Actor, SortDir::Asc)),
            format!("actor_id ASC, {PAGE_ORDER}")
        );
        assert_eq!(
            page_order(by(SortColumn::Resource, SortDir::Desc)),
            format!("concat(resource_type, '/', resource_id) DESC, {PAGE_ORDER}")
        );
        for sort in [by(SortColumn::Outcome, SortDir::Desc), Sort::default()] {
            let order = format!("ORDER BY {} LIMIT 1 BY content_hash", page_order(sort));
            assert!(page_sql("1", false, sort).contains(&order));
            assert!(export_sql("1", sort).contains(&order));
            assert!(csv_export_sql("1", sort).contains(&order));
        }
    }

    /// Under another order the cursor resumes after the sorted value, then
    /// after the same tie-break as the default, each direction as ordered.
    #[test]
    fn a_sorted_cursor_resumes_after_its_value_then_the_identity() {
        let compiled = compile_str("", 0).unwrap();
        let c = Cursor {
            sort: by(SortColumn::Actor, SortDir::Asc),
            value: Some("bob".into()),
            ..cursor()
        };
        let filter = Filter::new(&compiled, &[], small_span(), Some(&c));
        assert!(
            filter.sql.ends_with(
                " AND (actor_id > ? OR (actor_id = ? AND (occurred_at < ? OR (occurred_at = ? \
                 AND (event_id < ? OR (event_id = ? AND (tenant_id < ? OR (tenant_id = ? \
                 AND content_hash < ?))))))))"
            ),
            "{}",
            filter.sql
        );
        assert_eq!(filter.sql.matches('?').count(), filter.params.len());
        let n = filter.params.len();
        assert_eq!(
            filter.params[n - 9..],
            [
                Param::Str("bob".into()),
                Param::Str("bob".into()),
                Param::Int(5),
                Param::Int(5),
                Param::Str("e'1".into()),
                Param::Str("e'1".into()),
                Param::Str("t".into()),
                Param::Str("t".into()),
                Param::Str("ab".repeat(32)),
            ]
        );
        // Oldest first: the time key ascends, the identity still descends.
        let oldest = Cursor {
            sort: by(SortColumn::Time, SortDir::Asc),
            ..cursor()
        };
        let filter = Filter::new(&compiled, &[], small_span(), Some(&oldest));
        assert!(filter.sql.ends_with(
            " AND (occurred_at > ? OR (occurred_at = ? AND (event_id < ? OR (event_id = ? \
                 AND (tenant_id < ? OR (tenant_id = ? AND content_hash < ?))))))"
        ));
        assert_eq!(filter.sql.matches('?').count(), filter.params.len());
        // Every order binds each placeholder, the descending ones too.
        for column in SortColumn::ALL {
            for dir in [SortDir::Asc, SortDir::Desc] {
                let c = Cursor {
                    sort: by(column, dir),
                    value: (column != SortColumn::Time).then(|| "v".to_owned()),
                    ..cursor()
                };
                let filter = Filter::new(&compiled, &[], small_span(), Some(&c));
                assert_eq!(filter.sql.matches('?').count(), filter.params.len());
                assert!(filter.sql.contains(&format!("({} ", sort_expr(column))));
            }
        }
    }
}
