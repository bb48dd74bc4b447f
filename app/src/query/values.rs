//! The typed value each field takes, checked as the query is parsed.

use super::ast::{Cidr, Expr, Op, Pattern, TextField};
use super::lex::FieldToken;
use super::names::{resolve, Resolved};
use super::time::{TimeValue, Timestamp};
use super::{shorten, ParseError};

/// Splits an unquoted value at `*`. Runs of stars act as one.
pub(super) fn wildcard_value(text: &str) -> Pattern {
    if !text.contains('*') {
        return Pattern::Exact(text.to_string());
    }
    let pieces: Vec<&str> = text.split('*').collect();
    let last = pieces.len() - 1;
    let parts = pieces
        .iter()
        .enumerate()
        .filter(|&(index, piece)| index == 0 || index == last || !piece.is_empty())
        .map(|(_, piece)| piece.to_string())
        .collect();
    Pattern::Wildcard(parts)
}

pub(super) fn field_term(token: FieldToken, pos: usize) -> Result<Expr, ParseError> {
    let resolved = resolve(&token.name, pos)?;
    if !matches!(resolved, Resolved::Text(_)) && !token.quoted {
        if let Some(star) = token.value.chars().position(|c| c == '*') {
            let name = token.name.to_ascii_lowercase();
            return Err(ParseError::new(
                token.value_pos + star,
                format!("wildcards do not work on {name}"),
            )
            .with_hint(format!("compare with > >= < <=, e.g. {name}>=… {name}<…")));
        }
    }
    match resolved {
        Resolved::Text(field) => {
            if token.op != Op::Eq {
                return Err(ParseError::new(
                    token.op_pos,
                    format!("\"{}\" does not work on the text field {field}", token.op),
                )
                .with_hint(format!(
                    "use {field}:value, with * as a wildcard; > >= < <= work only on \
                     occurred_at, received_at and schema_id"
                )));
            }
            if field == TextField::ActorIp && !token.quoted && token.value.contains('/') {
                return cidr(&token.value, token.value_pos).map(Expr::IpIn);
            }
            let mut value = if token.quoted {
                Pattern::Exact(token.value)
            } else {
                wildcard_value(&token.value)
            };
            if let (Some(allowed), Pattern::Exact(text)) = (field.allowed_values(), &value) {
                let Some(canonical) = allowed.iter().find(|a| a.eq_ignore_ascii_case(text)) else {
                    return Err(ParseError::new(
                        token.value_pos,
                        format!("{field} cannot be \"{}\"", shorten(text, 32)),
                    )
                    .with_hint(format!("allowed: {}", allowed.join(", "))));
                };
                value = Pattern::Exact(canonical.to_string());
            }
            Ok(Expr::Match { field, value })
        }
        Resolved::SchemaId => {
            let digits = !token.value.is_empty() && token.value.bytes().all(|b| b.is_ascii_digit());
            match token.value.parse::<u32>() {
                Ok(value) if digits => Ok(Expr::SchemaId {
                    op: token.op,
                    value,
                }),
                _ => Err(ParseError::new(
                    token.value_pos,
                    format!("bad number \"{}\"", shorten(&token.value, 32)),
                )
                .with_hint(format!(
                    "schema_id is a whole number from 0 to {}",
                    u32::MAX
                ))),
            }
        }
        Resolved::Time(field) => match TimeValue::parse(&token.value) {
            Ok(value) => Ok(Expr::Time {
                field,
                op: token.op,
                value,
            }),
            Err(message) => {
                Err(ParseError::new(token.value_pos, message).with_hint(Timestamp::FORMATS))
            }
        },
    }
}

/// `address/prefix` as a network; `pos` is where the value starts. A `*`
/// makes no sense in one, so it is an error rather than a wildcard.
fn cidr(text: &str, pos: usize) -> Result<Cidr, ParseError> {
    let hint = "write a network as 198.51.100.0/24 or 2001:db8::/32; quote the value to match \
                the text exactly";
    let (address, prefix) = text.split_once('/').unwrap_or((text, ""));
    let address_chars = address.chars().count();
    let addr = address.parse::<std::net::IpAddr>().map_err(|_| {
        ParseError::new(
            pos,
            format!("bad network address \"{}\"", shorten(address, 40)),
        )
        .with_hint(hint)
    })?;
    let prefix_pos = pos + address_chars + 1;
    let bits = if addr.is_ipv4() { 32 } else { 128 };
    let bad_prefix = || {
        ParseError::new(
            prefix_pos,
            format!(
                "bad prefix length \"{}\": use 0 to {bits}",
                shorten(prefix, 12)
            ),
        )
        .with_hint(hint)
    };
    if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_digit()) || prefix.len() > 3 {
        return Err(bad_prefix());
    }
    let length = prefix.parse::<u8>().map_err(|_| bad_prefix())?;
    Cidr::new(addr, length).ok_or_else(bad_prefix)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::ast::{TextField, TimeField};
    use crate::query::testing::{error, matches, tree};
    use crate::query::time::Precision;

    #[test]
    fn comparisons_only_on_numbers_and_times() {
        let (position, message, hint) = error("x action>=login");
        assert_eq!(position, 8);
        assert_eq!(message, "\">=\" does not work on the text field action");
        assert!(hint.contains("occurred_at"));
        assert_eq!(error("actor<bob").0, 5);
        assert_eq!(error("metadata.k>1").0, 10);
    }

    #[test]
    fn enum_values_are_checked() {
        let (position, message, hint) = error("category:login");
        assert_eq!(
            (position, message.as_str()),
            (9, "category cannot be \"login\"")
        );
        assert_eq!(
            hint,
            "allowed: authentication, data_access, data_modification, permission_change, admin, system"
        );
        assert_eq!(
            error("outcome:\"fail*\"").2,
            "allowed: success, failure, denied"
        );
        assert_eq!(
            tree("outcome:FAILURE"),
            matches(TextField::Outcome, "failure")
        );
        assert_eq!(
            tree("category:\"Admin\""),
            matches(TextField::Category, "admin")
        );
        assert_eq!(
            tree("category:data_*"),
            Expr::Match {
                field: TextField::Category,
                value: Pattern::Wildcard(vec!["data_".into(), String::new()]),
            }
        );
    }

    #[test]
    fn wildcard_values() {
        let wildcard =
            |parts: &[&str]| Pattern::Wildcard(parts.iter().map(|p| p.to_string()).collect());
        let value = |input: &str| match tree(input) {
            Expr::Match { value, .. } => value,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            value("actor:*@example.com"),
            wildcard(&["", "@example.com"])
        );
        assert_eq!(value("ip:10.0.*"), wildcard(&["10.0.", ""]));
        assert_eq!(value("action:a**b*"), wildcard(&["a", "b", ""]));
        assert_eq!(value("action:*"), wildcard(&["", ""]));
        assert_eq!(value("action:\"a*\""), Pattern::Exact("a*".into()));
        assert_eq!(
            value("resource.id:\"q3 report.pdf\""),
            Pattern::Exact("q3 report.pdf".into())
        );
    }

    #[test]
    fn schema_id_values() {
        assert_eq!(
            tree("schema_id:7"),
            Expr::SchemaId {
                op: Op::Eq,
                value: 7
            }
        );
        assert_eq!(
            tree("schema_id:\"7\""),
            Expr::SchemaId {
                op: Op::Eq,
                value: 7
            }
        );
        assert_eq!(
            tree("schema_id<=4294967295"),
            Expr::SchemaId {
                op: Op::Le,
                value: u32::MAX
            }
        );
        for (input, position) in [
            ("schema_id:abc", 10),
            ("schema_id>-1", 10),
            ("schema_id:4294967296", 10),
            ("schema_id:+1", 10),
        ] {
            let (at, message, _) = error(input);
            assert_eq!(at, position, "{input}");
            assert!(message.starts_with("bad number"), "{message}");
        }
        let (position, message, _) = error("schema_id:1*");
        assert_eq!(
            (position, message.as_str()),
            (11, "wildcards do not work on schema_id")
        );
    }

    #[test]
    fn time_values() {
        let day = Timestamp {
            ms: 1_772_323_200_000,
            precision: Precision::Day,
        };
        for (input, op) in [
            ("occurred_at:2026-03-01", Op::Eq),
            ("occurred_at=2026-03-01Z", Op::Eq),
            ("Occurred_At>2026-03-01", Op::Gt),
            ("occurred_at<=2026-03-01", Op::Le),
        ] {
            assert_eq!(
                tree(input),
                Expr::Time {
                    field: TimeField::OccurredAt,
                    op,
                    value: TimeValue::At(day)
                },
                "{input}"
            );
        }
        let epoch = Timestamp {
            ms: 1_772_323_200_000,
            precision: Precision::Millis,
        };
        assert_eq!(
            tree("received_at>=1772323200000"),
            Expr::Time {
                field: TimeField::ReceivedAt,
                op: Op::Ge,
                value: TimeValue::At(epoch)
            }
        );
        let (position, message, hint) = error("occurred_at>2026-13-01");
        assert_eq!(
            (position, message.as_str()),
            (12, "month 13 does not exist in \"2026-13-01\"")
        );
        assert!(hint.contains("epoch milliseconds"));
        assert_eq!(error("x received_at:yesterday").1, "bad date \"yesterday\"");
        assert_eq!(error("x received_at:yesterday").0, 14);
        assert_eq!(error("occurred_at:2026-*").0, 17);
    }

    #[test]
    fn relative_time_values() {
        let expr = tree("occurred_at>=now-7d/d");
        let Expr::Time { op, value, .. } = expr else {
            panic!("{expr:?}");
        };
        assert_eq!(op, Op::Ge);
        assert_eq!(value.to_string(), "now-7d/d");
        let (position, message, hint) = error("received_at<now-1y");
        assert_eq!(position, 12);
        assert!(
            message.starts_with("bad relative time \"now-1y\""),
            "{message}"
        );
        assert!(hint.contains("now-7d/d"), "{hint}");
    }

    #[test]
    fn networks() {
        let net = |input: &str| match tree(input) {
            Expr::IpIn(cidr) => (cidr.to_string(), cidr.range()),
            other => panic!("{input}: {other:?}"),
        };
        let v4 = |text: &str| u128::from(u32::from(text.parse::<std::net::Ipv4Addr>().unwrap()));
        assert_eq!(
            net("actor.ip:198.51.100.0/24"),
            (
                "198.51.100.0/24".into(),
                (v4("198.51.100.0"), v4("198.51.100.255"))
            )
        );
        // Host bits are cleared.
        assert_eq!(net("ip:10.1.2.3/8").0, "10.0.0.0/8");
        assert_eq!(net("ip:10.1.2.3/32").1, (v4("10.1.2.3"), v4("10.1.2.3")));
        assert_eq!(net("ip:0.0.0.0/0").1, (0, u128::from(u32::MAX)));
        let v6 = |text: &str| u128::from(text.parse::<std::net::Ipv6Addr>().unwrap());
        assert_eq!(
            net("ip:2001:DB8:0:0:1::/32"),
            (
                "2001:db8::/32".into(),
                (
                    v6("2001:db8::"),
                    v6("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff")
                )
            )
        );
        assert_eq!(net("ip:::/0").1, (0, u128::MAX));
        assert_eq!(net("ip:fe80::1/128").1, (v6("fe80::1"), v6("fe80::1")));
        // Quoted, it is the text itself.
        assert_eq!(
            tree("ip:\"10.0.0.0/8\""),
            matches(TextField::ActorIp, "10.0.0.0/8")
        );
        for (input, position, start) in [
            (
                "ip:10.0.0.0/33",
                12,
                "bad prefix length \"33\": use 0 to 32",
            ),
            ("ip:10.0.0.0/", 12, "bad prefix length"),
            ("ip:10.0.0.0/8/8", 12, "bad prefix length"),
            ("ip:10.0.0.0/-1", 12, "bad prefix length"),
            ("ip:::1/129", 7, "bad prefix length \"129\": use 0 to 128"),
            ("actor.ip:10.0.*/8", 9, "bad network address \"10.0.*\""),
            ("actor.ip:10.0.0/8", 9, "bad network address"),
            ("x ip:/8", 5, "bad network address"),
        ] {
            let (at, message, hint) = error(input);
            assert_eq!(at, position, "{input}");
            assert!(message.starts_with(start), "{input}: {message}");
            assert!(hint.contains("198.51.100.0/24"), "{hint}");
        }
    }
}
