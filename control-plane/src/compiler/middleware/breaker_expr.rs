//! Circuit-breaker expressions, parsed into the snapshot's [`BreakerExpr`] tree.
//!
//! The language is the one Traefik takes from oxy: a metric compared with a
//! number, combined with `&&`, `||` and parentheses (`&&` binds tighter).
//!
//! ```text
//! NetworkErrorRatio() > 0.5
//! ResponseCodeRatio(500, 600, 0, 600) > 0.25 || LatencyAtQuantileMS(50.0) > 100
//! ```
//!
//! `a && b && c` becomes one `all` list (and `||` one `any` list), so a proxy
//! walks a shallow tree.

use sluice_proto::v1::{
    BreakerComparison, BreakerExpr, BreakerExprList, BreakerMetric, BreakerNetworkErrorRatio,
    BreakerResponseCodeRatio, breaker_expr, breaker_metric,
};

/// Why an expression does not parse, and where.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct ExprError {
    /// 1-based index in characters (not bytes), as an editor shows it.
    pub(super) column: usize,
    pub(super) reason: String,
}

/// Parses an expression such as `NetworkErrorRatio() > 0.5`.
pub(super) fn parse(text: &str) -> Result<BreakerExpr, ExprError> {
    let tokens = tokenize(text)?;
    let mut parser = Parser { tokens, next: 0 };
    let expr = parser.any()?;
    match parser.peek() {
        Token {
            kind: Kind::End, ..
        } => Ok(expr),
        token => Err(token.error(format!("unexpected {}", token.kind))),
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Kind {
    Name(String),
    Number(f64),
    Open,
    Close,
    Comma,
    And,
    Or,
    Compare(&'static str),
    End,
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Name(name) => write!(f, "`{name}`"),
            Self::Number(number) => write!(f, "`{number}`"),
            Self::Open => f.write_str("`(`"),
            Self::Close => f.write_str("`)`"),
            Self::Comma => f.write_str("`,`"),
            Self::And => f.write_str("`&&`"),
            Self::Or => f.write_str("`||`"),
            Self::Compare(operator) => write!(f, "`{operator}`"),
            Self::End => f.write_str("end of expression"),
        }
    }
}

#[derive(Debug, Clone)]
struct Token {
    kind: Kind,
    column: usize,
}

impl Token {
    fn error(&self, reason: impl Into<String>) -> ExprError {
        ExprError {
            column: self.column,
            reason: reason.into(),
        }
    }
}

fn tokenize(text: &str) -> Result<Vec<Token>, ExprError> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut at = 0;
    while at < chars.len() {
        let start = at;
        let c = chars[at];
        let pair = |second: char| chars.get(start + 1) == Some(&second);
        let kind = match c {
            c if c.is_whitespace() => {
                at += 1;
                continue;
            }
            '(' => Kind::Open,
            ')' => Kind::Close,
            ',' => Kind::Comma,
            '&' if pair('&') => Kind::And,
            '|' if pair('|') => Kind::Or,
            '<' | '>' | '=' | '!' if pair('=') => Kind::Compare(match c {
                '<' => "<=",
                '>' => ">=",
                '=' => "==",
                _ => "!=",
            }),
            '<' => Kind::Compare("<"),
            '>' => Kind::Compare(">"),
            c if c.is_ascii_alphabetic() => {
                while chars.get(at).is_some_and(|c| c.is_ascii_alphanumeric()) {
                    at += 1;
                }
                tokens.push(Token {
                    kind: Kind::Name(chars[start..at].iter().collect()),
                    column: start + 1,
                });
                continue;
            }
            c if c.is_ascii_digit() || c == '.' => {
                while chars
                    .get(at)
                    .is_some_and(|c| c.is_ascii_digit() || *c == '.')
                {
                    at += 1;
                }
                let literal: String = chars[start..at].iter().collect();
                let number = literal.parse().map_err(|_| ExprError {
                    column: start + 1,
                    reason: format!("invalid number `{literal}`"),
                })?;
                tokens.push(Token {
                    kind: Kind::Number(number),
                    column: start + 1,
                });
                continue;
            }
            other => {
                return Err(ExprError {
                    column: start + 1,
                    reason: format!("unexpected character `{other}`"),
                });
            }
        };
        at += match kind {
            Kind::And | Kind::Or => 2,
            Kind::Compare(operator) => operator.len(),
            _ => 1,
        };
        tokens.push(Token {
            kind,
            column: start + 1,
        });
    }
    tokens.push(Token {
        kind: Kind::End,
        column: chars.len() + 1,
    });
    Ok(tokens)
}

struct Parser {
    tokens: Vec<Token>,
    next: usize,
}

impl Parser {
    fn peek(&self) -> &Token {
        // The token list always ends with `End`, which is never consumed.
        &self.tokens[self.next.min(self.tokens.len() - 1)]
    }

    fn take(&mut self) -> Token {
        let token = self.peek().clone();
        if token.kind != Kind::End {
            self.next += 1;
        }
        token
    }

    fn expect(&mut self, kind: Kind, what: &str) -> Result<(), ExprError> {
        let token = self.take();
        if token.kind == kind {
            Ok(())
        } else {
            Err(token.error(format!("expected {what}, found {}", token.kind)))
        }
    }

    /// `all ('||' all)*`
    fn any(&mut self) -> Result<BreakerExpr, ExprError> {
        let mut exprs = vec![self.all()?];
        while self.peek().kind == Kind::Or {
            self.take();
            exprs.push(self.all()?);
        }
        Ok(flatten(exprs, breaker_expr::Kind::Any))
    }

    /// `primary ('&&' primary)*`
    fn all(&mut self) -> Result<BreakerExpr, ExprError> {
        let mut exprs = vec![self.primary()?];
        while self.peek().kind == Kind::And {
            self.take();
            exprs.push(self.primary()?);
        }
        Ok(flatten(exprs, breaker_expr::Kind::All))
    }

    /// `'(' any ')'` or `metric comparator number`
    fn primary(&mut self) -> Result<BreakerExpr, ExprError> {
        if self.peek().kind == Kind::Open {
            self.take();
            let inner = self.any()?;
            self.expect(Kind::Close, "`)`")?;
            return Ok(inner);
        }
        let metric = self.metric()?;
        let token = self.take();
        let Kind::Compare(operator) = token.kind else {
            return Err(token.error(format!(
                "expected a comparison (<, <=, >, >=, ==, !=), found {}",
                token.kind
            )));
        };
        let value = self.number()?;
        Ok(BreakerExpr {
            kind: Some(breaker_expr::Kind::Comparison(BreakerComparison {
                metric: Some(metric),
                operator: operator.to_owned(),
                value,
            })),
        })
    }

    fn metric(&mut self) -> Result<BreakerMetric, ExprError> {
        let token = self.take();
        let Kind::Name(name) = &token.kind else {
            return Err(token.error(format!(
                "expected NetworkErrorRatio(), ResponseCodeRatio(...), \
                 LatencyAtQuantileMS(...) or `(`, found {}",
                token.kind
            )));
        };
        self.expect(Kind::Open, &format!("`(` after `{name}`"))?;
        let kind = match name.as_str() {
            "NetworkErrorRatio" => {
                breaker_metric::Kind::NetworkErrorRatio(BreakerNetworkErrorRatio {})
            }
            "ResponseCodeRatio" => {
                let from = self.status()?;
                self.expect(Kind::Comma, "`,`")?;
                let to = self.status_after(from, &token)?;
                self.expect(Kind::Comma, "`,`")?;
                let div_from = self.status()?;
                self.expect(Kind::Comma, "`,`")?;
                let div_to = self.status_after(div_from, &token)?;
                breaker_metric::Kind::ResponseCodeRatio(BreakerResponseCodeRatio {
                    from,
                    to,
                    div_from,
                    div_to,
                })
            }
            "LatencyAtQuantileMS" => {
                let quantile_token = self.peek().clone();
                let quantile = self.number()?;
                if quantile <= 0.0 || quantile > 100.0 {
                    return Err(quantile_token.error(format!(
                        "quantile {quantile} is not a percentage in (0, 100]"
                    )));
                }
                breaker_metric::Kind::LatencyAtQuantileMs(quantile)
            }
            other => {
                return Err(token.error(format!(
                    "unknown function `{other}` (expected NetworkErrorRatio, \
                     ResponseCodeRatio or LatencyAtQuantileMS)"
                )));
            }
        };
        self.expect(Kind::Close, "`)`")?;
        Ok(BreakerMetric { kind: Some(kind) })
    }

    fn number(&mut self) -> Result<f64, ExprError> {
        let token = self.take();
        match &token.kind {
            Kind::Number(number) => Ok(*number),
            other => Err(token.error(format!("expected a number, found {other}"))),
        }
    }

    /// A status code bound of `ResponseCodeRatio`: a whole number.
    fn status(&mut self) -> Result<u32, ExprError> {
        let token = self.peek().clone();
        let number = self.number()?;
        if number.fract() != 0.0 || number > f64::from(u32::MAX) {
            return Err(token.error(format!("expected a status code, found `{number}`")));
        }
        // A whole number in range, checked above.
        Ok(number as u32)
    }

    /// The exclusive upper bound of a range starting at `from`.
    fn status_after(&mut self, from: u32, function: &Token) -> Result<u32, ExprError> {
        let token = self.peek().clone();
        let to = self.status()?;
        if to <= from {
            return Err(token.error(format!(
                "empty status range [{from}, {to}) in {} (the upper bound is exclusive)",
                function.kind
            )));
        }
        Ok(to)
    }
}

/// One expression stays as it is; several become an `all` or `any` list.
fn flatten(
    mut exprs: Vec<BreakerExpr>,
    list: fn(BreakerExprList) -> breaker_expr::Kind,
) -> BreakerExpr {
    if exprs.len() == 1 {
        return exprs.remove(0);
    }
    BreakerExpr {
        kind: Some(list(BreakerExprList { exprs })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn comparison(metric: breaker_metric::Kind, operator: &str, value: f64) -> BreakerExpr {
        BreakerExpr {
            kind: Some(breaker_expr::Kind::Comparison(BreakerComparison {
                metric: Some(BreakerMetric { kind: Some(metric) }),
                operator: operator.to_owned(),
                value,
            })),
        }
    }

    fn network(operator: &str, value: f64) -> BreakerExpr {
        comparison(
            breaker_metric::Kind::NetworkErrorRatio(BreakerNetworkErrorRatio {}),
            operator,
            value,
        )
    }

    fn latency(quantile: f64, operator: &str, value: f64) -> BreakerExpr {
        comparison(
            breaker_metric::Kind::LatencyAtQuantileMs(quantile),
            operator,
            value,
        )
    }

    fn list(
        kind: fn(BreakerExprList) -> breaker_expr::Kind,
        exprs: Vec<BreakerExpr>,
    ) -> BreakerExpr {
        BreakerExpr {
            kind: Some(kind(BreakerExprList { exprs })),
        }
    }

    fn error(text: &str) -> ExprError {
        parse(text).unwrap_err()
    }

    #[test]
    fn parses_each_metric() {
        assert_eq!(
            parse("NetworkErrorRatio() > 0.5").unwrap(),
            network(">", 0.5)
        );
        assert_eq!(
            parse("ResponseCodeRatio(500, 600, 0, 600) > 0.25").unwrap(),
            comparison(
                breaker_metric::Kind::ResponseCodeRatio(BreakerResponseCodeRatio {
                    from: 500,
                    to: 600,
                    div_from: 0,
                    div_to: 600,
                }),
                ">",
                0.25,
            )
        );
        assert_eq!(
            parse("LatencyAtQuantileMS(50.0) > 100").unwrap(),
            latency(50.0, ">", 100.0)
        );
    }

    #[test]
    fn parses_every_comparator() {
        for operator in ["<", "<=", ">", ">=", "==", "!="] {
            let text = format!("NetworkErrorRatio(){operator}0.5");
            assert_eq!(parse(&text).unwrap(), network(operator, 0.5), "{text}");
        }
    }

    #[test]
    fn and_binds_tighter_than_or_and_chains_are_flattened() {
        let text = "NetworkErrorRatio() > 0.1 || NetworkErrorRatio() > 0.2 \
                    && NetworkErrorRatio() > 0.3 && NetworkErrorRatio() > 0.4";
        assert_eq!(
            parse(text).unwrap(),
            list(
                breaker_expr::Kind::Any,
                vec![
                    network(">", 0.1),
                    list(
                        breaker_expr::Kind::All,
                        vec![network(">", 0.2), network(">", 0.3), network(">", 0.4)],
                    ),
                ],
            )
        );
    }

    #[test]
    fn parentheses_group() {
        let text = "(NetworkErrorRatio() > 0.1 || LatencyAtQuantileMS(99) > 500) \
                    && ((NetworkErrorRatio() < 0.9))";
        assert_eq!(
            parse(text).unwrap(),
            list(
                breaker_expr::Kind::All,
                vec![
                    list(
                        breaker_expr::Kind::Any,
                        vec![network(">", 0.1), latency(99.0, ">", 500.0)],
                    ),
                    network("<", 0.9),
                ],
            )
        );
    }

    #[test]
    fn errors_give_the_column_of_the_problem() {
        assert_eq!(
            error("NetworkErrorRatio() >"),
            ExprError {
                column: 22,
                reason: "expected a number, found end of expression".to_owned()
            }
        );
        assert_eq!(error("NetworkErrorRatio() 0.5").column, 21);
        assert!(
            error("NetworkErrorRatio() 0.5")
                .reason
                .contains("expected a comparison")
        );
        let unknown = error("NetworkErrorRatio() > 0.5 && Errors() > 1");
        assert_eq!(unknown.column, 30);
        assert!(
            unknown.reason.contains("unknown function `Errors`"),
            "{unknown:?}"
        );
        assert_eq!(error("(NetworkErrorRatio() > 0.5").column, 27);
        assert_eq!(error("NetworkErrorRatio() > 0.5)").reason, "unexpected `)`");
        assert_eq!(
            error("NetworkErrorRatio() > 0.5 & x").reason,
            "unexpected character `&`"
        );
        assert_eq!(
            error("NetworkErrorRatio() > 1.2.3").reason,
            "invalid number `1.2.3`"
        );
        assert_eq!(
            error("NetworkErrorRatio > 1").reason,
            "expected `(` after `NetworkErrorRatio`, found `>`"
        );
        assert_eq!(
            error("").reason.split(',').next(),
            Some("expected NetworkErrorRatio()")
        );
        // Columns count characters, not bytes.
        assert_eq!(error("NetworkErrorRatio() > é").column, 23);
    }

    #[test]
    fn checks_function_arguments() {
        let reversed = error("ResponseCodeRatio(600, 500, 0, 600) > 0.5");
        assert_eq!(reversed.column, 24);
        assert!(
            reversed.reason.contains("empty status range [600, 500)"),
            "{reversed:?}"
        );
        let fraction = error("ResponseCodeRatio(500.5, 600, 0, 600) > 0.5");
        assert_eq!(
            (fraction.column, fraction.reason.as_str()),
            (19, "expected a status code, found `500.5`")
        );
        assert_eq!(error("ResponseCodeRatio(500, 600) > 0.5").column, 27);
        let quantile = error("LatencyAtQuantileMS(150) > 10");
        assert_eq!(quantile.column, 21);
        assert!(quantile.reason.contains("not a percentage"), "{quantile:?}");
        assert!(
            error("LatencyAtQuantileMS(0) > 10")
                .reason
                .contains("not a percentage")
        );
    }
}
