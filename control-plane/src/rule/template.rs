//! Traefik v2 templates: `HostRegexp`, `Path` and `PathPrefix` arguments with
//! `{name}` or `{name:regex}` placeholders, as gorilla/mux understood them.
//!
//! A template becomes one regular expression: literal text escaped, each
//! placeholder replaced by its pattern (or a default that stops at the next
//! separator), anchored at the start and, except for prefixes, at the end.

/// What a template is matched against; decides the default placeholder
/// pattern and how the regex is anchored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Target {
    /// A host name: `{name}` matches one label.
    Host,
    /// A whole path: `{name}` matches one segment.
    Path,
    /// The start of a path.
    PathPrefix,
}

impl Target {
    fn default_pattern(self) -> &'static str {
        match self {
            Self::Host => "[^.]+",
            Self::Path | Self::PathPrefix => "[^/]+",
        }
    }
}

/// Whether `text` uses template syntax at all; a stray `}` counts, so that it
/// is reported as unbalanced rather than matched literally.
pub(super) fn has_placeholders(text: &str) -> bool {
    text.contains(['{', '}'])
}

/// Converts a template into an anchored regular expression. The error names
/// the template; the caller adds the column.
///
/// Placeholder patterns are wrapped in `(?:...)` because gorilla/mux put each
/// one in its own group: an alternation such as `{v:a|b}` must not swallow
/// the literal text around it.
pub(super) fn to_regex(template: &str, target: Target) -> Result<String, String> {
    let mut regex = String::from("^");
    let mut literal_start = 0;
    for (open, close) in placeholders(template)? {
        push_literal(&mut regex, &template[literal_start..open], target);
        let inner = &template[open + 1..close];
        let (name, pattern) = match inner.split_once(':') {
            Some((name, pattern)) => (name, pattern),
            None => (inner, target.default_pattern()),
        };
        if name.is_empty() || pattern.is_empty() {
            return Err(format!(
                "missing name or pattern in placeholder `{{{inner}}}` of `{template}`"
            ));
        }
        regex.push_str("(?:");
        regex.push_str(pattern);
        regex.push(')');
        literal_start = close + 1;
    }
    push_literal(&mut regex, &template[literal_start..], target);
    if target != Target::PathPrefix {
        regex.push('$');
    }
    Ok(regex)
}

/// Byte offsets of the outermost `{` and its matching `}`; placeholders may
/// nest braces, as in `{id:[0-9]{3}}`.
fn placeholders(template: &str) -> Result<Vec<(usize, usize)>, String> {
    let unbalanced = || format!("unbalanced braces in `{template}`");
    let mut spans = Vec::new();
    let mut depth = 0usize;
    let mut open = 0;
    for (index, byte) in template.bytes().enumerate() {
        match byte {
            b'{' => {
                if depth == 0 {
                    open = index;
                }
                depth += 1;
            }
            b'}' => {
                depth = depth.checked_sub(1).ok_or_else(unbalanced)?;
                if depth == 0 {
                    spans.push((open, index));
                }
            }
            _ => {}
        }
    }
    if depth == 0 {
        Ok(spans)
    } else {
        Err(unbalanced())
    }
}

/// Appends template text that matches itself. Host literals are lower-cased
/// because the data plane matches host regexes against the lower-cased host.
fn push_literal(regex: &mut String, literal: &str, target: Target) {
    if target == Target::Host {
        regex.push_str(&regex::escape(&literal.to_ascii_lowercase()));
    } else {
        regex.push_str(&regex::escape(literal));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_placeholders() {
        assert_eq!(
            to_regex("{sub:[a-z]+}.example.com", Target::Host).unwrap(),
            r"^(?:[a-z]+)\.example\.com$"
        );
        assert_eq!(
            to_regex("{sub}.Example.COM", Target::Host).unwrap(),
            r"^(?:[^.]+)\.example\.com$"
        );
        assert_eq!(
            to_regex("{a}.{b:(?i)X}.com", Target::Host).unwrap(),
            r"^(?:[^.]+)\.(?:(?i)X)\.com$"
        );
    }

    #[test]
    fn path_placeholders() {
        assert_eq!(
            to_regex("/users/{id:[0-9]+}/posts/{post}", Target::Path).unwrap(),
            r"^/users/(?:[0-9]+)/posts/(?:[^/]+)$"
        );
        assert_eq!(
            to_regex("/api/{version:v1|v2}", Target::PathPrefix).unwrap(),
            r"^/api/(?:v1|v2)"
        );
    }

    #[test]
    fn literal_text_is_escaped_and_kept_as_written_in_paths() {
        assert_eq!(
            to_regex("/A.b+c/{x}", Target::Path).unwrap(),
            r"^/A\.b\+c/(?:[^/]+)$"
        );
        assert_eq!(
            to_regex("example.com", Target::Host).unwrap(),
            r"^example\.com$"
        );
    }

    #[test]
    fn nested_braces_belong_to_the_pattern() {
        assert_eq!(
            to_regex("/{id:[0-9]{3}}", Target::Path).unwrap(),
            r"^/(?:[0-9]{3})$"
        );
        // Only the first colon separates name and pattern.
        assert_eq!(to_regex("/{t:a:b}", Target::Path).unwrap(), r"^/(?:a:b)$");
    }

    #[test]
    fn detects_template_syntax() {
        assert!(has_placeholders("/a/{b}"));
        assert!(has_placeholders("/a}"));
        assert!(!has_placeholders("/a/b"));
    }

    #[test]
    fn unbalanced_braces() {
        for template in ["/{id", "/id}", "/{a}}", "{{a}"] {
            assert_eq!(
                to_regex(template, Target::Path).unwrap_err(),
                format!("unbalanced braces in `{template}`")
            );
        }
    }

    #[test]
    fn missing_name_or_pattern() {
        assert_eq!(
            to_regex("/{:[0-9]+}", Target::Path).unwrap_err(),
            "missing name or pattern in placeholder `{:[0-9]+}` of `/{:[0-9]+}`"
        );
        assert_eq!(
            to_regex("{sub:}.a.com", Target::Host).unwrap_err(),
            "missing name or pattern in placeholder `{sub:}` of `{sub:}.a.com`"
        );
        assert!(to_regex("/{}", Target::Path).is_err());
    }
}
