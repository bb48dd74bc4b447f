//! Recursive descent over the tokens: OR binds loosest, then AND (explicit
//! or implied by adjacency), then NOT / `-`.

use super::ast::{Expr, Pattern, Query};
use super::lex::{tokenize, Token, TokenKind};
use super::values::{field_term, wildcard_value};
use super::{ParseError, MAX_DEPTH, MAX_QUERY_CHARS, MAX_TERMS};

/// Parses query text. An empty or all-whitespace query is valid and matches
/// everything.
pub fn parse(input: &str) -> Result<Query, ParseError> {
    if let Some((_, _)) = input.char_indices().nth(MAX_QUERY_CHARS) {
        return Err(ParseError::new(
            MAX_QUERY_CHARS,
            format!("query is too long (limit {MAX_QUERY_CHARS} characters)"),
        ));
    }
    let mut parser = Parser {
        tokens: tokenize(input),
        next: 0,
        terms: 0,
    };
    if matches!(parser.peek(), Next::End) {
        return Ok(Query { expr: None });
    }
    let expr = parser.or(0)?;
    match parser.advance()? {
        None => Ok(Query { expr: Some(expr) }),
        Some(token) => Err(stray_close(token.pos)),
    }
}

/// What comes next, as far as the grammar cares.
enum Next {
    End,
    /// Something that starts a term, or a lexical error, which is reported
    /// once the parser asks for that term.
    TermStart,
    And(usize),
    Or(usize),
    Close,
}

struct Parser {
    tokens: Vec<Result<Token, ParseError>>,
    next: usize,
    terms: usize,
}

impl Parser {
    fn peek(&self) -> Next {
        match self.tokens.get(self.next) {
            None => Next::End,
            Some(Ok(token)) => match token.kind {
                TokenKind::And => Next::And(token.pos),
                TokenKind::Or => Next::Or(token.pos),
                TokenKind::RParen => Next::Close,
                _ => Next::TermStart,
            },
            Some(Err(_)) => Next::TermStart,
        }
    }

    fn advance(&mut self) -> Result<Option<Token>, ParseError> {
        let Some(item) = self.tokens.get(self.next) else {
            return Ok(None);
        };
        self.next += 1;
        item.clone().map(Some)
    }

    /// Fails at `pos` unless a term follows the operator found there.
    fn term_must_follow(&self, pos: usize, operator: &str) -> Result<(), ParseError> {
        if matches!(self.peek(), Next::TermStart) {
            Ok(())
        } else {
            Err(ParseError::new(
                pos,
                format!("\"{operator}\" needs a term after it"),
            ))
        }
    }

    fn or(&mut self, depth: usize) -> Result<Expr, ParseError> {
        let mut items = vec![self.and(depth)?];
        while let Next::Or(pos) = self.peek() {
            self.next += 1;
            self.term_must_follow(pos, "OR")?;
            items.push(self.and(depth)?);
        }
        Ok(combine(items, Expr::Or, |e| match e {
            Expr::Or(items) => Ok(items),
            other => Err(other),
        }))
    }

    fn and(&mut self, depth: usize) -> Result<Expr, ParseError> {
        let mut items = vec![self.unary(depth)?];
        loop {
            match self.peek() {
                Next::And(pos) => {
                    self.next += 1;
                    self.term_must_follow(pos, "AND")?;
                }
                Next::TermStart => {}
                Next::End | Next::Or(_) | Next::Close => break,
            }
            items.push(self.unary(depth)?);
        }
        Ok(combine(items, Expr::And, |e| match e {
            Expr::And(items) => Ok(items),
            other => Err(other),
        }))
    }

    fn unary(&mut self, depth: usize) -> Result<Expr, ParseError> {
        let Some(token) = self.advance()? else {
            // Callers only descend when a term follows; this is a safety net.
            return Err(ParseError::new(0, "expected a term"));
        };
        let pos = token.pos;
        match token.kind {
            TokenKind::Not | TokenKind::Minus => {
                let operator = if token.kind == TokenKind::Not {
                    "NOT"
                } else {
                    "-"
                };
                check_depth(depth, pos)?;
                self.term_must_follow(pos, operator)?;
                Ok(Expr::Not(Box::new(self.unary(depth + 1)?)))
            }
            TokenKind::LParen => {
                check_depth(depth, pos)?;
                match self.peek() {
                    Next::Close => return Err(ParseError::new(pos, "empty parentheses")),
                    Next::End => return Err(unclosed(pos)),
                    _ => {}
                }
                let inner = self.or(depth + 1)?;
                match self.advance()? {
                    Some(Token {
                        kind: TokenKind::RParen,
                        ..
                    }) => Ok(inner),
                    _ => Err(unclosed(pos)),
                }
            }
            TokenKind::RParen => Err(stray_close(pos)),
            TokenKind::And | TokenKind::Or => {
                let operator = if token.kind == TokenKind::And {
                    "AND"
                } else {
                    "OR"
                };
                Err(ParseError::new(
                    pos,
                    format!("\"{operator}\" needs a term before it"),
                ))
            }
            TokenKind::Word(word) => {
                self.count_term(pos)?;
                Ok(Expr::Text(free_text(&word)))
            }
            TokenKind::Phrase(phrase) => {
                self.count_term(pos)?;
                Ok(Expr::Text(Pattern::Exact(phrase)))
            }
            TokenKind::Field(field) => {
                self.count_term(pos)?;
                field_term(field, pos)
            }
        }
    }

    fn count_term(&mut self, pos: usize) -> Result<(), ParseError> {
        self.terms += 1;
        if self.terms > MAX_TERMS {
            return Err(
                ParseError::new(pos, format!("too many terms (limit {MAX_TERMS})"))
                    .with_hint("use wildcards or fewer alternatives"),
            );
        }
        Ok(())
    }
}

fn check_depth(depth: usize, pos: usize) -> Result<(), ParseError> {
    if depth >= MAX_DEPTH {
        return Err(ParseError::new(
            pos,
            format!("nesting too deep (limit {MAX_DEPTH} levels of parentheses and NOT)"),
        ));
    }
    Ok(())
}

fn unclosed(pos: usize) -> ParseError {
    ParseError::new(pos, "unclosed \"(\"").with_hint("add a matching \")\"")
}

fn stray_close(pos: usize) -> ParseError {
    ParseError::new(pos, "unmatched \")\"").with_hint("remove it or add a matching \"(\"")
}

/// Builds an AND/OR node, splicing in operands of the same kind so that
/// `a (b c)` and `a b c` are the same tree.
fn combine(
    items: Vec<Expr>,
    wrap: fn(Vec<Expr>) -> Expr,
    unwrap: fn(Expr) -> Result<Vec<Expr>, Expr>,
) -> Expr {
    let mut flat = Vec::with_capacity(items.len());
    for item in items {
        match unwrap(item) {
            Ok(inner) => flat.extend(inner),
            Err(other) => flat.push(other),
        }
    }
    if flat.len() == 1 {
        flat.remove(0)
    } else {
        wrap(flat)
    }
}

/// Free text is already a substring search, so stars at its ends add nothing
/// and are dropped; a lone `*` becomes the empty search, which matches all.
fn free_text(word: &str) -> Pattern {
    wildcard_value(word.trim_matches('*'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::ast::{Op, TextField};

    fn word(text: &str) -> Expr {
        Expr::Text(Pattern::Exact(text.into()))
    }

    fn not(expr: Expr) -> Expr {
        Expr::Not(Box::new(expr))
    }

    fn tree(input: &str) -> Expr {
        parse(input).expect(input).expr.expect(input)
    }

    /// Position and message of the error `input` must produce.
    fn error(input: &str) -> (usize, String) {
        let error = parse(input).expect_err(input);
        (error.position, error.message)
    }

    #[test]
    fn empty_query_matches_all() {
        assert_eq!(parse(""), Ok(Query { expr: None }));
        assert_eq!(parse(" \t\n "), Ok(Query { expr: None }));
    }

    #[test]
    fn implicit_and_equals_explicit() {
        let and = Expr::And(vec![word("a"), word("b"), word("c")]);
        assert_eq!(tree("a b c"), and);
        assert_eq!(tree("a AND b AND c"), and);
        assert_eq!(tree("a AND b c"), and);
        assert_eq!(tree("a (b c)"), and);
        assert_eq!(tree("((a))"), word("a"));
    }

    #[test]
    fn precedence_not_and_or() {
        let (a, b, c) = (word("a"), word("b"), word("c"));
        let and = |items: &[&Expr]| Expr::And(items.iter().map(|e| (*e).clone()).collect());
        let or = |items: &[&Expr]| Expr::Or(items.iter().map(|e| (*e).clone()).collect());
        assert_eq!(tree("a OR b AND c"), or(&[&a, &and(&[&b, &c])]));
        assert_eq!(tree("a OR b c"), or(&[&a, &and(&[&b, &c])]));
        assert_eq!(tree("a b OR c"), or(&[&and(&[&a, &b]), &c]));
        assert_eq!(tree("(a OR b) c"), and(&[&or(&[&a, &b]), &c]));
        assert_eq!(tree("NOT a b"), and(&[&not(a.clone()), &b]));
        assert_eq!(tree("NOT a OR b"), or(&[&not(a.clone()), &b]));
        assert_eq!(
            tree("-a OR -b c"),
            or(&[&not(a.clone()), &and(&[&not(b.clone()), &c])])
        );
        assert_eq!(tree("NOT (a OR b)"), not(or(&[&a, &b])));
        assert_eq!(tree("-(a b)"), not(and(&[&a, &b])));
        assert_eq!(tree("NOT NOT a"), not(not(a.clone())));
        assert_eq!(tree("a OR (b OR c)"), or(&[&a, &b, &c]));
        // Lower case works like upper case.
        assert_eq!(
            tree("a and b or not c"),
            or(&[&and(&[&a, &b]), &not(c.clone())])
        );
        assert_eq!(tree("a and b or not c"), tree("a AND b OR NOT c"));
        assert_eq!(error("a or"), (2, "\"OR\" needs a term after it".into()));
        assert_eq!(tree("\"and\""), word("and"));
    }

    #[test]
    fn free_text_forms() {
        assert_eq!(tree("\"q3 report\""), word("q3 report"));
        assert_eq!(tree("Admin*"), word("Admin"));
        assert_eq!(tree("*"), word(""));
        assert_eq!(tree("\"\""), word(""));
        assert_eq!(tree("\"a*b\""), word("a*b"));
        assert_eq!(
            tree("*a**b*"),
            Expr::Text(Pattern::Wildcard(vec!["a".into(), "b".into()]))
        );
        assert_eq!(tree("a-b"), word("a-b"));
    }

    #[test]
    fn field_terms_in_context() {
        let action = Expr::Match {
            field: TextField::Action,
            value: Pattern::Wildcard(vec!["user.".into(), String::new()]),
        };
        let schema = Expr::SchemaId {
            op: Op::Gt,
            value: 2,
        };
        assert_eq!(
            tree("-action:user.* OR schema_id>2"),
            Expr::Or(vec![not(action), schema])
        );
    }

    #[test]
    fn quote_errors() {
        assert_eq!(error("action:\"abc"), (7, "unterminated quote".into()));
        assert_eq!(error("a \"b\" \"c"), (6, "unterminated quote".into()));
    }

    #[test]
    fn parenthesis_errors() {
        assert_eq!(error("(a OR b"), (0, "unclosed \"(\"".into()));
        assert_eq!(error("a (b (c)"), (2, "unclosed \"(\"".into()));
        assert_eq!(error("("), (0, "unclosed \"(\"".into()));
        assert_eq!(error("a)"), (1, "unmatched \")\"".into()));
        assert_eq!(error(")"), (0, "unmatched \")\"".into()));
        assert_eq!(error("(a)) b"), (3, "unmatched \")\"".into()));
        assert_eq!(error("a ( )"), (2, "empty parentheses".into()));
    }

    #[test]
    fn dangling_operators() {
        assert_eq!(error("a AND"), (2, "\"AND\" needs a term after it".into()));
        assert_eq!(error("OR b"), (0, "\"OR\" needs a term before it".into()));
        assert_eq!(error("AND b"), (0, "\"AND\" needs a term before it".into()));
        assert_eq!(error("NOT"), (0, "\"NOT\" needs a term after it".into()));
        assert_eq!(error("a OR"), (2, "\"OR\" needs a term after it".into()));
        assert_eq!(
            error("a AND OR b"),
            (2, "\"AND\" needs a term after it".into())
        );
        assert_eq!(
            error("(a OR) b"),
            (3, "\"OR\" needs a term after it".into())
        );
        assert_eq!(error("a NOT)"), (2, "\"NOT\" needs a term after it".into()));
        assert_eq!(error("x -AND y"), (2, "\"-\" needs a term after it".into()));
        assert_eq!(
            error("x -"),
            (2, "\"-\" must be directly followed by a term".into())
        );
    }

    #[test]
    fn first_error_wins() {
        // The stray ")" comes before the unterminated quote in the text.
        assert_eq!(error(") \"x").0, 0);
        assert_eq!(error("a AND \"x").0, 6);
    }

    #[test]
    fn length_limit() {
        assert!(parse(&"a".repeat(MAX_QUERY_CHARS)).is_ok());
        assert!(parse(&"ü".repeat(MAX_QUERY_CHARS)).is_ok());
        let (position, message) = error(&"a ".repeat(1_001));
        assert_eq!(
            (position, message.as_str()),
            (2_000, "query is too long (limit 2000 characters)")
        );
    }

    #[test]
    fn depth_limit() {
        let nested = |n: usize| format!("{}a{}", "(".repeat(n), ")".repeat(n));
        assert!(parse(&nested(MAX_DEPTH)).is_ok());
        let (position, message) = error(&nested(MAX_DEPTH + 1));
        assert_eq!(position, MAX_DEPTH);
        assert!(message.starts_with("nesting too deep"), "{message}");
        assert!(parse(&format!("{}a", "NOT ".repeat(MAX_DEPTH))).is_ok());
        assert_eq!(
            error(&format!("{}a", "NOT ".repeat(MAX_DEPTH + 1))).0,
            4 * MAX_DEPTH
        );
        assert_eq!(
            error(&format!("{}a", "-".repeat(MAX_DEPTH + 1))).0,
            MAX_DEPTH
        );
        // The recursion is bounded, so even a hostile paste fails cleanly.
        assert_eq!(error(&"(".repeat(1_999)).0, MAX_DEPTH);
    }

    #[test]
    fn term_limit() {
        let terms = |n: usize| {
            (0..n)
                .map(|i| format!("t{i:02}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        assert!(parse(&terms(MAX_TERMS)).is_ok());
        let (position, message) = error(&terms(MAX_TERMS + 1));
        assert_eq!(position, 4 * MAX_TERMS);
        assert_eq!(message, "too many terms (limit 64)");
    }
}
