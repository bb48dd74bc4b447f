//! The analysts' query language: text → [`Query`] → a parameterised
//! ClickHouse boolean expression over `audit_events`.
//!
//! ```text
//! outcome:failure category:authentication actor.ip:10.0.*
//! (action:user.login OR action:user.logout) -actor.type:service
//! occurred_at>=2026-03-01 occurred_at<2026-03-08 "q3 report"
//! ```
//!
//! The module is pure and runs in the browser too, where it parses on every
//! keystroke to show errors inline; the server compiles the same tree and
//! binds [`Compiled::params`] with the `clickhouse` crate. User text only
//! ever reaches the SQL as a bound parameter: the SQL itself is built from
//! fixed column names, functions and `?` placeholders.
//!
//! `docs/QUERY_LANGUAGE.md` is the analysts' reference; keep it in step.

mod ast;
mod compile;
mod facet;
mod lex;
mod names;
mod parse;
#[cfg(test)]
mod testing;
mod time;
mod values;

pub use ast::{Cidr, Expr, Op, Pattern, Query, TextField, TimeField, CATEGORIES, OUTCOMES};
pub use compile::{compile, Compiled, Param};
pub use facet::{and_term, and_without_key};
pub use names::{is_metadata_key, metadata_key_of, METADATA_KEY_RULE, METADATA_PREFIX};
pub use parse::parse;
pub use time::{Precision, Relative, TimeValue, Timestamp, Unit};

use serde::{Deserialize, Serialize};

/// Longest accepted query, in characters.
pub const MAX_QUERY_CHARS: usize = 2_000;
/// Deepest accepted nesting of parentheses and negations.
pub const MAX_DEPTH: usize = 32;
/// Most terms (words, phrases, `field:value`) in one query.
pub const MAX_TERMS: usize = 64;

/// Why a query was rejected, and where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("at {position}: {message}{}", hint_suffix(.hint))]
pub struct ParseError {
    /// Char offset into the input, 0-based; may equal the input's length
    /// when something is missing at the end.
    pub position: usize,
    pub message: String,
    pub hint: Option<String>,
}

fn hint_suffix(hint: &Option<String>) -> String {
    hint.as_ref().map(|h| format!(" ({h})")).unwrap_or_default()
}

impl ParseError {
    pub(crate) fn new(position: usize, message: impl Into<String>) -> Self {
        ParseError {
            position,
            message: message.into(),
            hint: None,
        }
    }

    pub(crate) fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

/// The query fields, in the order the help lists them.
pub const FIELDS: &[(&str, &str)] = &[
    ("event_id", "The event's id"),
    (
        "category",
        "authentication, data_access, data_modification, permission_change, admin or system",
    ),
    (
        "action",
        "What was done, e.g. user.login; user.* for a prefix",
    ),
    ("outcome", "success, failure or denied"),
    ("actor", "Who did it: the actor's id (also actor.id)"),
    ("actor.type", "Kind of actor, e.g. user or service"),
    (
        "actor.ip",
        "The actor's IP address (also ip); 10.0.* for a prefix, 198.51.100.0/24 or 2001:db8::/32 for a network",
    ),
    ("actor.user_agent", "The actor's user agent"),
    ("resource", "The resource's id (also resource.id)"),
    ("resource.type", "Kind of resource, e.g. document"),
    (
        "source",
        "The service that reported the event (also service, source_service)",
    ),
    (
        "request_id",
        "The request id, to follow one request across services",
    ),
    (
        "schema_id",
        "Schema of the event, an integer; also > >= < <=",
    ),
    (
        "occurred_at",
        "When it happened, UTC: 2026-03-01, 2026-03-01T12:30, epoch ms, now-1h or now-7d/d; also > >= < <=",
    ),
    (
        "received_at",
        "When Attest received it; same forms as occurred_at",
    ),
    (
        "metadata.<key>",
        "A metadata entry, e.g. metadata.region:eu-west-1",
    ),
];

/// Realistic investigations, for the console's help list.
pub const EXAMPLES: &[(&str, &str)] = &[
    (
        "outcome:failure category:authentication actor.ip:10.0.*",
        "Failed sign-ins from the 10.0 network",
    ),
    (
        "actor:alice@example.com occurred_at>=2026-03-01 occurred_at<2026-03-08",
        "Everything alice did in the first week of March (UTC)",
    ),
    (
        "category:permission_change -actor.type:service",
        "Permission changes made by people rather than services",
    ),
    (
        "outcome:denied (action:user.* OR action:role.*)",
        "Denied user and role operations",
    ),
    (
        "resource.id:\"q3 report.pdf\" category:data_access",
        "Who opened the Q3 report",
    ),
    (
        "export category:data_access actor:*@contractor.example",
        "Exports by contractors (free text \"export\")",
    ),
    (
        "request_id:req-7f3a9c",
        "Every event of one request, across services",
    ),
    (
        "category:admin source:billing metadata.region:eu-*",
        "Admin actions in the billing service's EU regions",
    ),
];

/// Parses and compiles in one step, for a search that runs at `now_ms`.
pub fn compile_str(input: &str, now_ms: i64) -> Result<Compiled, ParseError> {
    parse(input).map(|query| compile(&query, now_ms))
}

/// Cuts user text for messages so one long token cannot flood the UI.
pub(crate) fn shorten(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_display() {
        let error = parse("actr:bob").unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "at 0: unknown field \"actr\" ({})",
                error.hint.clone().unwrap()
            )
        );
        assert!(error.to_string().starts_with(
            "at 0: unknown field \"actr\" (did you mean actor? known: event_id, category, action"
        ));
        assert_eq!(ParseError::new(3, "x").to_string(), "at 3: x");
    }

    #[test]
    fn examples_and_fields_parse() {
        for (query, _) in EXAMPLES {
            let parsed = parse(query).expect(query);
            assert_eq!(parse(&parsed.to_string()).as_ref(), Ok(&parsed));
        }
        for (name, _) in FIELDS {
            let value = match *name {
                "category" => "admin",
                "outcome" => "success",
                _ => "1",
            };
            let term = format!("{}:{value}", name.replace("<key>", "k"));
            assert!(parse(&term).is_ok(), "{term}");
        }
    }

    #[test]
    fn shorten_counts_chars() {
        assert_eq!(shorten("äöü", 2), "äö…");
        assert_eq!(shorten("äöü", 3), "äöü");
    }

    /// 2026-03-04T13:45:30.250Z, the moment the tests' searches run.
    const NOW: i64 = 1_772_631_930_250;

    /// Words that may appear in generated SQL; anything else came from the user.
    const SQL_WORDS: &[&str] = &[
        "AND",
        "OR",
        "NOT",
        "match",
        "positionCaseInsensitiveUTF8",
        "arrayExists",
        "k",
        "v",
        "0",
        "1",
        "IPv4StringToNum",
        "IPv6StringToNum",
        "hex",
        "if",
        "BETWEEN",
        "metadata.key",
        "metadata.value",
        "event_id",
        "category",
        "action",
        "outcome",
        "actor_id",
        "actor_type",
        "actor_ip",
        "actor_user_agent",
        "resource_type",
        "resource_id",
        "source_service",
        "request_id",
        "schema_id",
        "occurred_at",
        "received_at",
    ];

    fn assert_fixed_sql(input: &str, compiled: &Compiled) {
        assert_eq!(
            compiled.sql.matches('?').count(),
            compiled.params.len(),
            "{input}"
        );
        let stray = compiled
            .sql
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || " _.,()<>=?-".contains(*c)));
        assert_eq!(stray, None, "{input}: {}", compiled.sql);
        for word in compiled
            .sql
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
        {
            assert!(
                word.is_empty() || SQL_WORDS.contains(&word),
                "{input}: {word:?} in {}",
                compiled.sql
            );
        }
    }

    const HOSTILE: &[&str] = &[
        "'; DROP TABLE x --",
        "\"'; DROP TABLE audit_events; --\"",
        "';DROP TABLE x;",
        "actor:\\' OR actor:1=1",
        "action:'; DROP TABLE audit_events; --",
        "actor:\\' OR 1=1",
        "\"\\\" OR \\\"1\\\"=\\\"1\"",
        "resource:\"'); SELECT * FROM system.users --\"",
        "metadata.a'b:x",
        "metadata.k:`x` metadata.key:y metadata.value:z",
        "action:? \"??\" actor:*?* request_id:$1",
        "Ωmega 日本語 🙂 actor:ünïcödé*",
        "a\0b",
        "action:\"x\0\"",
        "x) OR (1=1",
        "\\\\ \\ action:\\\\*",
        "source:{{x}} schema_id:1 occurred_at>2026-03-01",
        "ip:0x27 actor:'' resource:''''",
    ];

    #[test]
    fn user_text_never_reaches_sql() {
        let mut compiled_count = 0;
        for input in HOSTILE {
            match compile_str(input, NOW) {
                Ok(compiled) => {
                    assert_fixed_sql(input, &compiled);
                    compiled_count += 1;
                }
                Err(error) => assert!(error.position <= input.chars().count()),
            }
        }
        // Most of them are valid queries: the property is not vacuous.
        assert!(compiled_count >= 10, "{compiled_count}");
        assert!(parse("metadata.a'b:x").is_err());
        assert!(parse("a\0b").is_err());
    }

    #[test]
    fn hostile_values_only_change_params() {
        let quote = |text: &str| text.replace('\\', "\\\\").replace('"', "\\\"");
        for value in HOSTILE.iter().filter(|v| !v.contains('\0')) {
            for (template, benign) in [
                ("action:\"{}\"", "action:x"),
                ("metadata.k:\"{}\"", "metadata.k:x"),
                ("\"{}\"", "x"),
            ] {
                let input = template.replace("{}", &quote(value));
                let compiled = compile_str(&input, NOW).expect(&input);
                assert_eq!(
                    compiled.sql,
                    compile_str(benign, NOW).unwrap().sql,
                    "{input}"
                );
                let bound = match template {
                    "\"{}\"" => value.to_lowercase(),
                    _ => value.to_string(),
                };
                assert!(compiled.params.contains(&Param::Str(bound)), "{input}");
                assert_fixed_sql(&input, &compiled);
            }
        }
    }

    /// A deterministic shuffle of fragments that tend to break parsers:
    /// whatever comes out must either fail cleanly or round-trip and compile
    /// to fixed SQL.
    #[test]
    fn generated_queries_round_trip_or_fail_cleanly() {
        const PIECES: &[&str] = &[
            "a",
            "Admin*",
            "*x*y",
            "(",
            ")",
            "AND",
            "OR",
            "NOT",
            "-",
            "\"",
            "\\",
            "*",
            ":",
            ">=",
            "<",
            "=",
            "action:",
            "actor.ID:",
            "metadata.k-1:",
            "schema_id>",
            "occurred_at<=",
            "received_at:",
            "2026-03-01",
            "2026-02-29T12:30",
            "1772323200000",
            "category:",
            "outcome:",
            "admin",
            "ip:10.*",
            "\"q3 report\"",
            "tenant:",
            "'",
            "é",
            "🙂",
            "and",
            "Or",
            "not",
            "ip:10.0.0.0/8",
            "ip:2001:db8::/33",
            "ip:1.2.3.4/",
            "occurred_at>now-1h",
            "received_at:now/d",
            "now-",
            "-x",
            "\"a\\\"b\"",
            "?",
            ";",
            "\t",
        ];
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move |bound: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % bound as u64) as usize
        };
        let mut parsed = 0;
        for _ in 0..20_000 {
            let mut input = String::new();
            for _ in 0..1 + next(10) {
                input.push_str(PIECES[next(PIECES.len())]);
                if next(3) > 0 {
                    input.push(' ');
                }
            }
            match parse(&input) {
                Ok(query) => {
                    parsed += 1;
                    let shown = query.to_string();
                    assert_eq!(parse(&shown).as_ref(), Ok(&query), "{input:?} -> {shown:?}");
                    assert_fixed_sql(&input, &compile(&query, NOW));
                }
                Err(error) => assert!(
                    error.position <= input.chars().count(),
                    "{input:?}: {error}"
                ),
            }
        }
        assert!(parsed > 2_000, "{parsed}");
    }
}
