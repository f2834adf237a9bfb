//! The operator grammar, by recursive descent:
//!
//! ```text
//! rule    = or END
//! or      = and { "||" and }
//! and     = unary { "&&" unary }
//! unary   = "!" unary | "(" or ")" | call
//! call    = NAME "(" [ STRING { "," STRING } [ "," ] ] ")"
//! ```
//!
//! The trailing comma is Go's, which Traefik's parser inherits.

use sluice_proto::v1::Matcher;
use sluice_proto::v1::matcher::Kind;

use super::lexer::{Lexer, Token, TokenKind};
use super::matchers::{self, Arg, Call, Name};
use super::{ErrorAt, RuleSyntax};

/// Parses a non-blank rule.
pub(super) fn parse(rule: &str, syntax: RuleSyntax) -> Result<Matcher, ErrorAt> {
    let mut lexer = Lexer::new(rule);
    let current = lexer.next_token()?;
    let mut parser = Parser {
        lexer,
        current,
        previous: None,
        syntax,
        depth: 0,
    };
    let matcher = parser.or()?;
    let trailing = &parser.current;
    match trailing.kind {
        TokenKind::End => Ok(matcher),
        TokenKind::RParen => Err(ErrorAt::new(trailing.column, "unmatched `)`")),
        ref kind => Err(ErrorAt::new(
            trailing.column,
            format!("expected `&&` or `||`, found {kind}"),
        )),
    }
}

/// How deeply `(` and `!` may nest. Rules can come from less trusted
/// sources (Kubernetes annotations), so recursion is bounded rather than left
/// to overflow the stack; and each level may become two nested protobuf
/// messages, which must stay well within the 100 that prost decodes.
const MAX_DEPTH: usize = 32;

struct Parser {
    lexer: Lexer,
    /// The next token, not yet consumed.
    current: Token,
    /// The last consumed token, to say what an operand is missing after.
    previous: Option<Token>,
    syntax: RuleSyntax,
    /// `(` and `!` currently open.
    depth: usize,
}

impl Parser {
    /// Consumes the current token and returns it.
    fn advance(&mut self) -> Result<Token, ErrorAt> {
        let next = self.lexer.next_token()?;
        let consumed = std::mem::replace(&mut self.current, next);
        self.previous = Some(consumed.clone());
        Ok(consumed)
    }

    fn or(&mut self) -> Result<Matcher, ErrorAt> {
        let mut operands = vec![self.and()?];
        while self.current.kind == TokenKind::Or {
            self.advance()?;
            operands.push(self.and()?);
        }
        Ok(matchers::any_of(operands))
    }

    fn and(&mut self) -> Result<Matcher, ErrorAt> {
        let mut operands = vec![self.unary()?];
        while self.current.kind == TokenKind::And {
            self.advance()?;
            operands.push(self.unary()?);
        }
        Ok(matchers::all_of(operands))
    }

    fn unary(&mut self) -> Result<Matcher, ErrorAt> {
        match &self.current.kind {
            TokenKind::Not => {
                self.enter()?;
                self.advance()?;
                let operand = self.unary()?;
                self.depth -= 1;
                Ok(Matcher {
                    kind: Some(Kind::Not(Box::new(operand))),
                })
            }
            TokenKind::LParen => {
                self.enter()?;
                let open = self.advance()?;
                let inner = self.or()?;
                match &self.current.kind {
                    TokenKind::RParen => {
                        self.depth -= 1;
                        self.advance()?;
                        Ok(inner)
                    }
                    TokenKind::End => Err(ErrorAt::new(open.column, "unclosed parenthesis")),
                    kind => Err(ErrorAt::new(
                        self.current.column,
                        format!("expected `)`, `&&` or `||`, found {kind}"),
                    )),
                }
            }
            TokenKind::Ident(ident) => {
                // Resolved before moving on, so an unknown name is reported
                // even when what follows does not lex.
                let (ident, column) = (ident.clone(), self.current.column);
                let name = matchers::resolve(&ident, column)?;
                self.advance()?;
                self.call(ident, name, column)
            }
            _ => Err(self.missing_operand()),
        }
    }

    /// Opens one more level of nesting at the current token, if allowed.
    fn enter(&mut self) -> Result<(), ErrorAt> {
        if self.depth == MAX_DEPTH {
            return Err(ErrorAt::new(
                self.current.column,
                format!("rule nests `(` and `!` more than {MAX_DEPTH} levels deep"),
            ));
        }
        self.depth += 1;
        Ok(())
    }

    /// The error for a token that cannot start an operand.
    fn missing_operand(&self) -> ErrorAt {
        let found = &self.current;
        match (&found.kind, &self.previous) {
            (TokenKind::End, Some(previous)) => ErrorAt::new(
                previous.column,
                format!("missing operand after {}", previous.kind),
            ),
            (TokenKind::And | TokenKind::Or | TokenKind::RParen | TokenKind::End, _) => {
                ErrorAt::new(
                    found.column,
                    format!("missing operand before {}", found.kind),
                )
            }
            (kind, _) => ErrorAt::new(
                found.column,
                format!("expected a matcher such as ``Host(`example.com`)``, found {kind}"),
            ),
        }
    }

    /// `Name(args...)`, the name `ident` at `column` already consumed and
    /// resolved to `name`.
    fn call(&mut self, ident: String, name: Name, column: usize) -> Result<Matcher, ErrorAt> {
        let open = match &self.current.kind {
            TokenKind::LParen => self.advance()?,
            kind => {
                return Err(ErrorAt::new(
                    self.current.column,
                    format!("expected `(` after `{ident}`, found {kind}"),
                ));
            }
        };
        let mut args = Vec::new();
        loop {
            match &self.current.kind {
                TokenKind::RParen => break,
                TokenKind::End => return Err(ErrorAt::new(open.column, "unclosed parenthesis")),
                TokenKind::Str(value) => {
                    args.push(Arg {
                        value: value.clone(),
                        column: self.current.column,
                    });
                    self.advance()?;
                }
                TokenKind::Ident(word) => {
                    return Err(ErrorAt::new(
                        self.current.column,
                        format!(
                            "expected a string, found `{word}`: quote arguments with backticks, \
                             as in ``{ident}(`{word}`)``"
                        ),
                    ));
                }
                kind => {
                    return Err(ErrorAt::new(
                        self.current.column,
                        format!("expected a string or `)`, found {kind}"),
                    ));
                }
            }
            match &self.current.kind {
                TokenKind::Comma => {
                    self.advance()?;
                }
                TokenKind::RParen => break,
                TokenKind::End => return Err(ErrorAt::new(open.column, "unclosed parenthesis")),
                kind => {
                    return Err(ErrorAt::new(
                        self.current.column,
                        format!("expected `,` or `)` after an argument, found {kind}"),
                    ));
                }
            }
        }
        let call = Call {
            ident,
            name,
            column,
            args,
        };
        // Built before the `)` is consumed: consuming it lexes the next token,
        // and a bad argument here comes before a typo further right.
        let matcher = matchers::build(&call, self.syntax)?;
        self.advance()?;
        Ok(matcher)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::*;

    fn v3_err(rule: &str, column: usize, message: &str) {
        assert_eq!(v3_error(rule), (column, message.to_owned()), "rule {rule}");
    }

    #[test]
    fn not_binds_tighter_than_and_which_binds_tighter_than_or() {
        assert_eq!(
            v3("Host(`a`) || Host(`b`) && Host(`c`)"),
            any(vec![host("a"), all(vec![host("b"), host("c")])])
        );
        assert_eq!(
            v3("Host(`a`) && Host(`b`) || Host(`c`)"),
            any(vec![all(vec![host("a"), host("b")]), host("c")])
        );
        assert_eq!(
            v3("!Host(`a`) && Host(`b`)"),
            all(vec![not(host("a")), host("b")])
        );
        assert_eq!(
            v3("!Host(`a`) || !Host(`b`) && Host(`c`)"),
            any(vec![not(host("a")), all(vec![not(host("b")), host("c")])])
        );
    }

    #[test]
    fn parentheses_override_precedence() {
        assert_eq!(
            v3("(Host(`a`) || Host(`b`)) && Host(`c`)"),
            all(vec![any(vec![host("a"), host("b")]), host("c")])
        );
        assert_eq!(
            v3("!(Host(`a`) || Host(`b`))"),
            not(any(vec![host("a"), host("b")]))
        );
        assert_eq!(v3("((Host(`a`)))"), host("a"));
        assert_eq!(v3("!!Host(`a`)"), not(not(host("a"))));
    }

    #[test]
    fn chains_are_flattened() {
        let (a, b, c, d) = (host("a"), host("b"), host("c"), host("d"));
        let flat_all = all(vec![a.clone(), b.clone(), c.clone()]);
        assert_eq!(v3("Host(`a`) && Host(`b`) && Host(`c`)"), flat_all);
        assert_eq!(v3("Host(`a`) && (Host(`b`) && Host(`c`))"), flat_all);
        assert_eq!(v3("(Host(`a`) && Host(`b`)) && Host(`c`)"), flat_all);
        let flat_any = any(vec![a.clone(), b.clone(), c.clone()]);
        assert_eq!(v3("Host(`a`) || (Host(`b`) || Host(`c`))"), flat_any);
        // v2's multi-argument `any` merges into a surrounding `||` chain too.
        assert_eq!(v3("Host(`a`, `b`) || Host(`c`)"), flat_any);
        // A `||` inside `&&` is a different operator and stays nested.
        assert_eq!(
            v3("Host(`a`) && (Host(`b`) || Host(`c`)) && Host(`d`)"),
            all(vec![a, any(vec![b, c]), d])
        );
        // `!` keeps its operand whole.
        assert_eq!(
            v3("Method(`GET`) && !(Path(`/a`) && Path(`/b`))"),
            all(vec![method("GET"), not(all(vec![path("/a"), path("/b")])),])
        );
    }

    #[test]
    fn nesting_is_bounded() {
        let deepest = format!("{}Host(`a`){}", "(".repeat(32), ")".repeat(32));
        assert_eq!(v3(&deepest), host("a"));
        let nots = format!("{}Host(`a`)", "!".repeat(32));
        assert!(v3(&nots).kind.is_some());
        v3_err(
            &format!("{}Host(`a`){}", "(".repeat(33), ")".repeat(33)),
            33,
            "rule nests `(` and `!` more than 32 levels deep",
        );
        // Far past the limit, the error comes before the stack runs out.
        v3_err(
            &format!("{}Host(`a`)", "!(".repeat(100_000)),
            33,
            "rule nests `(` and `!` more than 32 levels deep",
        );
        // Siblings do not add up.
        let siblings = vec!["(Host(`a`))"; 100].join(" && ");
        assert!(v3(&siblings).kind.is_some());
    }

    #[test]
    fn trailing_comma_is_accepted_like_go() {
        assert_eq!(v3("Host(`a`,)"), host("a"));
    }

    #[test]
    fn unclosed_parentheses_point_at_the_opening_one() {
        v3_err("(Host(`a`)", 1, "unclosed parenthesis");
        v3_err(
            "Host(`a`) && (Path(`/`) || (Method(`GET`))",
            14,
            "unclosed parenthesis",
        );
        v3_err("Host(`a`", 5, "unclosed parenthesis");
        v3_err("Host(`a`,", 5, "unclosed parenthesis");
        v3_err("Host(", 5, "unclosed parenthesis");
    }

    #[test]
    fn unmatched_closing_parenthesis() {
        v3_err("Host(`a`))", 10, "unmatched `)`");
        v3_err("(Host(`a`))) && Path(`/`)", 12, "unmatched `)`");
    }

    #[test]
    fn missing_operands() {
        v3_err("Host(`a`) &&", 11, "missing operand after `&&`");
        v3_err("Host(`a`) ||  ", 11, "missing operand after `||`");
        v3_err("&& Host(`a`)", 1, "missing operand before `&&`");
        v3_err(
            "Host(`a`) && || Path(`/`)",
            14,
            "missing operand before `||`",
        );
        v3_err("!", 1, "missing operand after `!`");
        v3_err("Host(`a`) && !", 14, "missing operand after `!`");
        v3_err("()", 2, "missing operand before `)`");
        v3_err("Host(`a`) && (", 14, "missing operand after `(`");
        v3_err(
            "Host(`a`) && `b`",
            14,
            "expected a matcher such as ``Host(`example.com`)``, found string `b`",
        );
        v3_err(
            ", Host(`a`)",
            1,
            "expected a matcher such as ``Host(`example.com`)``, found `,`",
        );
    }

    #[test]
    fn trailing_garbage() {
        v3_err(
            "Host(`a`) Path(`/`)",
            11,
            "expected `&&` or `||`, found `Path`",
        );
        v3_err(
            "Host(`a`) `b`",
            11,
            "expected `&&` or `||`, found string `b`",
        );
        v3_err("Host(`a`) !", 11, "expected `&&` or `||`, found `!`");
        v3_err(
            "(Host(`a`) Path(`/`))",
            12,
            "expected `)`, `&&` or `||`, found `Path`",
        );
    }

    #[test]
    fn malformed_calls() {
        v3_err("Host `a`", 6, "expected `(` after `Host`, found string `a`");
        v3_err(
            "Host(`a`) && Path",
            18,
            "expected `(` after `Path`, found end of rule",
        );
        v3_err(
            "Host(example)",
            6,
            "expected a string, found `example`: quote arguments with backticks, \
             as in ``Host(`example`)``",
        );
        v3_err("Host(,)", 6, "expected a string or `)`, found `,`");
        v3_err("Host(`a`,,)", 10, "expected a string or `)`, found `,`");
        v3_err(
            "Header(`a` `b`)",
            12,
            "expected `,` or `)` after an argument, found string `b`",
        );
        v3_err(
            "Host(`a` && Path(`/`))",
            10,
            "expected `,` or `)` after an argument, found `&&`",
        );
    }

    #[test]
    fn errors_are_reported_left_to_right() {
        // The bad argument comes before the lone `&`.
        v3_err(
            "Path(`a`) & Host(`b`)",
            6,
            "path `a` does not start with `/`",
        );
        // The unknown name comes before the unsupported quote.
        v3_err("Hots('a')", 1, "unknown matcher `Hots`");
        v3_err("Host(`a`) && Hots('a')", 14, "unknown matcher `Hots`");
    }

    #[test]
    fn lexer_errors_surface_with_their_column() {
        v3_err("Host(`a`) & Path(`/`)", 11, "expected `&&`");
        v3_err("Host(`a`) | Path(`/`)", 11, "expected `||`");
        v3_err("Host(`a`) && Path(`/)", 19, "unclosed string");
        v3_err("Host(\"a) && Path(`/`)", 6, "unclosed string");
    }

    #[test]
    fn unknown_matchers_are_reported_before_their_arguments() {
        v3_err("Hots(`a`)", 1, "unknown matcher `Hots`");
        v3_err("Hots(", 1, "unknown matcher `Hots`");
        v3_err(
            "Path(`/`) && hostRegexp(`a`)",
            14,
            "unknown matcher `hostRegexp`, did you mean `HostRegexp`?",
        );
        v3_err(
            "HoSt(`a`)",
            1,
            "unknown matcher `HoSt`, did you mean `Host`?",
        );
        v3_err(
            "clientIp(`::1`)",
            1,
            "unknown matcher `clientIp`, did you mean `ClientIP`?",
        );
    }

    #[test]
    fn names_are_accepted_in_the_casings_traefik_registers() {
        // Traefik registers each matcher as written, lower-cased, upper-cased
        // and capitalised.
        for rule in ["Host(`a`)", "host(`a`)", "HOST(`a`)"] {
            assert_eq!(v3(rule), host("a"));
        }
        for rule in [
            "PathPrefix(`/`)",
            "pathprefix(`/`)",
            "PATHPREFIX(`/`)",
            "Pathprefix(`/`)",
        ] {
            assert_eq!(v3(rule), path_prefix("/"));
        }
        for rule in ["ClientIP(`::1`)", "clientip(`::1`)", "Clientip(`::1`)"] {
            assert_eq!(v3(rule), client_ip("::1"));
        }
    }
}
