//! Traefik router rules, parsed into the snapshot's [`Matcher`] tree.
//!
//! A rule such as ``Host(`example.com`) && (PathPrefix(`/api`) || !Method(`POST`))``
//! goes through three steps: `lexer` turns the text into tokens, `parser`
//! applies the operator grammar (`!` binds tighter than `&&`, which binds
//! tighter than `||`), and `matchers` checks each matcher call, with `values`
//! normalising its arguments (hosts lower-cased, regexes compiled, IPs parsed)
//! and `query` reading `Query`'s several forms. `template` converts the
//! `{name:regex}` placeholders of the v2 syntax into regular expressions.
//!
//! Both syntaxes accept the other's forms where they do not conflict (v2's
//! multi-argument ``Host(`a`, `b`)``, `Headers`, ``Query(`k=v`)`` and
//! friends). The choice matters for `HostRegexp`, `Path` and `PathPrefix`,
//! whose arguments are placeholder templates in v2 and regexes or plain text
//! in v3, and for two-argument `Query`: key and value in v3, two `key=value`
//! pairs in v2.

mod lexer;
mod matchers;
mod parser;
mod query;
mod template;
mod values;

use sluice_proto::v1::Matcher;

/// Which grammar a router's `ruleSyntax` selects.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RuleSyntax {
    /// Traefik v3 rules: regex matchers take RE2 regexes, used as written.
    #[default]
    V3,
    /// Traefik v2 rules: `HostRegexp`, `Path` and `PathPrefix` take templates
    /// with `{name:regex}` placeholders.
    V2,
}

impl RuleSyntax {
    /// Reads a router's `ruleSyntax` option; absent or empty means v3, as in
    /// Traefik, where an empty Go string is the same as an unset one.
    pub fn from_option(value: Option<&str>) -> Result<Self, String> {
        match value {
            None | Some("" | "v3") => Ok(Self::V3),
            Some("v2") => Ok(Self::V2),
            Some(other) => Err(format!(
                "unknown rule syntax `{other}`, expected `v3` or `v2`"
            )),
        }
    }
}

/// A rule that does not parse, with the column of the problem.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("rule `{rule}`: column {column}: {message}")]
pub struct RuleError {
    /// The rule as written.
    pub rule: String,
    /// Where the problem is: a 1-based index in characters (not bytes), so it
    /// lines up with what an editor shows.
    pub column: usize,
    /// What is wrong, naming the offending text.
    pub message: String,
}

/// Parses a router rule into a matcher tree.
///
/// `&&` and `||` chains are flattened into single `all` and `any` lists, and
/// matchers given several arguments (v2's ``Host(`a`, `b`)``) become an `any`
/// of one matcher per argument.
pub fn parse_rule(rule: &str, syntax: RuleSyntax) -> Result<Matcher, RuleError> {
    let located = |error: ErrorAt| RuleError {
        rule: rule.to_owned(),
        column: error.column,
        message: error.message,
    };
    if rule.trim().is_empty() {
        return Err(located(ErrorAt::new(1, "empty rule")));
    }
    parser::parse(rule, syntax).map_err(located)
}

/// Traefik's default priority for a router without an explicit one: the
/// length of its rule in bytes (Go's `len`), so longer, more specific rules
/// are tried first.
pub fn rule_priority(rule: &str) -> i64 {
    i64::try_from(rule.len()).unwrap_or(i64::MAX)
}

/// A problem at a column of the rule; [`parse_rule`] attaches the rule text so
/// the steps below it need not carry it around.
#[derive(Debug, PartialEq)]
struct ErrorAt {
    /// 1-based character index into the rule.
    column: usize,
    message: String,
}

impl ErrorAt {
    fn new(column: usize, message: impl Into<String>) -> Self {
        Self {
            column,
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests;
