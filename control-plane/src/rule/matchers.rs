//! Matcher calls: which names exist, how many arguments each takes, and how
//! calls combine into the tree. `values` checks and normalises the
//! arguments; `query` handles `Query`'s many forms.

use sluice_proto::v1::matcher::Kind;
use sluice_proto::v1::{HeaderMatch, Matcher, MatcherList};

use super::template::Target;
use super::values::{client_ip, compiled, header_name, host, host_regexp, method, path};
use super::{ErrorAt, RuleSyntax, query};

/// A matcher, after resolving v2 aliases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Name {
    Host,
    HostRegexp,
    Path,
    PathPrefix,
    PathRegexp,
    Method,
    Header,
    HeaderRegexp,
    Query,
    QueryRegexp,
    ClientIp,
}

/// Every matcher name a rule may use: v3's, then v2's aliases.
const NAMES: &[(&str, Name)] = &[
    ("Host", Name::Host),
    ("HostRegexp", Name::HostRegexp),
    ("Path", Name::Path),
    ("PathPrefix", Name::PathPrefix),
    ("PathRegexp", Name::PathRegexp),
    ("Method", Name::Method),
    ("Header", Name::Header),
    ("HeaderRegexp", Name::HeaderRegexp),
    ("Query", Name::Query),
    ("QueryRegexp", Name::QueryRegexp),
    ("ClientIP", Name::ClientIp),
    ("HostHeader", Name::Host),
    ("Headers", Name::Header),
    ("HeadersRegexp", Name::HeaderRegexp),
];

/// Resolves a matcher name. Traefik registers each name as written, in lower
/// case, in upper case and capitalised (`Host`, `host`, `HOST`; `Pathprefix`
/// for `PathPrefix`), so those spellings are accepted too; any other casing is
/// a mistake worth a suggestion.
pub(super) fn resolve(ident: &str, column: usize) -> Result<Name, ErrorAt> {
    for &(canonical, name) in NAMES {
        let lower = canonical.to_ascii_lowercase();
        let capitalised = format!("{}{}", &canonical[..1], &lower[1..]);
        if ident == canonical
            || ident == lower
            || ident == canonical.to_ascii_uppercase()
            || ident == capitalised
        {
            return Ok(name);
        }
        if ident.eq_ignore_ascii_case(canonical) {
            return Err(ErrorAt::new(
                column,
                format!("unknown matcher `{ident}`, did you mean `{canonical}`?"),
            ));
        }
    }
    Err(ErrorAt::new(column, format!("unknown matcher `{ident}`")))
}

/// A matcher call as written.
#[derive(Debug)]
pub(super) struct Call {
    /// The name as written, for messages.
    pub(super) ident: String,
    pub(super) name: Name,
    /// Column of the name.
    pub(super) column: usize,
    pub(super) args: Vec<Arg>,
}

/// One string argument of a call.
#[derive(Debug)]
pub(super) struct Arg {
    pub(super) value: String,
    /// Column of the argument's opening quote.
    pub(super) column: usize,
}

impl Arg {
    pub(super) fn error(&self, message: impl Into<String>) -> ErrorAt {
        ErrorAt::new(self.column, message)
    }
}

/// Checks a call and builds its matcher.
pub(super) fn build(call: &Call, syntax: RuleSyntax) -> Result<Matcher, ErrorAt> {
    let args = call.args.as_slice();
    match call.name {
        Name::Host => {
            call.expect_at_least_one()?;
            any_of_each(args, |arg| host(arg).map(Kind::Host))
        }
        Name::HostRegexp => {
            call.expect_at_least_one()?;
            any_of_each(args, |arg| host_regexp(arg, syntax).map(Kind::HostRegexp))
        }
        Name::Path => {
            call.expect_at_least_one()?;
            any_of_each(args, |arg| path(arg, syntax, Target::Path))
        }
        Name::PathPrefix => {
            call.expect_at_least_one()?;
            any_of_each(args, |arg| path(arg, syntax, Target::PathPrefix))
        }
        Name::PathRegexp => {
            call.expect_at_least_one()?;
            any_of_each(args, |arg| {
                compiled(arg, arg.value.clone()).map(Kind::PathRegexp)
            })
        }
        Name::Method => {
            call.expect_at_least_one()?;
            any_of_each(args, |arg| method(arg).map(Kind::Method))
        }
        Name::Header | Name::HeaderRegexp => {
            let [name, value] = call.expect_two()?;
            let name = header_name(name)?;
            Ok(leaf(if call.name == Name::Header {
                Kind::Header(HeaderMatch {
                    name,
                    value: value.value.clone(),
                })
            } else {
                Kind::HeaderRegexp(HeaderMatch {
                    name,
                    value: compiled(value, value.value.clone())?,
                })
            }))
        }
        Name::Query => {
            call.expect_at_least_one()?;
            query::query(call, syntax)
        }
        Name::QueryRegexp => query::query_regexp(call),
        Name::ClientIp => {
            call.expect_at_least_one()?;
            any_of_each(args, |arg| client_ip(arg).map(Kind::ClientIp))
        }
    }
}

impl Call {
    fn expect_at_least_one(&self) -> Result<(), ErrorAt> {
        if self.args.is_empty() {
            Err(self.arity_error("at least 1 argument"))
        } else {
            Ok(())
        }
    }

    fn expect_two(&self) -> Result<&[Arg; 2], ErrorAt> {
        self.args
            .as_slice()
            .try_into()
            .map_err(|_| self.arity_error("2 arguments"))
    }

    pub(super) fn arity_error(&self, expected: &str) -> ErrorAt {
        ErrorAt::new(
            self.column,
            format!("`{}` takes {expected}, got {}", self.ident, self.args.len()),
        )
    }
}

/// A leaf of the tree.
pub(super) fn leaf(kind: Kind) -> Matcher {
    Matcher { kind: Some(kind) }
}

/// All of `operands`, merging operands that are themselves `all` lists.
pub(super) fn all_of(operands: Vec<Matcher>) -> Matcher {
    combine(operands, true)
}

/// Any of `operands`, merging operands that are themselves `any` lists.
pub(super) fn any_of(operands: Vec<Matcher>) -> Matcher {
    combine(operands, false)
}

/// A single operand stands alone: a one-element list would only add a level.
fn combine(operands: Vec<Matcher>, all: bool) -> Matcher {
    if operands.len() == 1 {
        return operands.into_iter().next().unwrap_or_default();
    }
    let mut matchers = Vec::with_capacity(operands.len());
    for operand in operands {
        match operand.kind {
            Some(Kind::All(list)) if all => matchers.extend(list.matchers),
            Some(Kind::Any(list)) if !all => matchers.extend(list.matchers),
            kind => matchers.push(Matcher { kind }),
        }
    }
    let list = MatcherList { matchers };
    leaf(if all {
        Kind::All(list)
    } else {
        Kind::Any(list)
    })
}

/// One matcher per argument, any of which may match (v2's multi-argument
/// forms).
fn any_of_each(
    args: &[Arg],
    build: impl Fn(&Arg) -> Result<Kind, ErrorAt>,
) -> Result<Matcher, ErrorAt> {
    let matchers = args
        .iter()
        .map(|arg| build(arg).map(leaf))
        .collect::<Result<_, _>>()?;
    Ok(any_of(matchers))
}

#[cfg(test)]
mod tests {
    use super::super::tests::*;

    fn err(result: (usize, String), column: usize, message: &str) {
        assert_eq!(result, (column, message.to_owned()));
    }

    #[test]
    fn headers() {
        assert_eq!(
            v3("Header(`x-Custom`, `Value`)"),
            header("x-Custom", "Value")
        );
        assert_eq!(v3("Header(`X-Empty`, ``)"), header("X-Empty", ""));
        assert_eq!(
            v3("HeaderRegexp(`Accept`, `json$`)"),
            header_regexp("Accept", "json$")
        );
        assert_eq!(
            v2("HeadersRegexp(`Accept`, `json$`)"),
            header_regexp("Accept", "json$")
        );
        err(
            v3_error("Header(`a`)"),
            1,
            "`Header` takes 2 arguments, got 1",
        );
        err(
            v3_error("Path(`/`) && Headers(`a`, `b`, `c`)"),
            14,
            "`Headers` takes 2 arguments, got 3",
        );
        err(
            v3_error("HeaderRegexp()"),
            1,
            "`HeaderRegexp` takes 2 arguments, got 0",
        );
        err(
            v3_error("Header(`Bad Name`, `x`)"),
            8,
            "invalid header name `Bad Name`",
        );
        err(
            v3_error("HeaderRegexp(`Accept`, `*json`)"),
            24,
            "invalid regular expression `*json`: repetition operator missing expression",
        );
    }

    #[test]
    fn variadic_matchers_need_an_argument() {
        for name in [
            "Host",
            "HostRegexp",
            "Path",
            "PathPrefix",
            "PathRegexp",
            "Method",
            "ClientIP",
        ] {
            err(
                v3_error(&format!("Path(`/`) && {name}()")),
                14,
                &format!("`{name}` takes at least 1 argument, got 0"),
            );
        }
    }
}
