//! Turns a [`Query`] into a ClickHouse boolean expression with `?`
//! placeholders.
//!
//! Only ClickHouse 18.16 features are used (`match`,
//! `positionCaseInsensitiveUTF8`, `arrayExists` with lambdas), so the output
//! runs there and on current releases alike. `lowerUTF8` is avoided: current
//! releases register it only when built with ICU, which not every build is. Wildcards become RE2 regular expressions rather
//! than `LIKE` patterns because the escaping rules of `LIKE` changed between
//! those versions, while RE2's did not.

use super::ast::{Cidr, Expr, Op, Pattern, Query, TextField};
use super::time::TimeValue;
use serde::{Deserialize, Serialize};
use std::fmt::{self, Write};
use std::net::IpAddr;

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

/// Compiles a parsed query for a search that runs at `now_ms`, the moment
/// relative times (`now-1h`) count from. Every piece of user text goes into
/// `params`; `sql` holds only fixed column names, functions, operators and `?`.
pub fn compile(query: &Query, now_ms: i64) -> Compiled {
    let mut out = Compiled {
        sql: String::new(),
        params: Vec::new(),
    };
    match &query.expr {
        Some(expr) => out.expr(expr, now_ms),
        None => out.sql.push('1'),
    }
    out
}

/// Columns that free text searches, besides metadata values. The actor's
/// address is among them so that pasting an IP from a firewall log finds
/// its events.
const TEXT_COLUMNS: [&str; 4] = ["action", "resource_id", "actor_id", "actor_ip"];

/// A dotted-quad IPv4 address as `IPv4StringToNum` reads it, octets
/// without leading zeros.
const IPV4_REGEX: &str = "^(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\\.){3}\
                          (?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])$";

/// An IPv6 address of hex groups, with at most one `::`: eight groups, or
/// `a` groups, `::`, `b` groups with `a + b <= 7`. Forms with an embedded
/// IPv4 tail or a zone are left out.
fn ipv6_regex() -> String {
    let groups = |n: usize| vec!["[0-9A-Fa-f]{1,4}"; n].join(":");
    let mut forms = vec![groups(8)];
    for before in 0..=7 {
        for after in 0..=(7 - before) {
            forms.push(format!("{}::{}", groups(before), groups(after)));
        }
    }
    format!("^(?:{})$", forms.join("|"))
}

impl Compiled {
    fn push(&mut self, sql: &str) {
        self.sql.push_str(sql);
    }

    fn bind(&mut self, param: Param) {
        self.sql.push('?');
        self.params.push(param);
    }

    fn expr(&mut self, expr: &Expr, now_ms: i64) {
        match expr {
            Expr::And(items) => self.group(items, " AND ", "1", now_ms),
            Expr::Or(items) => self.group(items, " OR ", "0", now_ms),
            Expr::Not(inner) => {
                self.push("(NOT ");
                self.expr(inner, now_ms);
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
            Expr::Time { field, op, value } => self.time(field.column(), *op, *value, now_ms),
            Expr::IpIn(cidr) => self.ip_in(cidr),
        }
    }

    /// The stored address is text, and the conversion functions of current
    /// ClickHouse releases throw on text that is no address (18.16's return
    /// zero). So a regular expression first says whether the text is an
    /// address of the network's family, only such text reaches the
    /// conversion (anything else is swapped for a constant), and the number
    /// is compared with the network's first and last address. IPv6 numbers
    /// are compared as 32 hex digits, which order like the numbers.
    fn ip_in(&mut self, cidr: &Cidr) {
        let (first, last) = cidr.range();
        let (regex, convert, close, fallback, first, last) = match cidr.network {
            IpAddr::V4(_) => (
                IPV4_REGEX.to_string(),
                "IPv4StringToNum(if(match(actor_ip, ",
                ")",
                "0.0.0.0",
                Param::Int(i64::try_from(first).unwrap_or(i64::MAX)),
                Param::Int(i64::try_from(last).unwrap_or(i64::MAX)),
            ),
            IpAddr::V6(_) => (
                ipv6_regex(),
                "hex(IPv6StringToNum(if(match(actor_ip, ",
                "))",
                "::",
                Param::Str(format!("{first:032X}")),
                Param::Str(format!("{last:032X}")),
            ),
        };
        self.push("(match(actor_ip, ");
        self.bind(Param::Str(regex.clone()));
        self.push(") AND ");
        self.push(convert);
        self.bind(Param::Str(regex));
        self.push("), actor_ip, ");
        self.bind(Param::Str(fallback.to_string()));
        self.push(")");
        self.push(close);
        self.push(" BETWEEN ");
        self.bind(first);
        self.push(" AND ");
        self.bind(last);
        self.push(")");
    }

    /// `empty` keeps hand-built trees with no operands valid SQL: the
    /// identity of AND, the identity of OR.
    fn group(&mut self, items: &[Expr], separator: &str, empty: &str, now_ms: i64) {
        if items.is_empty() {
            return self.push(empty);
        }
        self.push("(");
        for (index, item) in items.iter().enumerate() {
            if index > 0 {
                self.push(separator);
            }
            self.expr(item, now_ms);
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
    fn time(&mut self, column: &str, op: Op, value: TimeValue, now_ms: i64) {
        let (start, end) = value.interval(now_ms);
        let (start, end) = (Param::Int(start), Param::Int(end));
        self.push("(");
        match op {
            // A single millisecond needs no interval arithmetic, which also
            // keeps i64::MAX from overflowing.
            _ if value.is_instant() => self.compare(column, sql_op(op), start),
            Op::Eq => {
                self.compare(column, ">=", start);
                self.push(" AND ");
                self.compare(column, "<", end);
            }
            Op::Gt => self.compare(column, ">=", end),
            Op::Ge => self.compare(column, ">=", start),
            Op::Lt => self.compare(column, "<", start),
            Op::Le => self.compare(column, "<", end),
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

    /// 2026-03-04T13:45:30.250Z.
    const NOW: i64 = 1_772_631_930_250;

    fn sql(input: &str) -> (String, Vec<Param>) {
        let compiled = compile_str(input, NOW).expect(input);
        (compiled.sql, compiled.params)
    }

    fn s(text: &str) -> Param {
        Param::Str(text.into())
    }

    const FREE_TEXT: &str = "(positionCaseInsensitiveUTF8(action, ?) > 0 \
        OR positionCaseInsensitiveUTF8(resource_id, ?) > 0 \
        OR positionCaseInsensitiveUTF8(actor_id, ?) > 0 \
        OR positionCaseInsensitiveUTF8(actor_ip, ?) > 0 \
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
            compile(&hand_built, NOW).params,
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
        assert_eq!(sql("Admin"), (FREE_TEXT.into(), vec![s("admin"); 5]));
        assert_eq!(
            sql("\"Q3 Report*\""),
            (FREE_TEXT.into(), vec![s("q3 report*"); 5])
        );
        let wildcard = FREE_TEXT
            .replace("positionCaseInsensitiveUTF8(", "match(")
            .replace(", ?) > 0", ", ?)");
        assert_eq!(sql("*Foo*.Bar*"), (wildcard, vec![s("(?i)foo.*\\.bar"); 5]));
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
        let empty = |expr| compile(&Query { expr: Some(expr) }, NOW).sql;
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

    #[test]
    fn relative_times_count_from_the_search() {
        let hour = 3_600_000;
        let today = NOW - (NOW % 86_400_000);
        let cases = [
            (
                "occurred_at>=now-1h",
                "(occurred_at >= ?)",
                vec![NOW - hour],
            ),
            ("occurred_at<now", "(occurred_at < ?)", vec![NOW]),
            (
                "occurred_at:now/d",
                "(occurred_at >= ? AND occurred_at < ?)",
                vec![today, today + 86_400_000],
            ),
            (
                "received_at>=now-7d/d",
                "(received_at >= ?)",
                vec![today - 7 * 86_400_000],
            ),
            ("received_at<=now-1d/d", "(received_at < ?)", vec![today]),
        ];
        for (input, expected_sql, values) in cases {
            let params = values.into_iter().map(Param::Int).collect::<Vec<_>>();
            assert_eq!(sql(input), (expected_sql.to_string(), params), "{input}");
        }
        let later = compile_str("occurred_at>now-1h", NOW + 5).unwrap();
        assert_eq!(later.params, vec![Param::Int(NOW + 5 - hour)]);
    }

    #[test]
    fn networks_compare_numbers_of_checked_addresses() {
        let (v4_sql, v4) = sql("actor.ip:198.51.100.7/24");
        assert_eq!(
            v4_sql,
            "(match(actor_ip, ?) AND IPv4StringToNum(if(match(actor_ip, ?), actor_ip, ?)) \
             BETWEEN ? AND ?)"
        );
        assert_eq!(
            v4[2..],
            [
                s("0.0.0.0"),
                Param::Int(0xC633_6400),
                Param::Int(0xC633_64FF)
            ]
        );
        assert_eq!(v4[0], s(IPV4_REGEX));
        let (v6_sql, v6) = sql("ip:2001:db8::/32");
        assert_eq!(
            v6_sql,
            "(match(actor_ip, ?) AND hex(IPv6StringToNum(if(match(actor_ip, ?), actor_ip, ?))) \
             BETWEEN ? AND ?)"
        );
        assert_eq!(
            v6[2..],
            [
                s("::"),
                s("20010DB8000000000000000000000000"),
                s("20010DB8FFFFFFFFFFFFFFFFFFFFFFFF")
            ]
        );
    }

    /// The address patterns, checked with the `regex` crate, whose syntax
    /// is RE2's for everything they use.
    #[test]
    fn address_patterns_accept_addresses_only() {
        let v4 = regex::Regex::new(IPV4_REGEX).unwrap();
        let v6 = regex::Regex::new(&ipv6_regex()).unwrap();
        for ok in ["0.0.0.0", "198.51.100.7", "255.255.255.255", "10.0.0.1"] {
            assert!(v4.is_match(ok) && !v6.is_match(ok), "{ok}");
        }
        for bad in [
            "256.0.0.1",
            "01.2.3.4",
            "1.2.3",
            "1.2.3.4.5",
            "1.2.3.4 ",
            "",
            "a.b.c.d",
        ] {
            assert!(!v4.is_match(bad), "{bad}");
        }
        for ok in [
            "::",
            "::1",
            "1::",
            "2001:db8::1",
            "2001:DB8:0:0:0:0:0:1",
            "1:2:3:4:5:6:7::",
            "::2:3:4:5:6:7:8",
            "fe80::1:2",
        ] {
            assert!(v6.is_match(ok), "{ok}");
            assert!(ok.parse::<std::net::Ipv6Addr>().is_ok(), "{ok}");
        }
        for bad in [
            ":::",
            "1:2:3:4:5:6:7:8:9",
            "1::2::3",
            "12345::",
            "g::1",
            "1:2:3:4:5:6:7",
            "::ffff:1.2.3.4",
            "fe80::1%eth0",
            "",
        ] {
            assert!(!v6.is_match(bad), "{bad}");
        }
    }
}
