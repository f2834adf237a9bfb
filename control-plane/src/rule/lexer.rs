//! Splits a rule into tokens, on demand, so the parser reports problems in
//! the order a reader meets them.
//!
//! Traefik parses rules with Go's expression parser, so strings follow Go's
//! literal rules: backticks delimit raw strings (no escapes), double quotes
//! delimit interpreted strings with Go's escape sequences.

use std::fmt;

use super::ErrorAt;

/// What a token is.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum TokenKind {
    /// A matcher name such as `Host`.
    Ident(String),
    /// A string argument, escapes already resolved.
    Str(String),
    /// `(`
    LParen,
    /// `)`
    RParen,
    /// `,`
    Comma,
    /// `&&`
    And,
    /// `||`
    Or,
    /// `!`
    Not,
    /// The end of the rule.
    End,
}

impl fmt::Display for TokenKind {
    /// How a token is named in error messages.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ident(name) => write!(f, "`{name}`"),
            Self::Str(value) => write!(f, "string `{value}`"),
            Self::LParen => f.write_str("`(`"),
            Self::RParen => f.write_str("`)`"),
            Self::Comma => f.write_str("`,`"),
            Self::And => f.write_str("`&&`"),
            Self::Or => f.write_str("`||`"),
            Self::Not => f.write_str("`!`"),
            Self::End => f.write_str("end of rule"),
        }
    }
}

/// A token and where it starts.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Token {
    pub(super) kind: TokenKind,
    /// 1-based character index of the token's first character.
    pub(super) column: usize,
}

/// Produces the tokens of one rule.
pub(super) struct Lexer {
    /// The rule as characters, because columns count characters.
    chars: Vec<char>,
    /// Index of the next character to read.
    pos: usize,
}

impl Lexer {
    pub(super) fn new(rule: &str) -> Self {
        Self {
            chars: rule.chars().collect(),
            pos: 0,
        }
    }

    /// The next token; [`TokenKind::End`] once the rule is exhausted, as often
    /// as asked.
    pub(super) fn next_token(&mut self) -> Result<Token, ErrorAt> {
        while self.chars.get(self.pos).is_some_and(|c| c.is_whitespace()) {
            self.pos += 1;
        }
        let start = self.pos;
        let column = start + 1;
        let Some(&c) = self.chars.get(start) else {
            return Ok(Token {
                kind: TokenKind::End,
                column,
            });
        };
        self.pos += 1;
        let kind = match c {
            '(' => TokenKind::LParen,
            ')' => TokenKind::RParen,
            ',' => TokenKind::Comma,
            '!' => TokenKind::Not,
            '&' => self.doubled('&', TokenKind::And, column)?,
            '|' => self.doubled('|', TokenKind::Or, column)?,
            '`' => self.raw_string(column)?,
            '"' => self.interpreted_string(column)?,
            c if c.is_alphabetic() || c == '_' => {
                while self
                    .chars
                    .get(self.pos)
                    .is_some_and(|&c| c.is_alphanumeric() || c == '_')
                {
                    self.pos += 1;
                }
                TokenKind::Ident(self.chars[start..self.pos].iter().collect())
            }
            '\'' => {
                return Err(ErrorAt::new(
                    column,
                    "unexpected `'`: quote strings with backticks or double quotes",
                ));
            }
            c => return Err(ErrorAt::new(column, format!("unexpected character `{c}`"))),
        };
        Ok(Token { kind, column })
    }

    /// `&&` or `||`: a single `&` or `|` is a typo, not a token.
    fn doubled(&mut self, c: char, kind: TokenKind, column: usize) -> Result<TokenKind, ErrorAt> {
        if self.chars.get(self.pos) == Some(&c) {
            self.pos += 1;
            Ok(kind)
        } else {
            Err(ErrorAt::new(column, format!("expected `{c}{c}`")))
        }
    }

    /// A backtick string: everything up to the next backtick, as written.
    fn raw_string(&mut self, column: usize) -> Result<TokenKind, ErrorAt> {
        let Some(len) = self.chars[self.pos..].iter().position(|&c| c == '`') else {
            return Err(ErrorAt::new(column, "unclosed string"));
        };
        // Go drops carriage returns from raw strings, so a rule written in a
        // file with CRLF line endings means the same as with LF.
        let value = self.chars[self.pos..self.pos + len]
            .iter()
            .filter(|&&c| c != '\r')
            .collect();
        self.pos += len + 1;
        Ok(TokenKind::Str(value))
    }

    /// A double-quoted string with Go's escapes. Go's `\x` and octal escapes
    /// produce bytes, not characters, so the value is built as bytes and must
    /// be UTF-8 once complete.
    fn interpreted_string(&mut self, column: usize) -> Result<TokenKind, ErrorAt> {
        let mut bytes = Vec::new();
        loop {
            let Some(&c) = self.chars.get(self.pos) else {
                return Err(ErrorAt::new(column, "unclosed string"));
            };
            self.pos += 1;
            match c {
                '"' => break,
                '\n' => {
                    return Err(ErrorAt::new(
                        column,
                        "unclosed string (a double-quoted string ends at a newline)",
                    ));
                }
                '\\' => self.escape(&mut bytes, column)?,
                c => bytes.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
            }
        }
        String::from_utf8(bytes)
            .map(TokenKind::Str)
            .map_err(|_| ErrorAt::new(column, "string escapes do not form valid UTF-8"))
    }

    /// One escape sequence, the backslash already consumed.
    fn escape(&mut self, bytes: &mut Vec<u8>, string_column: usize) -> Result<(), ErrorAt> {
        let backslash_column = self.pos;
        let Some(&c) = self.chars.get(self.pos) else {
            return Err(ErrorAt::new(string_column, "unclosed string"));
        };
        self.pos += 1;
        let simple = match c {
            'a' => Some(0x07),
            'b' => Some(0x08),
            'f' => Some(0x0c),
            'n' => Some(b'\n'),
            'r' => Some(b'\r'),
            't' => Some(b'\t'),
            'v' => Some(0x0b),
            '\\' => Some(b'\\'),
            '"' => Some(b'"'),
            _ => None,
        };
        if let Some(byte) = simple {
            bytes.push(byte);
            return Ok(());
        }
        let invalid = |sequence: &str| {
            ErrorAt::new(
                backslash_column,
                format!("invalid escape sequence `\\{sequence}`"),
            )
        };
        match c {
            '0'..='7' => {
                let digits = self.take(2);
                let sequence = format!("{c}{digits}");
                match u8::from_str_radix(&sequence, 8) {
                    Ok(byte) if digits.len() == 2 => bytes.push(byte),
                    _ => return Err(invalid(&sequence)),
                }
            }
            'x' => {
                let digits = self.take(2);
                match u8::from_str_radix(&digits, 16) {
                    Ok(byte) if digits.len() == 2 => bytes.push(byte),
                    _ => return Err(invalid(&format!("x{digits}"))),
                }
            }
            'u' | 'U' => {
                let digits = self.take(if c == 'u' { 4 } else { 8 });
                let decoded = u32::from_str_radix(&digits, 16)
                    .ok()
                    .filter(|_| digits.len() == if c == 'u' { 4 } else { 8 })
                    .and_then(char::from_u32);
                match decoded {
                    Some(decoded) => {
                        bytes.extend_from_slice(decoded.encode_utf8(&mut [0; 4]).as_bytes());
                    }
                    None => return Err(invalid(&format!("{c}{digits}"))),
                }
            }
            other => return Err(invalid(&other.to_string())),
        }
        Ok(())
    }

    /// Up to `n` more characters of an escape sequence, stopping before a
    /// closing quote so a short sequence is reported as invalid rather than
    /// swallowing the end of the string.
    fn take(&mut self, n: usize) -> String {
        let taken: String = self.chars[self.pos..]
            .iter()
            .take(n)
            .take_while(|&&c| c != '"')
            .collect();
        self.pos += taken.chars().count();
        taken
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(rule: &str) -> Result<Vec<TokenKind>, ErrorAt> {
        let mut lexer = Lexer::new(rule);
        let mut kinds = Vec::new();
        loop {
            let token = lexer.next_token()?;
            if token.kind == TokenKind::End {
                return Ok(kinds);
            }
            kinds.push(token.kind);
        }
    }

    fn string(rule: &str) -> String {
        match tokens(rule).unwrap().as_slice() {
            [TokenKind::Str(value)] => value.clone(),
            other => panic!("expected one string, got {other:?}"),
        }
    }

    fn error(rule: &str) -> (usize, String) {
        let error = tokens(rule).unwrap_err();
        (error.column, error.message)
    }

    #[test]
    fn all_token_kinds() {
        use TokenKind::*;
        assert_eq!(
            tokens("!Host(`a`, \"b\") && (x_1 || Y)").unwrap(),
            vec![
                Not,
                Ident("Host".into()),
                LParen,
                Str("a".into()),
                Comma,
                Str("b".into()),
                RParen,
                And,
                LParen,
                Ident("x_1".into()),
                Or,
                Ident("Y".into()),
                RParen,
            ]
        );
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        let mut lexer = Lexer::new("Host(`é`) &&");
        let columns: Vec<usize> = std::iter::from_fn(|| {
            let token = lexer.next_token().unwrap();
            (token.kind != TokenKind::End).then_some(token.column)
        })
        .collect();
        assert_eq!(columns, vec![1, 5, 6, 9, 11]);
    }

    #[test]
    fn end_is_repeated_and_points_past_the_rule() {
        let mut lexer = Lexer::new("a ");
        lexer.next_token().unwrap();
        for _ in 0..2 {
            let end = lexer.next_token().unwrap();
            assert_eq!(end.kind, TokenKind::End);
            assert_eq!(end.column, 3);
        }
    }

    #[test]
    fn raw_strings_keep_backslashes_and_drop_carriage_returns() {
        assert_eq!(string(r"`[a-z]+\.example\.com`"), r"[a-z]+\.example\.com");
        assert_eq!(string("`a\r\nb`"), "a\nb");
        assert_eq!(string("`say \"hi\"`"), "say \"hi\"");
    }

    #[test]
    fn interpreted_strings_resolve_go_escapes() {
        assert_eq!(string(r#""a\"b\\c""#), "a\"b\\c");
        assert_eq!(string(r#""\a\b\f\n\r\t\v""#), "\x07\x08\x0c\n\r\t\x0b");
        assert_eq!(string(r#""\x41\101\u00e9\U0001F600""#), "AAé😀");
        // Bytes from `\x` escapes combine into one UTF-8 character.
        assert_eq!(string(r#""\xc3\xa9""#), "é");
        assert_eq!(string(r#""[a-z]+\\.example""#), r"[a-z]+\.example");
    }

    #[test]
    fn invalid_escapes_point_at_the_backslash() {
        assert_eq!(
            error(r#"Host("a\qb")"#),
            (8, r"invalid escape sequence `\q`".to_owned())
        );
        assert_eq!(
            error(r#""\x4""#),
            (2, r"invalid escape sequence `\x4`".to_owned())
        );
        assert_eq!(
            error(r#""\u12G4""#),
            (2, r"invalid escape sequence `\u12G4`".to_owned())
        );
        // Surrogates are not characters.
        assert_eq!(
            error(r#""\uD800""#),
            (2, r"invalid escape sequence `\uD800`".to_owned())
        );
        assert_eq!(
            error(r#""\400""#),
            (2, r"invalid escape sequence `\400`".to_owned())
        );
        // Go rejects `\'` in double-quoted strings.
        assert_eq!(
            error(r#""\'""#),
            (2, r"invalid escape sequence `\'`".to_owned())
        );
    }

    #[test]
    fn byte_escapes_must_form_utf8() {
        assert_eq!(
            error(r#"Host("\xff")"#),
            (6, "string escapes do not form valid UTF-8".to_owned())
        );
    }

    #[test]
    fn unclosed_strings_point_at_the_opening_quote() {
        assert_eq!(error("Host(`a)"), (6, "unclosed string".to_owned()));
        assert_eq!(error("Host(\"a)"), (6, "unclosed string".to_owned()));
        assert_eq!(error("Host(\"a\\"), (6, "unclosed string".to_owned()));
        assert_eq!(
            error("Host(\"a\nb\")"),
            (
                6,
                "unclosed string (a double-quoted string ends at a newline)".to_owned()
            )
        );
        // Raw strings may span lines.
        assert_eq!(string("`a\nb`"), "a\nb");
    }

    #[test]
    fn single_ampersand_or_pipe_is_an_error() {
        assert_eq!(error("a & b"), (3, "expected `&&`".to_owned()));
        assert_eq!(error("a | b"), (3, "expected `||`".to_owned()));
        assert_eq!(error("a &"), (3, "expected `&&`".to_owned()));
    }

    #[test]
    fn unexpected_characters_are_named() {
        assert_eq!(
            error("Host(`a`) ; x"),
            (11, "unexpected character `;`".to_owned())
        );
        assert_eq!(
            error("Host('a')"),
            (
                6,
                "unexpected `'`: quote strings with backticks or double quotes".to_owned()
            )
        );
    }
}
