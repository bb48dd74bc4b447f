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
