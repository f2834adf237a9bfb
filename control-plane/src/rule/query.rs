//! `Query` and `QueryRegexp`, whose argument forms differ most between the
//! syntaxes: v3 takes a key and an optional value, v2 `key=value` pairs.

use sluice_proto::v1::matcher::Kind;
use sluice_proto::v1::{Matcher, QueryMatch};

use super::matchers::{Arg, Call, all_of, leaf};
use super::values::compiled;
use super::{ErrorAt, RuleSyntax};

/// `Query`: v3's `(key)` and `(key, value)`, plus v2's `key=value` arguments.
pub(super) fn query(call: &Call, syntax: RuleSyntax) -> Result<Matcher, ErrorAt> {
    match (call.args.as_slice(), syntax) {
        ([arg], _) => {
            let query = match arg.value.split_once('=') {
                Some((key, value)) => query_match_at(arg, key, Some(value.to_owned()))?,
                None => query_match(arg, None)?,
            };
            Ok(leaf(Kind::Query(query)))
        }
        ([key, value], RuleSyntax::V3) => Ok(leaf(Kind::Query(query_match(
            key,
            Some(value.value.clone()),
        )?))),
        (args, _) => v2_query_pairs(call, args),
    }
}

/// `QueryRegexp(key, regex)`; Traefik reads a lone argument as a plain key
/// match.
pub(super) fn query_regexp(call: &Call) -> Result<Matcher, ErrorAt> {
    match call.args.as_slice() {
        [key] => Ok(leaf(Kind::Query(query_match(key, None)?))),
        [key, value] => {
            let regex = compiled(value, value.value.clone())?;
            Ok(leaf(Kind::QueryRegexp(query_match(key, Some(regex))?)))
        }
        _ => Err(call.arity_error("1 or 2 arguments")),
    }
}

/// v2 `Query` with several arguments, as gorilla/mux read them: each argument
/// split at its first `=`, the pieces concatenated and read as key, value,
/// key, value... So ``Query(`a=1`, `b=2`)`` and ``Query(`a`, `1`)`` both
/// work. Every pair must match.
fn v2_query_pairs(call: &Call, args: &[Arg]) -> Result<Matcher, ErrorAt> {
    let pieces: Vec<(&Arg, &str)> = args
        .iter()
        .flat_map(|arg| arg.value.splitn(2, '=').map(move |piece| (arg, piece)))
        .collect();
    let (pairs, []) = pieces.as_chunks::<2>() else {
        return Err(ErrorAt::new(
            call.column,
            format!(
                "`{}` arguments must be `key=value` pairs (or a key and a value)",
                call.ident
            ),
        ));
    };
    let matchers = pairs
        .iter()
        .map(|&[(key_arg, key), (_, value)]| {
            query_match_at(key_arg, key, Some(value.to_owned()))
                .map(|query| leaf(Kind::Query(query)))
        })
        .collect::<Result<_, _>>()?;
    Ok(all_of(matchers))
}

fn query_match(key: &Arg, value: Option<String>) -> Result<QueryMatch, ErrorAt> {
    query_match_at(key, &key.value, value)
}

/// A query match whose key is `key`, taken from `arg`.
fn query_match_at(arg: &Arg, key: &str, value: Option<String>) -> Result<QueryMatch, ErrorAt> {
    if key.is_empty() {
        return Err(arg.error(format!("empty query key in `{}`", arg.value)));
    }
    Ok(QueryMatch {
        key: key.to_owned(),
        value,
    })
}

#[cfg(test)]
mod tests {
    use super::super::RuleSyntax;
    use super::super::tests::*;

    fn err(result: (usize, String), column: usize, message: &str) {
        assert_eq!(result, (column, message.to_owned()));
    }

    #[test]
    fn query_forms() {
        assert_eq!(v3("Query(`mobile`)"), query("mobile", None));
        assert_eq!(v3("Query(`mobile`, `true`)"), query("mobile", Some("true")));
        for syntax in [RuleSyntax::V3, RuleSyntax::V2] {
            assert_eq!(
                parse("Query(`mobile=true`)", syntax),
                query("mobile", Some("true"))
            );
            assert_eq!(parse("Query(`k=`)", syntax), query("k", Some("")));
            assert_eq!(parse("Query(`a=b=c`)", syntax), query("a", Some("b=c")));
            assert_eq!(
                parse("Query(`mobile`, `true`)", syntax),
                query("mobile", Some("true"))
            );
        }
        // v3 reads two arguments as key and value, whatever they contain...
        assert_eq!(v3("Query(`a=1`, `b=2`)"), query("a=1", Some("b=2")));
        // ...v2 as `key=value` pairs that must all match.
        assert_eq!(
            v2("Query(`a=1`, `b=2`)"),
            all(vec![query("a", Some("1")), query("b", Some("2"))])
        );
        // Beyond two arguments there is no v3 form, so v2's applies.
        assert_eq!(
            v3("Query(`a=1`, `b=2`, `c=3`)"),
            all(vec![
                query("a", Some("1")),
                query("b", Some("2")),
                query("c", Some("3")),
            ])
        );
    }

    #[test]
    fn query_errors() {
        err(
            v3_error("Query()"),
            1,
            "`Query` takes at least 1 argument, got 0",
        );
        err(
            v2_error("Query(`a`, `b`, `c`)"),
            1,
            "`Query` arguments must be `key=value` pairs (or a key and a value)",
        );
        err(v3_error("Query(`=v`)"), 7, "empty query key in `=v`");
        err(v3_error("Query(``, `v`)"), 7, "empty query key in ``");
        err(
            v2_error("Query(`a=1`, `=2`)"),
            14,
            "empty query key in `=2`",
        );
    }

    #[test]
    fn query_regexp_forms() {
        assert_eq!(
            v3("QueryRegexp(`id`, `^[0-9]+$`)"),
            query_regexp("id", "^[0-9]+$")
        );
        // Traefik reads a lone argument as a plain key match.
        assert_eq!(v3("QueryRegexp(`id`)"), query("id", None));
        err(
            v3_error("QueryRegexp(`a`, `b`, `c`)"),
            1,
            "`QueryRegexp` takes 1 or 2 arguments, got 3",
        );
        err(
            v3_error("QueryRegexp(`id`, `[0-9`)"),
            19,
            "invalid regular expression `[0-9`: unclosed character class",
        );
    }
}
