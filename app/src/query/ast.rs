//! The parsed form of a query, and its normalised text.
//!
//! `Display` writes text that [`super::parse`] turns back into an equal tree,
//! so the console can show what it understood and edit it safely.

use super::time::TimeValue;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::IpAddr;

/// A parsed query. `expr` is `None` for an empty query, which matches every
/// event of the tenant.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Query {
    pub expr: Option<Expr>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Expr {
    /// At least two operands; the parser flattens nested groups of the same kind.
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
    /// A bare word or phrase: case-insensitive substring search.
    Text(Pattern),
    /// `field:value` on a string column or a metadata entry.
    Match {
        field: TextField,
        value: Pattern,
    },
    SchemaId {
        op: Op,
        value: u32,
    },
    Time {
        field: TimeField,
        op: Op,
        value: TimeValue,
    },
    /// `actor.ip:198.51.100.0/24`: the actor's address is in the network.
    IpIn(Cidr),
}

/// An IPv4 or IPv6 network. The address is kept with its host bits
/// cleared, so `10.1.2.3/8` and `10.0.0.0/8` are the same network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cidr {
    pub network: IpAddr,
    /// 0–32 for IPv4, 0–128 for IPv6.
    pub prefix: u8,
}

impl Cidr {
    /// The network of `addr/prefix`, or `None` when the prefix is too long
    /// for the address family.
    pub fn new(addr: IpAddr, prefix: u8) -> Option<Cidr> {
        let network = match addr {
            IpAddr::V4(v4) if prefix <= 32 => {
                let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
                IpAddr::V4((u32::from(v4) & mask).into())
            }
            IpAddr::V6(v6) if prefix <= 128 => {
                let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
                IpAddr::V6((u128::from(v6) & mask).into())
            }
            _ => return None,
        };
        Some(Cidr { network, prefix })
    }

    /// First and last address of the network, as numbers.
    pub fn range(&self) -> (u128, u128) {
        let (start, bits) = match self.network {
            IpAddr::V4(v4) => (u128::from(u32::from(v4)), 32),
            IpAddr::V6(v6) => (u128::from(v6), 128),
        };
        let host_bits = bits - u32::from(self.prefix);
        // A /0 IPv6 network spans all 2^128 addresses, one more than fits.
        let size = 1u128.checked_shl(host_bits).map_or(u128::MAX, |n| n - 1);
        (start, start.saturating_add(size))
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// A string value as typed: exact, or with `*` wildcards between the parts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Pattern {
    Exact(String),
    /// The literal pieces around each `*`; at least two, possibly empty
    /// (`user.*` is `["user.", ""]`).
    Wildcard(Vec<String>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    Eq,
    Gt,
    Ge,
    Lt,
    Le,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TextField {
    EventId,
    Category,
    Action,
    Outcome,
    ActorId,
    ActorType,
    ActorIp,
    ActorUserAgent,
    ResourceType,
    ResourceId,
    SourceService,
    RequestId,
    /// A metadata key, case-sensitive, characters `[A-Za-z0-9_.-]`.
    Metadata(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TimeField {
    OccurredAt,
    ReceivedAt,
}

pub const CATEGORIES: &[&str] = &[
    "authentication",
    "data_access",
    "data_modification",
    "permission_change",
    "admin",
    "system",
];
pub const OUTCOMES: &[&str] = &["success", "failure", "denied"];

impl TextField {
    /// The column it compiles to; metadata has none of its own.
    pub fn column(&self) -> Option<&'static str> {
        Some(match self {
            TextField::EventId => "event_id",
            TextField::Category => "category",
            TextField::Action => "action",
            TextField::Outcome => "outcome",
            TextField::ActorId => "actor_id",
            TextField::ActorType => "actor_type",
            TextField::ActorIp => "actor_ip",
            TextField::ActorUserAgent => "actor_user_agent",
            TextField::ResourceType => "resource_type",
            TextField::ResourceId => "resource_id",
            TextField::SourceService => "source_service",
            TextField::RequestId => "request_id",
            TextField::Metadata(_) => return None,
        })
    }

    /// The only values the column can hold, for fields that have a fixed set.
    pub fn allowed_values(&self) -> Option<&'static [&'static str]> {
        match self {
            TextField::Category => Some(CATEGORIES),
            TextField::Outcome => Some(OUTCOMES),
            _ => None,
        }
    }
}

impl TimeField {
    pub fn column(self) -> &'static str {
        match self {
            TimeField::OccurredAt => "occurred_at",
            TimeField::ReceivedAt => "received_at",
        }
    }
}

impl fmt::Display for TextField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TextField::ActorId => "actor",
            TextField::ActorType => "actor.type",
            TextField::ActorIp => "actor.ip",
            TextField::ActorUserAgent => "actor.user_agent",
            TextField::ResourceType => "resource.type",
            TextField::ResourceId => "resource",
            TextField::SourceService => "source",
            TextField::Metadata(key) => return write!(f, "metadata.{key}"),
            other => other.column().unwrap_or_default(),
        })
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Op::Eq => ":",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Lt => "<",
            Op::Le => "<=",
        })
    }
}

impl fmt::Display for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.expr {
            Some(expr) => expr.fmt(f),
            None => Ok(()),
        }
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Or(items) => join(f, items, " OR ", |e| matches!(e, Expr::Or(_))),
            Expr::And(items) => join(f, items, " AND ", |e| {
                matches!(e, Expr::Or(_) | Expr::And(_))
            }),
            Expr::Not(inner) => {
                f.write_str("NOT ")?;
                operand(f, inner, matches!(**inner, Expr::Or(_) | Expr::And(_)))
            }
            Expr::Text(pattern) => write_text(f, pattern),
            Expr::Match { field, value } => {
                write!(f, "{field}:")?;
                write_value(f, value)
            }
            Expr::SchemaId { op, value } => write!(f, "schema_id{op}{value}"),
            Expr::Time { field, op, value } => write!(f, "{}{op}{value}", field.column()),
            Expr::IpIn(cidr) => write!(f, "{}:{cidr}", TextField::ActorIp),
        }
    }
}

fn join(
    f: &mut fmt::Formatter<'_>,
    items: &[Expr],
    separator: &str,
    needs_parens: impl Fn(&Expr) -> bool,
) -> fmt::Result {
    for (index, item) in items.iter().enumerate() {
        if index > 0 {
            f.write_str(separator)?;
        }
        operand(f, item, needs_parens(item))?;
    }
    Ok(())
}

fn operand(f: &mut fmt::Formatter<'_>, expr: &Expr, parens: bool) -> fmt::Result {
    if parens {
        write!(f, "({expr})")
    } else {
        write!(f, "{expr}")
    }
}

/// Whether an unquoted word is an operator: `AND`, `OR`, `NOT` in any case.
pub fn is_keyword(word: &str) -> bool {
    ["AND", "OR", "NOT"]
        .iter()
        .any(|k| k.eq_ignore_ascii_case(word))
}

/// Characters that end an unquoted word, so a value holding one must be quoted.
pub fn ends_word(c: char) -> bool {
    c.is_whitespace() || matches!(c, '(' | ')' | '"')
}

/// Writes `"…"` with `\` and `"` escaped.
pub fn write_quoted(out: &mut impl fmt::Write, text: &str) -> fmt::Result {
    out.write_char('"')?;
    for c in text.chars() {
        if matches!(c, '"' | '\\') {
            out.write_char('\\')?;
        }
        out.write_char(c)?;
    }
    out.write_char('"')
}

fn write_value(f: &mut fmt::Formatter<'_>, value: &Pattern) -> fmt::Result {
    match value {
        Pattern::Exact(text) => {
            // Backslashes are literal in unquoted words; quoting them anyway
            // keeps the shown form unambiguous.
            if text.is_empty()
                || text
                    .chars()
                    .any(|c| ends_word(c) || matches!(c, '*' | '\\'))
            {
                write_quoted(f, text)
            } else {
                f.write_str(text)
            }
        }
        Pattern::Wildcard(parts) => f.write_str(&parts.join("*")),
    }
}

fn write_text(f: &mut fmt::Formatter<'_>, value: &Pattern) -> fmt::Result {
    match value {
        // An empty search matches everything, as `*` does.
        Pattern::Exact(text) if text.is_empty() => f.write_str("*"),
        Pattern::Exact(text) => {
            let plain = !is_keyword(text)
                && !text.starts_with('-')
                && !text
                    .chars()
                    .any(|c| ends_word(c) || matches!(c, '*' | '\\' | ':' | '<' | '>' | '='));
            if plain {
                f.write_str(text)
            } else {
                write_quoted(f, text)
            }
        }
        Pattern::Wildcard(parts) => {
            // A leading `*` is redundant in a substring search, but it stops
            // a first part like `-x` from reading back as a negation.
            let first = parts.first().map(String::as_str).unwrap_or_default();
            if first.starts_with('-') {
                f.write_str("*")?;
            }
            f.write_str(&parts.join("*"))
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::query::parse;

    fn normal(input: &str) -> String {
        parse(input).expect(input).to_string()
    }

    #[test]
    fn normalised_text() {
        assert_eq!(normal(""), "");
        assert_eq!(normal("  a   b "), "a AND b");
        assert_eq!(normal("a OR b c"), "a OR b AND c");
        assert_eq!(normal("(a OR b) c"), "(a OR b) AND c");
        assert_eq!(normal("-(a b) -c"), "NOT (a AND b) AND NOT c");
        assert_eq!(
            normal("ACTOR.ID:bob Service:api ip:10.*"),
            "actor:bob AND source:api AND actor.ip:10.*"
        );
        assert_eq!(normal("category:Admin"), "category:admin");
        assert_eq!(
            normal("resource.id:\"q3 report.pdf\""),
            "resource:\"q3 report.pdf\""
        );
        assert_eq!(normal("action:\"a*b\""), "action:\"a*b\"");
        assert_eq!(normal("occurred_at=2026-03-01Z"), "occurred_at:2026-03-01");
        assert_eq!(
            normal("received_at<=2026-03-01T12:30"),
            "received_at<=2026-03-01T12:30"
        );
        assert_eq!(normal("schema_id>=3"), "schema_id>=3");
        assert_eq!(
            normal("\"AND\" \"-x\" \"a:b\" * \"\""),
            "\"AND\" AND \"-x\" AND \"a:b\" AND * AND *"
        );
        assert_eq!(normal("*-x*y*"), "*-x*y");
    }

    #[test]
    fn display_round_trips() {
        for input in [
            "a b OR c -d",
            "NOT NOT a",
            "(a OR (b OR c)) (d e)",
            "actor:\"o'brien \\\"ob\\\"\" metadata.Key-1.x:\"a b\\\\c\"",
            "metadata.k:v* action:*.login.* actor:*@example.com",
            "occurred_at>2026-03-01 occurred_at<2026-03-01T12:30:05 received_at:1772323200001",
            "schema_id:0 schema_id<4294967295",
            "outcome:failure category:authentication actor.ip:10.0.*",
            "\"x y\" zü* -\"NOT\" \"and\" \"Or\" \"not\"",
            "a and b or not c",
            "actor.ip:198.51.100.0/24 ip:2001:db8::/32 occurred_at>=now-7d/d received_at<now",
            "*a*b* \\path\\ x\\y",
            "actor:\"\" resource:a\\b",
        ] {
            let query = parse(input).expect(input);
            let shown = query.to_string();
            assert_eq!(parse(&shown).as_ref(), Ok(&query), "{input} -> {shown}");
        }
    }
}
