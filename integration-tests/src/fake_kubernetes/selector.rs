//! Label and field selectors as the API server reads them.
//!
//! Labels: `key`, `!key`, `key=value`, `key==value`, `key!=value`,
//! `key in (a,b)`, `key notin (a,b)`, comma-separated (all must hold).
//! Fields: `path=value`, `path==value`, `path!=value` on dotted paths
//! (`metadata.name`, `metadata.namespace`, `type`).

use serde_json::Value;

/// One requirement.
#[derive(Debug, Clone, PartialEq)]
enum Term {
    Exists(String),
    Absent(String),
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
}

/// A parsed selector; the empty selector matches everything.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Selector {
    terms: Vec<Term>,
}

impl Selector {
    /// Parses a selector, `Err` with the API server's kind of message.
    pub(super) fn parse(text: &str) -> Result<Self, String> {
        let mut terms = Vec::new();
        for part in split_top_level(text) {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            terms.push(parse_term(part)?);
        }
        Ok(Self { terms })
    }

    /// Whether the object's labels match.
    pub(super) fn matches_labels(&self, object: &Value) -> bool {
        let labels = &object["metadata"]["labels"];
        self.matches(|key| labels.get(key).and_then(Value::as_str).map(str::to_owned))
    }

    /// Whether the object's fields match.
    pub(super) fn matches_fields(&self, object: &Value) -> bool {
        self.matches(|path| {
            let mut value = object;
            for part in path.split('.') {
                value = value.get(part)?;
            }
            Some(match value {
                Value::String(text) => text.clone(),
                other => other.to_string(),
            })
        })
    }

    fn matches(&self, get: impl Fn(&str) -> Option<String>) -> bool {
        self.terms.iter().all(|term| match term {
            Term::Exists(key) => get(key).is_some(),
            Term::Absent(key) => get(key).is_none(),
            Term::Equals(key, value) => get(key).as_deref() == Some(value.as_str()),
            Term::NotEquals(key, value) => get(key).as_deref() != Some(value.as_str()),
            Term::In(key, values) => get(key).is_some_and(|v| values.contains(&v)),
            Term::NotIn(key, values) => get(key).is_none_or(|v| !values.contains(&v)),
        })
    }
}

fn split_top_level(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0_i32;
    let mut start = 0;
    for (index, character) in text.char_indices() {
        match character {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&text[start..index]);
                start = index + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

fn parse_term(part: &str) -> Result<Term, String> {
    if let Some(key) = part.strip_prefix('!') {
        return Ok(Term::Absent(key.trim().to_owned()));
    }
    if let Some((key, value)) = part.split_once("!=") {
        return Ok(Term::NotEquals(
            key.trim().to_owned(),
            value.trim().to_owned(),
        ));
    }
    if let Some((key, value)) = part.split_once("==").or_else(|| part.split_once('=')) {
        return Ok(Term::Equals(key.trim().to_owned(), value.trim().to_owned()));
    }
    for (operator, negated) in [(" notin ", true), (" in ", false)] {
        if let Some((key, values)) = part.split_once(operator) {
            let values = values
                .trim()
                .strip_prefix('(')
                .and_then(|v| v.strip_suffix(')'))
                .ok_or_else(|| format!("unable to parse requirement: `{part}`"))?;
            let values = values.split(',').map(|v| v.trim().to_owned()).collect();
            let key = key.trim().to_owned();
            return Ok(if negated {
                Term::NotIn(key, values)
            } else {
                Term::In(key, values)
            });
        }
    }
    if part.contains(char::is_whitespace) {
        return Err(format!("unable to parse requirement: `{part}`"));
    }
    Ok(Term::Exists(part.to_owned()))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn matches_labels_and_fields() {
        let object = json!({"metadata": {"name": "a", "labels": {"app": "web", "tier": "front"}}, "type": "Opaque"});
        let matches = |s: &str| Selector::parse(s).unwrap().matches_labels(&object);
        assert!(matches("app=web,tier"));
        assert!(matches("app in (web, api),!missing"));
        assert!(!matches("app!=web"));
        assert!(!matches("tier notin (front)"));
        let fields = Selector::parse("type!=helm.sh/release.v1,metadata.name=a").unwrap();
        assert!(fields.matches_fields(&object));
    }
}
