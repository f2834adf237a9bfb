//! One file's text as a [`DynamicConfig`]; an error names the key path and,
//! for YAML and TOML alike, the line and column.

use std::ffi::OsStr;
use std::path::Path;

use crate::config::toml_error_message;
use crate::dynamic::DynamicConfig;
use crate::providers::SourceError;

/// Whether the provider reads this file: `.yml`, `.yaml` or `.toml`, not
/// hidden, not a backup (`name~`). Editor swap and probe files (`.name.swp`,
/// vim's `4913`) fail one of these tests.
pub(super) fn is_config_file(path: &Path) -> bool {
    let extension = path
        .extension()
        .and_then(OsStr::to_str)
        .map(str::to_ascii_lowercase);
    !is_hidden_or_backup(path) && matches!(extension.as_deref(), Some("yml" | "yaml" | "toml"))
}

/// Hidden (`.name`) or a backup (`name~`): skipped in a directory, files and
/// sub-directories alike.
pub(super) fn is_hidden_or_backup(path: &Path) -> bool {
    path.file_name()
        .and_then(OsStr::to_str)
        .is_none_or(|name| name.starts_with('.') || name.ends_with('~'))
}

/// Parses `text`, read from `path`, by the path's extension (TOML for
/// `.toml`, YAML otherwise). An empty file is an empty configuration.
pub(super) fn parse(path: &Path, text: &str) -> Result<DynamicConfig, SourceError> {
    let error = |key: Option<String>, message: String| SourceError {
        location: path.display().to_string(),
        key,
        message,
    };
    let is_toml = path
        .extension()
        .is_some_and(|extension| extension.eq_ignore_ascii_case("toml"));
    if is_toml {
        let deserializer = toml::Deserializer::parse(text)
            .map_err(|syntax| error(None, toml_error_message(&syntax, text)))?;
        serde_path_to_error::deserialize(deserializer).map_err(|failure| {
            let key = key_of(failure.path());
            error(key, toml_error_message(failure.inner(), text))
        })
    } else {
        let deserializer = serde_yaml::Deserializer::from_str(text);
        serde_path_to_error::deserialize(deserializer).map_err(|failure| {
            let key = key_of(failure.path());
            let message = without_path_prefix(failure.inner().to_string(), key.as_deref());
            error(key, message)
        })
    }
}

/// The key path, `None` at the root (syntax errors).
fn key_of(path: &serde_path_to_error::Path) -> Option<String> {
    let key = path.to_string();
    (key != "." && !key.is_empty()).then_some(key)
}

/// serde_yaml prefixes its messages with its own rendering of the path
/// (`http.routers.api: unknown field ...`); the key already says it.
fn without_path_prefix(message: String, key: Option<&str>) -> String {
    let Some((head, rest)) = message.split_once(": ") else {
        return message;
    };
    let names_the_key = key.is_some_and(|key| {
        key.strip_prefix(head)
            .is_some_and(|tail| tail.is_empty() || tail.starts_with(['.', '[']))
    });
    if names_the_key {
        rest.to_owned()
    } else {
        message
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_as(name: &str, text: &str) -> Result<DynamicConfig, SourceError> {
        parse(Path::new(name), text)
    }

    #[test]
    fn reads_yaml_and_toml() {
        let yaml = parse_as(
            "a.yml",
            "http:\n  routers:\n    api:\n      rule: Host(`a.example`)\n      service: api\n",
        )
        .unwrap();
        assert_eq!(yaml.http.unwrap().routers["api"].service, "api");
        let toml = parse_as(
            "a.toml",
            "[http.routers.api]\nrule = \"Host(`a.example`)\"\nservice = \"api\"\n",
        )
        .unwrap();
        assert_eq!(toml.http.unwrap().routers["api"].rule, "Host(`a.example`)");
    }

    #[test]
    fn empty_files_are_empty_configurations() {
        for (name, text) in [("a.yml", ""), ("a.yaml", "# nothing yet\n"), ("a.toml", "")] {
            assert_eq!(
                parse_as(name, text).unwrap(),
                DynamicConfig::default(),
                "{name}"
            );
        }
    }

    #[test]
    fn unknown_keys_name_the_key_path_and_position() {
        let error = parse_as(
            "/etc/sluice/a.yml",
            "http:\n  routers:\n    api:\n      rulee: x\n",
        )
        .unwrap_err();
        assert_eq!(error.location, "/etc/sluice/a.yml");
        assert_eq!(error.key.as_deref(), Some("http.routers.api.rulee"));
        assert!(
            error
                .message
                .starts_with("unknown field `rulee`, expected one of"),
            "{error}"
        );
        assert!(error.message.ends_with("at line 4 column 7"), "{error}");

        let error = parse_as("a.toml", "[http.routers.api]\nrulee = \"x\"\n").unwrap_err();
        assert_eq!(error.key.as_deref(), Some("http.routers.api.rulee"));
        assert!(
            error.message.starts_with("unknown field `rulee`"),
            "{error}"
        );
        assert!(error.message.ends_with("at line 2 column 1"), "{error}");
    }

    #[test]
    fn syntax_errors_carry_line_and_column() {
        // YAML is parsed as it is read: the key is where parsing stopped.
        let error = parse_as("a.yml", "http:\n  routers: {api: \n").unwrap_err();
        assert_eq!(error.key.as_deref(), Some("http.routers.api"));
        assert!(error.message.contains("line 3 column 1"), "{error}");
        let error = parse_as("a.toml", "[http.routers\n").unwrap_err();
        assert_eq!(error.key, None);
        assert!(error.message.contains("at line 1 column 14"), "{error}");
    }

    #[test]
    fn skips_hidden_backup_and_foreign_files() {
        for name in ["a.yml", "b.YAML", "sub/c.toml"] {
            assert!(is_config_file(Path::new(name)), "{name}");
        }
        for name in [
            ".a.yml",
            "a.yml~",
            ".a.yml.swp",
            "4913",
            "a.json",
            "#a.yml#",
            "a.yml.tmp",
        ] {
            assert!(!is_config_file(Path::new(name)), "{name}");
        }
    }
}
