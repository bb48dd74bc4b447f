//! Splits query text into tokens. Positions are char offsets, because the
//! console places its error caret by characters, not bytes.

use super::ast::{ends_word, Op};
use super::ParseError;

#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    pub kind: TokenKind,
    /// Char offset of the token's first character.
    pub pos: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub enum TokenKind {
    LParen,
    RParen,
    And,
    Or,
    Not,
    /// `-` directly before a term: the same as `NOT`.
    Minus,
    /// An unquoted word: free text, `*` is a wildcard.
    Word(String),
    /// A quoted phrase: free text, taken literally.
    Phrase(String),
    Field(FieldToken),
}

/// `name<op>value`, before the name is resolved or the value checked.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldToken {
    pub name: String,
    pub op: Op,
    pub op_pos: usize,
    pub value: String,
    pub quoted: bool,
    pub value_pos: usize,
}

/// Tokenises all of `input`. A lexical error becomes the last item, so the
/// parser reports the problems it finds earlier in the text first.
pub fn tokenize(input: &str) -> Vec<Result<Token, ParseError>> {
    let mut lexer = Lexer {
        chars: input.chars().collect(),
        at: 0,
    };
    let mut tokens = Vec::new();
    loop {
        match lexer.next_token() {
            Ok(Some(token)) => tokens.push(Ok(token)),
            Ok(None) => break,
            Err(error) => {
                tokens.push(Err(error));
                break;
            }
        }
    }
    tokens
}

struct Lexer {
    chars: Vec<char>,
    at: usize,
}

impl Lexer {
    fn peek_at(&self, index: usize) -> Option<char> {
        self.chars.get(index).copied()
    }

    fn next_token(&mut self) -> Result<Option<Token>, ParseError> {
        while self.peek_at(self.at).is_some_and(char::is_whitespace) {
            self.at += 1;
        }
        let pos = self.at;
        let Some(c) = self.peek_at(pos) else {
            return Ok(None);
        };
        let kind = match c {
            '(' => {
                self.at += 1;
                TokenKind::LParen
            }
            ')' => {
                self.at += 1;
                TokenKind::RParen
            }
            '"' => TokenKind::Phrase(self.quoted()?),
            '-' => {
                let next = self.peek_at(pos + 1);
                if next.is_none_or(|n| n.is_whitespace() || n == ')') {
                    return Err(
                        ParseError::new(pos, "\"-\" must be directly followed by a term")
                            .with_hint(
                                "write -outcome:success to exclude; quote \"-\" to search for it",
                            ),
                    );
                }
                self.at += 1;
                TokenKind::Minus
            }
            _ => self.word()?,
        };
        Ok(Some(Token { kind, pos }))
    }

    /// Reads a `"…"` phrase starting at the opening quote. `\"` and `\\` are
    /// escapes; any other backslash is kept, so Windows paths need no doubling.
    fn quoted(&mut self) -> Result<String, ParseError> {
        let open = self.at;
        self.at += 1;
        let mut text = String::new();
        loop {
            let Some(c) = self.peek_at(self.at) else {
                return Err(ParseError::new(open, "unterminated quote")
                    .with_hint("close the phrase with \""));
            };
            check_allowed(c, self.at)?;
            self.at += 1;
            match c {
                '"' => return Ok(text),
                '\\' if matches!(self.peek_at(self.at), Some('"' | '\\')) => {
                    text.extend(self.peek_at(self.at));
                    self.at += 1;
                }
                _ => text.push(c),
            }
        }
    }

    fn word(&mut self) -> Result<TokenKind, ParseError> {
        let start = self.at;
        while let Some(c) = self.peek_at(self.at).filter(|&c| !ends_word(c)) {
            check_allowed(c, self.at)?;
            self.at += 1;
        }
        let word: String = self.chars[start..self.at].iter().collect();
        let Some(split) = word
            .chars()
            .position(|c| matches!(c, ':' | '<' | '>' | '='))
        else {
            // Operators in any case: analysts used to other consoles type
            // `and`, and reading it as a word to search for found nothing.
            return Ok(match word.to_ascii_uppercase().as_str() {
                "AND" => TokenKind::And,
                "OR" => TokenKind::Or,
                "NOT" => TokenKind::Not,
                _ => TokenKind::Word(word),
            });
        };
        let op_pos = start + split;
        if split == 0 {
            return Err(ParseError::new(
                op_pos,
                format!("expected a field name before \"{}\"", self.chars[op_pos]),
            )
            .with_hint("quote text that contains : < > or ="));
        }
        let (op, op_len) = match (self.chars[op_pos], self.peek_at(op_pos + 1)) {
            (':' | '=', _) => (Op::Eq, 1),
            ('>', Some('=')) => (Op::Ge, 2),
            ('<', Some('=')) => (Op::Le, 2),
            ('>', _) => (Op::Gt, 1),
            _ => (Op::Lt, 1),
        };
        let name: String = self.chars[start..op_pos].iter().collect();
        let value_pos = op_pos + op_len;
        let mut value: String = self.chars[value_pos.min(self.at)..self.at].iter().collect();
        let mut quoted = false;
        if value.is_empty() {
            if self.peek_at(self.at) == Some('"') {
                value = self.quoted()?;
                quoted = true;
            } else {
                let op_text: String = self.chars[op_pos..value_pos].iter().collect();
                return Err(ParseError::new(
                    value_pos,
                    format!("missing value after \"{name}{op_text}\""),
                )
                .with_hint(format!(
                    "write {name}{op_text}value; {name}{op_text}\"\" matches an empty value"
                )));
            }
        }
        Ok(TokenKind::Field(FieldToken {
            name,
            op,
            op_pos,
            value,
            quoted,
            value_pos,
        }))
    }
}

/// Control characters have no business in a search and some (NUL) are not
/// allowed in ClickHouse regular expressions, so they stop the query early.
fn check_allowed(c: char, pos: usize) -> Result<(), ParseError> {
    if c.is_control() && !c.is_whitespace() {
        Err(ParseError::new(
            pos,
            format!("control character U+{:04X} is not allowed", u32::from(c)),
        ))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(input: &str) -> Vec<TokenKind> {
        tokenize(input)
            .into_iter()
            .map(|t| t.expect(input).kind)
            .collect()
    }

    fn field(name: &str, op: Op, op_pos: usize, value: &str, quoted: bool) -> TokenKind {
        TokenKind::Field(FieldToken {
            name: name.into(),
            op,
            op_pos,
            value: value.into(),
            quoted,
            value_pos: op_pos + if matches!(op, Op::Ge | Op::Le) { 2 } else { 1 },
        })
    }

    fn error(input: &str) -> ParseError {
        match tokenize(input).pop() {
            Some(Err(error)) => error,
            other => panic!("{input}: expected an error, got {other:?}"),
        }
    }

    #[test]
    fn words_keywords_and_punctuation() {
        use TokenKind::*;
        assert_eq!(
            kinds(" (a OR b)AND NOT -c and \"x y\"z NOT-c"),
            vec![
                LParen,
                Word("a".into()),
                Or,
                Word("b".into()),
                RParen,
                And,
                Not,
                Minus,
                Word("c".into()),
                And,
                Phrase("x y".into()),
                Word("z".into()),
                Word("NOT-c".into()),
            ]
        );
        assert_eq!(
            kinds("a-b NOTE -(x)"),
            vec![
                Word("a-b".into()),
                Word("NOTE".into()),
                Minus,
                LParen,
                Word("x".into()),
                RParen
            ]
        );
    }

    #[test]
    fn operators_in_any_case() {
        use TokenKind::*;
        assert_eq!(
            kinds("a and b Or c not d nOt e \"and\" andy"),
            vec![
                Word("a".into()),
                And,
                Word("b".into()),
                Or,
                Word("c".into()),
                Not,
                Word("d".into()),
                Not,
                Word("e".into()),
                Phrase("and".into()),
                Word("andy".into()),
            ]
        );
    }

    #[test]
    fn positions_are_char_offsets() {
        let tokens: Vec<usize> = tokenize("ü \"é\" x")
            .into_iter()
            .map(|t| t.unwrap().pos)
            .collect();
        assert_eq!(tokens, vec![0, 2, 6]);
    }

    #[test]
    fn fields_and_operators() {
        assert_eq!(
            kinds("action:user.*"),
            vec![field("action", Op::Eq, 6, "user.*", false)]
        );
        assert_eq!(
            kinds("ip:2001:db8::1"),
            vec![field("ip", Op::Eq, 2, "2001:db8::1", false)]
        );
        assert_eq!(
            kinds("occurred_at>=2026-03-01T12:30"),
            vec![field("occurred_at", Op::Ge, 11, "2026-03-01T12:30", false)]
        );
        assert_eq!(
            kinds("x<=1 x<1 x>1 x=1"),
            vec![
                field("x", Op::Le, 1, "1", false),
                field("x", Op::Lt, 6, "1", false),
                field("x", Op::Gt, 10, "1", false),
                field("x", Op::Eq, 14, "1", false),
            ]
        );
        assert_eq!(
            kinds(r#"resource.id:"q3 \"final\" C:\x\\y""#),
            vec![field(
                "resource.id",
                Op::Eq,
                11,
                r#"q3 "final" C:\x\y"#,
                true
            )]
        );
        assert_eq!(kinds("a:\"\""), vec![field("a", Op::Eq, 1, "", true)]);
    }

    #[test]
    fn lexical_errors() {
        let e = error("a \"b c");
        assert_eq!((e.position, e.message.as_str()), (2, "unterminated quote"));
        assert_eq!(error("x \"ab\\\"").position, 2);
        let e = error("ab action: x");
        assert_eq!(
            (e.position, e.message.as_str()),
            (10, "missing value after \"action:\"")
        );
        assert_eq!(error("t>=").position, 3);
        assert_eq!(error("a - b").position, 2);
        assert_eq!(error("(a -)").position, 3);
        assert_eq!(error("a -").position, 2);
        assert_eq!(error("x :y").position, 2);
        assert_eq!(error("x >5").position, 2);
        let e = error("ab c\0d");
        assert_eq!(
            (e.position, e.message.as_str()),
            (4, "control character U+0000 is not allowed")
        );
        assert_eq!(error("\"a\u{1b}\"").position, 2);
    }
}
