//! Traefik's constraint expressions over Consul tags
//! (`providers.consulCatalog.constraints`): ``Tag(`a`)``,
//! ``TagRegex(`^v[0-9]+$`)``, `!`, `&&`, `||` and parentheses; strings in
//! backquotes or double quotes. A service instance is exposed only if the
//! expression holds for its tags.

use regex::Regex;

/// Why a constraint expression does not parse.
#[derive(Debug, thiserror::Error)]
#[error("constraints `{expression}`: column {column}: {message}")]
pub struct ConstraintError {
    /// The expression as written.
    pub expression: String,
    /// 1-based column of the problem.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

/// A parsed constraint expression.
#[derive(Debug, Clone)]
pub(crate) enum Constraint {
    /// `Tag(`x`)`: some tag is exactly `x`.
    Tag(String),
    /// `TagRegex(`re`)`: some tag matches `re`.
    TagRegex(Regex),
    Not(Box<Constraint>),
    And(Box<Constraint>, Box<Constraint>),
    Or(Box<Constraint>, Box<Constraint>),
}

impl Constraint {
    /// Parses `expression`.
    pub(crate) fn parse(expression: &str) -> Result<Self, ConstraintError> {
        let mut parser = Parser {
            text: expression,
            position: 0,
        };
        let constraint = parser.or()?;
        parser.skip_spaces();
        if parser.position < expression.len() {
            return Err(parser.error("unexpected text after the expression"));
        }
        Ok(constraint)
    }

    /// Whether `tags` satisfy the constraint.
    pub(crate) fn matches(&self, tags: &[String]) -> bool {
        match self {
            Self::Tag(tag) => tags.iter().any(|candidate| candidate == tag),
            Self::TagRegex(regex) => tags.iter().any(|candidate| regex.is_match(candidate)),
            Self::Not(inner) => !inner.matches(tags),
            Self::And(left, right) => left.matches(tags) && right.matches(tags),
            Self::Or(left, right) => left.matches(tags) || right.matches(tags),
        }
    }
}

struct Parser<'a> {
    text: &'a str,
    position: usize,
}

impl Parser<'_> {
    fn error(&self, message: &str) -> ConstraintError {
        ConstraintError {
            expression: self.text.to_owned(),
            column: self.text[..self.position].chars().count() + 1,
            message: message.to_owned(),
        }
    }

    fn rest(&self) -> &str {
        &self.text[self.position..]
    }

    fn skip_spaces(&mut self) {
        let rest = self.rest();
        self.position += rest.len() - rest.trim_start().len();
    }

    /// Consumes `token` (after spaces) if it comes next.
    fn eat(&mut self, token: &str) -> bool {
        self.skip_spaces();
        if self.rest().starts_with(token) {
            self.position += token.len();
            true
        } else {
            false
        }
    }

    fn or(&mut self) -> Result<Constraint, ConstraintError> {
        let mut left = self.and()?;
        while self.eat("||") {
            left = Constraint::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Constraint, ConstraintError> {
        let mut left = self.unary()?;
        while self.eat("&&") {
            left = Constraint::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Constraint, ConstraintError> {
        if self.eat("!") {
            return Ok(Constraint::Not(Box::new(self.unary()?)));
        }
        if self.eat("(") {
            let inner = self.or()?;
            if !self.eat(")") {
                return Err(self.error("expected `)`"));
            }
            return Ok(inner);
        }
        self.skip_spaces();
        let name_length = self
            .rest()
            .find(|c: char| !c.is_ascii_alphanumeric())
            .unwrap_or(self.rest().len());
        let name = &self.rest()[..name_length];
        let is_regex = match name {
            "Tag" => false,
            "TagRegex" => true,
            "" => return Err(self.error("expected `Tag(...)`, `TagRegex(...)`, `!` or `(`")),
            other => {
                return Err(self.error(&format!(
                    "unknown matcher `{other}` (expected `Tag` or `TagRegex`)"
                )));
            }
        };
        let start = self.position;
        self.position += name_length;
        if !self.eat("(") {
            return Err(self.error("expected `(`"));
        }
        let value = self.string()?;
        if !self.eat(")") {
            return Err(self.error("expected `)`"));
        }
        if !is_regex {
            return Ok(Constraint::Tag(value));
        }
        Regex::new(&value)
            .map(Constraint::TagRegex)
            .map_err(|error| {
                self.position = start;
                self.error(&format!("invalid regex `{value}`: {error}"))
            })
    }

    /// A string in backquotes or double quotes.
    fn string(&mut self) -> Result<String, ConstraintError> {
        self.skip_spaces();
        let Some(quote) = self
            .rest()
            .chars()
            .next()
            .filter(|c| matches!(c, '`' | '"'))
        else {
            return Err(self.error("expected a string in backquotes or double quotes"));
        };
        let body = &self.rest()[1..];
        let Some(end) = body.find(quote) else {
            return Err(self.error("unclosed string"));
        };
        let value = body[..end].to_owned();
        self.position += end + 2;
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(list: &[&str]) -> Vec<String> {
        list.iter().map(|tag| (*tag).to_owned()).collect()
    }

    #[test]
    fn evaluates_tags_regexes_and_operators() {
        let constraint =
            Constraint::parse(r#"Tag(`web`) && !Tag("internal") || TagRegex(`^v[0-9]+$`)"#)
                .unwrap();
        assert!(constraint.matches(&tags(&["web"])));
        assert!(!constraint.matches(&tags(&["web", "internal"])));
        assert!(constraint.matches(&tags(&["internal", "v2"])));
        assert!(!constraint.matches(&tags(&["v2x"])));
        let grouped = Constraint::parse("Tag(`a`) && (Tag(`b`) || Tag(`c`))").unwrap();
        assert!(grouped.matches(&tags(&["a", "c"])));
        assert!(!grouped.matches(&tags(&["b", "c"])));
    }

    #[test]
    fn errors_name_the_expression_and_column() {
        let error = Constraint::parse("Tag(`a`) && Label(`b`)").unwrap_err();
        assert_eq!(error.column, 13);
        assert!(
            error.to_string().contains("unknown matcher `Label`"),
            "{error}"
        );
        assert!(
            error.to_string().contains("Tag(`a`) && Label(`b`)"),
            "{error}"
        );
        assert!(
            Constraint::parse("Tag(`a`")
                .unwrap_err()
                .message
                .contains("`)`")
        );
        assert!(
            Constraint::parse("Tag(`a)")
                .unwrap_err()
                .message
                .contains("unclosed")
        );
        let error = Constraint::parse("TagRegex(`(`)").unwrap_err();
        assert!(error.message.contains("invalid regex"), "{error}");
        assert!(Constraint::parse("Tag(`a`) Tag(`b`)").is_err());
    }
}
