//! Helpers the query module's unit tests share.

use super::ast::{Expr, Pattern, TextField};
use super::parse;

/// The tree of a query that must parse and must not be empty.
pub fn tree(input: &str) -> Expr {
    parse(input).expect(input).expr.expect(input)
}

/// `field:value` as an exact match.
pub fn matches(field: TextField, value: &str) -> Expr {
    Expr::Match {
        field,
        value: Pattern::Exact(value.into()),
    }
}

/// Position, message and hint of a query that must not parse.
pub fn error(input: &str) -> (usize, String, String) {
    let error = parse(input).expect_err(input);
    (
        error.position,
        error.message,
        error.hint.unwrap_or_default(),
    )
}
