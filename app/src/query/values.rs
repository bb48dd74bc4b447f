//! The typed value each field takes, checked as the query is parsed.

use super::ast::{Expr, Op, Pattern};
use super::lex::FieldToken;
use super::names::{resolve, Resolved};
use super::time::Timestamp;
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
        Resolved::Time(field) => match Timestamp::parse(&token.value) {
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
                    value: day
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
                value: epoch
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
}
