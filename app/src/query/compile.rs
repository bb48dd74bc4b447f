//! Turns a [`Query`] into a ClickHouse boolean expression with `?`
//! placeholders.
//!
//! Only ClickHouse 18.16 features are used (`match`,
//! `positionCaseInsensitiveUTF8`, `arrayExists` with lambdas), so the output
//! runs there and on current releases alike. `lowerUTF8` is avoided: current
//! releases register it only when built with ICU, which not every build is. Wildcards become RE2 regular expressions rather
//! than `LIKE` patterns because the escaping rules of `LIKE` changed between
//! those versions, while RE2's did not.

use super::ast::{Expr, Op, Pattern, Query, TextField};
use super::time::{Precision, Timestamp};
use serde::{Deserialize, Serialize};
use std::fmt::{self, Write};

/// A value for one `?` of [`Compiled::sql`], to pass to `Query::bind`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Param {
    Str(String),
    Int(i64),
}

/// A WHERE-clause expression and its parameters, in placeholder order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Compiled {
    /// Self-delimiting (a parenthesised group, a function call or `1`), so
    /// it can be ANDed with other conditions as is.
    pub sql: String,
    pub params: Vec<Param>,
}

impl fmt::Display for Param {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Param::Str(text) => write!(f, "{text:?}"),
            Param::Int(n) => write!(f, "{n}"),
        }
    }
}

/// Compiles a parsed query. Every piece of user text goes into `params`;
/// `sql` holds only fixed column names, functions, operators and `?`.
pub fn compile(query: &Query) -> Compiled {
    let mut out = Compiled {
        sql: String::new(),
        params: Vec::new(),
    };
    match &query.expr {
        Some(expr) => out.expr(expr),
        None => out.sql.push('1'),
    }
    out
}

/// Columns that free text searches, besides metadata values.
const TEXT_COLUMNS: [&str; 3] = ["action", "resource_id", "actor_id"];

impl Compiled {
    fn push(&mut self, sql: &str) {
        self.sql.push_str(sql);
    }

    fn bind(&mut self, param: Param) {
        self.sql.push('?');
        self.params.push(param);
    }

    fn expr(&mut self, expr: &Expr) {
        match expr {
            Expr::And(items) => self.group(items, " AND ", "1"),
            Expr::Or(items) => self.group(items, " OR ", "0"),
            Expr::Not(inner) => {
                self.push("(NOT ");
                self.expr(inner);
                self.push(")");
            }
            Expr::Text(pattern) => self.free_text(pattern),
            Expr::Match {
                field: TextField::Metadata(key),
                value,
            } => self.metadata_match(key, value),
            // Every other field has a column of its own.
            Expr::Match { field, value } => match field.column() {
                Some(column) => self.column_match(column, value),
                None => self.push("0"),
            },
            Expr::SchemaId { op, value } => {
                self.push("(");
                self.compare("schema_id", sql_op(*op), Param::Int(i64::from(*value)));
                self.push(")");
            }
            Expr::Time { field, op, value } => self.time(field.column(), *op, *value),
        }
    }

    /// `empty` keeps hand-built trees with no operands valid SQL: the
    /// identity of AND, the identity of OR.
    fn group(&mut self, items: &[Expr], separator: &str, empty: &str) {
        if items.is_empty() {
            return self.push(empty);
        }
        self.push("(");
        for (index, item) in items.iter().enumerate() {
            if index > 0 {
                self.push(separator);
            }
            self.expr(item);
        }
        self.push(")");
    }

    fn column_match(&mut self, column: &str, value: &Pattern) {
        match value {
            Pattern::Exact(text) => {
                self.push("(");
                self.compare(column, "=", Param::Str(text.clone()));
                self.push(")");
            }
            Pattern::Wildcard(parts) => {
                self.push("match(");
                self.push(column);
                self.push(", ");
                self.bind(Param::Str(anchored_regex(parts)));
                self.push(")");
            }
        }
    }

    /// Nested columns are parallel arrays, so the key and its value are
    /// checked together, pair by pair.
    fn metadata_match(&mut self, key: &str, value: &Pattern) {
        self.push("arrayExists((k, v) -> k = ");
        self.bind(Param::Str(key.to_string()));
        match value {
            Pattern::Exact(text) => {
                self.push(" AND v = ");
                self.bind(Param::Str(text.clone()));
            }
            Pattern::Wildcard(parts) => {
                self.push(" AND match(v, ");
                self.bind(Param::Str(anchored_regex(parts)));
                self.push(")");
            }
        }
        self.push(", metadata.key, metadata.value)");
    }

    /// Case-insensitive without lowering the columns: a case-insensitive
    /// `position` for plain text, RE2's `(?i)` for wildcards. The needle is
    /// lowered here too, which changes no match and keeps the values
    /// predictable. Each placeholder gets its own copy of the needle because
    /// positional binding cannot reuse one.
    fn free_text(&mut self, pattern: &Pattern) {
        let (needle, open, close) = match pattern {
            Pattern::Exact(text) if text.is_empty() => return self.push("1"),
            Pattern::Exact(text) => (text.to_lowercase(), "positionCaseInsensitiveUTF8(", ") > 0"),
            Pattern::Wildcard(parts) => {
                let lowered: Vec<String> = parts.iter().map(|p| p.to_lowercase()).collect();
                (format!("(?i){}", regex_body(&lowered)), "match(", ")")
            }
        };
        self.push("(");
        for column in TEXT_COLUMNS {
            self.push(open);
            self.push(column);
            self.push(", ");
            self.bind(Param::Str(needle.clone()));
            self.push(close);
            self.push(" OR ");
        }
        self.push("arrayExists(v -> ");
        self.push(open);
        self.push("v, ");
        self.bind(Param::Str(needle));
        self.push(close);
        self.push(", metadata.value))");
    }

    /// A timestamp names an interval; `>` means after its end and `<=`
    /// means up to its end, so `occurred_at<=2026-03-01` includes that day.
    fn time(&mut self, column: &str, op: Op, value: Timestamp) {
        let (start, end) = (Param::Int(value.ms), Param::Int(value.end_ms()));
        self.push("(");
        match (op, value.precision) {
            // A single millisecond needs no interval arithmetic, which also
            // keeps i64::MAX from overflowing.
            (_, Precision::Millis) => self.compare(column, sql_op(op), start),
            (Op::Eq, _) => {
                self.compare(column, ">=", start);
                self.push(" AND ");
                self.compare(column, "<", end);
            }
            (Op::Gt, _) => self.compare(column, ">=", end),
            (Op::Ge, _) => self.compare(column, ">=", start),
            (Op::Lt, _) => self.compare(column, "<", start),
            (Op::Le, _) => self.compare(column, "<", end),
        }
        self.push(")");
    }

    /// `column op ?`, unparenthesised.
    fn compare(&mut self, column: &str, op: &str, value: Param) {
        self.push(column);
        self.push(" ");
        self.push(op);
        self.push(" ");
        self.bind(value);
    }
}

fn sql_op(op: Op) -> &'static str {
    match op {
        Op::Eq => "=",
        Op::Gt => ">",
        Op::Ge => ">=",
        Op::Lt => "<",
        Op::Le => "<=",
    }
}

/// `^…$` around the parts joined by `.*`. ClickHouse's `match` lets `.`
/// match newlines, so `*` spans any text.
fn anchored_regex(parts: &[String]) -> String {
    format!("^{}$", regex_body(parts))
}

fn regex_body(parts: &[String]) -> String {
    let mut regex = String::new();
    for (index, part) in parts.iter().enumerate() {
        if index > 0 {
            regex.push_str(".*");
        }
        for c in part.chars() {
            if "\\.+*?()|[]{}^$".contains(c) {
                regex.push('\\');
                regex.push(c);
            } else if c.is_ascii_control() {
                // ClickHouse rejects NUL bytes in patterns; hex escapes keep
                // any control character matchable without putting it there.
                let _ = write!(regex, "\\x{{{:02x}}}", u32::from(c));
            } else {
                regex.push(c);
            }
        }
    }
    regex
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::compile_str;

    fn sql(input: &str) -> (String, Vec<Param>) {
        let compiled = compile_str(input).expect(input);
        (compiled.sql, compiled.params)
    }

    fn s(text: &str) -> Param {
        Param::Str(text.into())
    }

    const FREE_TEXT: &str = "(positionCaseInsensitiveUTF8(action, ?) > 0 \
        OR positionCaseInsensitiveUTF8(resource_id, ?) > 0 \
        OR positionCaseInsensitiveUTF8(actor_id, ?) > 0 \
        OR arrayExists(v -> positionCaseInsensitiveUTF8(v, ?) > 0, metadata.value))";

    #[test]
    fn empty_and_match_all() {
        assert_eq!(sql(""), ("1".into(), vec![]));
        assert_eq!(sql("*"), ("1".into(), vec![]));
    }

    #[test]
    fn exact_fields() {
        assert_eq!(
            sql("action:user.login"),
            ("(action = ?)".into(), vec![s("user.login")])
        );
        assert_eq!(
            sql("resource.id:\"q3 report.pdf\""),
            ("(resource_id = ?)".into(), vec![s("q3 report.pdf")])
        );
        assert_eq!(
            sql("resource:\"a*b\""),
            ("(resource_id = ?)".into(), vec![s("a*b")])
        );
        assert_eq!(sql("ip:::1"), ("(actor_ip = ?)".into(), vec![s("::1")]));
        assert_eq!(sql("actor:\"\""), ("(actor_id = ?)".into(), vec![s("")]));
        assert_eq!(
            sql("Category:ADMIN"),
            ("(category = ?)".into(), vec![s("admin")])
        );
    }

    #[test]
    fn wildcards_become_anchored_regexes() {
        assert_eq!(
            sql("action:user.*"),
            ("match(action, ?)".into(), vec![s("^user\\..*$")])
        );
        assert_eq!(
            sql("actor:*@example.com"),
            ("match(actor_id, ?)".into(), vec![s("^.*@example\\.com$")])
        );
        assert_eq!(
            sql(r"action:a.b+c?d|e^f$g\h{1}[x]*"),
            (
                "match(action, ?)".into(),
                vec![s(r"^a\.b\+c\?d\|e\^f\$g\\h\{1\}\[x\].*$")]
            )
        );
        let hand_built = Query {
            expr: Some(Expr::Match {
                field: TextField::Action,
                value: Pattern::Wildcard(vec!["(\0\u{7f}é".into(), String::new()]),
            }),
        };
        assert_eq!(
            compile(&hand_built).params,
            vec![s("^\\(\\x{00}\\x{7f}é.*$")]
        );
    }

    #[test]
    fn metadata() {
        assert_eq!(
            sql("metadata.Region:eu-west-1"),
            (
                "arrayExists((k, v) -> k = ? AND v = ?, metadata.key, metadata.value)".into(),
                vec![s("Region"), s("eu-west-1")]
            )
        );
        assert_eq!(
            sql("metadata.region:eu-*"),
            (
                "arrayExists((k, v) -> k = ? AND match(v, ?), metadata.key, metadata.value)".into(),
                vec![s("region"), s("^eu-.*$")]
            )
        );
    }

    #[test]
    fn free_text() {
        assert_eq!(sql("Admin"), (FREE_TEXT.into(), vec![s("admin"); 4]));
        assert_eq!(
            sql("\"Q3 Report*\""),
            (FREE_TEXT.into(), vec![s("q3 report*"); 4])
        );
        let wildcard = FREE_TEXT
            .replace("positionCaseInsensitiveUTF8(", "match(")
            .replace(", ?) > 0", ", ?)");
        assert_eq!(sql("*Foo*.Bar*"), (wildcard, vec![s("(?i)foo.*\\.bar"); 4]));
    }

    #[test]
    fn boolean_structure() {
        assert_eq!(
            sql("action:a -outcome:success OR actor:b"),
            (
                "(((action = ?) AND (NOT (outcome = ?))) OR (actor_id = ?))".into(),
                vec![s("a"), s("success"), s("b")]
            )
        );
        assert_eq!(
            sql("NOT (action:a OR action:b) actor:c"),
            (
                "((NOT ((action = ?) OR (action = ?))) AND (actor_id = ?))".into(),
                vec![s("a"), s("b"), s("c")]
            )
        );
        let empty = |expr| compile(&Query { expr: Some(expr) }).sql;
        assert_eq!(empty(Expr::And(vec![])), "1");
        assert_eq!(empty(Expr::Or(vec![])), "0");
    }

    #[test]
    fn numbers_and_times() {
        let day = 1_772_323_200_000;
        let next = day + 86_400_000;
        let cases = [
            ("schema_id:3", "(schema_id = ?)", vec![3]),
            ("schema_id>=3", "(schema_id >= ?)", vec![3]),
            (
                "occurred_at:2026-03-01",
                "(occurred_at >= ? AND occurred_at < ?)",
                vec![day, next],
            ),
            ("occurred_at>2026-03-01", "(occurred_at >= ?)", vec![next]),
            ("occurred_at>=2026-03-01", "(occurred_at >= ?)", vec![day]),
            ("occurred_at<2026-03-01", "(occurred_at < ?)", vec![day]),
            ("occurred_at<=2026-03-01", "(occurred_at < ?)", vec![next]),
            (
                "received_at:2026-03-01T12:30",
                "(received_at >= ? AND received_at < ?)",
                vec![day + 45_000_000, day + 45_060_000],
            ),
            (
                "received_at<=2026-03-01T00:00:05",
                "(received_at < ?)",
                vec![day + 6_000],
            ),
            ("received_at>1772323200000", "(received_at > ?)", vec![day]),
            ("received_at:1772323200000", "(received_at = ?)", vec![day]),
            (
                "received_at<=9223372036854775807",
                "(received_at <= ?)",
                vec![i64::MAX],
            ),
        ];
        for (input, expected_sql, values) in cases {
            let params = values.into_iter().map(Param::Int).collect::<Vec<_>>();
            assert_eq!(sql(input), (expected_sql.to_string(), params), "{input}");
        }
    }
}
