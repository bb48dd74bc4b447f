//! Query edits made by clicking, rather than typing.

use super::ast::{write_quoted, Expr};
use super::parse;

/// Adds `field:"value"` (or `-field:"value"` when `negate`) to a query with
/// AND, as a facet click does. The value is quoted, so it matches exactly,
/// `*` included. A term the query already requires is not added twice.
pub fn and_term(query_text: &str, field: &str, value: &str, negate: bool) -> String {
    let mut term = String::new();
    if negate {
        term.push('-');
    }
    term.push_str(field);
    term.push(':');
    // Writing into a String cannot fail.
    let _ = write_quoted(&mut term, value);
    and_clause(query_text, term)
}

/// Adds `-metadata.<key>:*`, the events without the key, to a query with
/// AND, as "Count by"'s "(no metadata.<key>)" row does. `key` is one
/// [`super::is_metadata_key`] accepts, so it needs no quoting.
pub fn and_without_key(query_text: &str, key: &str) -> String {
    and_clause(query_text, format!("-{}{key}:*", super::METADATA_PREFIX))
}

/// `query_text` AND `term` (one term, written as the query language reads
/// it), unless the query requires the term already.
fn and_clause(query_text: &str, term: String) -> String {
    let current = query_text.trim();
    if current.is_empty() {
        return term;
    }
    let Ok(parsed) = parse(current) else {
        // A broken query stays as typed so its error still points where the
        // analyst expects; the term just follows it.
        return format!("{current} {term}");
    };
    let new_term = parse(&term).ok().and_then(|q| q.expr);
    match (&parsed.expr, &new_term) {
        (Some(Expr::And(items)), Some(new)) if items.contains(new) => current.to_string(),
        (Some(existing), Some(new)) if existing == new => current.to_string(),
        // Without parentheses the term would bind to the last OR branch only.
        (Some(Expr::Or(_)), _) => format!("({current}) {term}"),
        _ => format!("{current} {term}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::ast::{Pattern, TextField};

    #[test]
    fn and_term_quotes_and_groups() {
        assert_eq!(
            and_term("", "outcome", "failure", false),
            "outcome:\"failure\""
        );
        assert_eq!(and_term("  ", "actor", "bob", true), "-actor:\"bob\"");
        assert_eq!(
            and_term("a OR b", "resource.id", "q3 \"final\" C:\\x", false),
            "(a OR b) resource.id:\"q3 \\\"final\\\" C:\\\\x\""
        );
        assert_eq!(
            and_term(" a b ", "action", "user.*", false),
            "a b action:\"user.*\""
        );
        assert_eq!(and_term("(a", "action", "x", false), "(a action:\"x\"");

        let text = and_term("a OR b", "resource.id", "q3 \"final\" C:\\x", true);
        let expected = parse("(a OR b) AND NOT resource:\"q3 \\\"final\\\" C:\\\\x\"").unwrap();
        assert_eq!(parse(&text), Ok(expected));

        let starred = parse(&and_term("", "action", "user.*", false)).unwrap();
        let exact = Expr::Match {
            field: TextField::Action,
            value: Pattern::Exact("user.*".into()),
        };
        assert_eq!(starred.expr, Some(exact));
    }

    #[test]
    fn and_without_key_negates_the_key_s_existence() {
        assert_eq!(and_without_key("", "ticket"), "-metadata.ticket:*");
        assert_eq!(
            and_without_key("a OR b", "k8s.zone-1"),
            "(a OR b) -metadata.k8s.zone-1:*"
        );
        assert_eq!(
            and_without_key("-metadata.ticket:*", "ticket"),
            "-metadata.ticket:*"
        );
        let parsed = parse(&and_without_key("actor:bob", "ticket")).unwrap();
        let Some(Expr::And(items)) = parsed.expr else {
            panic!("an AND: {parsed:?}");
        };
        assert_eq!(
            items[1],
            Expr::Not(Box::new(Expr::Match {
                field: TextField::Metadata("ticket".into()),
                value: Pattern::Wildcard(vec![String::new(), String::new()]),
            }))
        );
    }

    #[test]
    fn and_term_skips_duplicates() {
        assert_eq!(and_term("actor:bob", "actor", "bob", false), "actor:bob");
        assert_eq!(
            and_term("x actor.id:bob", "actor", "bob", false),
            "x actor.id:bob"
        );
        assert_eq!(
            and_term("actor:bob", "actor", "bob", true),
            "actor:bob -actor:\"bob\""
        );
        assert_eq!(
            and_term("x OR actor:bob", "actor", "bob", false),
            "(x OR actor:bob) actor:\"bob\""
        );
    }
}
