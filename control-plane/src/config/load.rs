//! Loading the static configuration from a file, environment variables and
//! flags; see the [module documentation](super) for the precedence.

use std::ffi::OsStr;
use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::keys::ROOT;
use super::shape::{self, Merger, Shape};
use super::static_config::StaticConfig;

/// The sources [`StaticConfig::load`] reads, lowest priority first.
#[derive(Debug, Clone, Default)]
pub struct StaticConfigSources<'a> {
    /// A YAML (`.yml`, `.yaml`) or TOML (`.toml`) file.
    pub config_file: Option<&'a Path>,
    /// Traefik-style flags (`--entryPoints.web.address=:80`), already
    /// separated from the subcommand's own arguments.
    pub flags: &'a [String],
    /// The process environment; only variables starting with `SLUICE_` are
    /// read.
    pub env: Vec<(String, String)>,
}

/// Where a static configuration key was set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigOrigin {
    /// The configuration file.
    File(PathBuf),
    /// An environment variable, by name.
    Environment(String),
    /// A flag, as written up to its `=`.
    Flag(String),
    /// No source: a built-in default.
    Defaults,
}

impl fmt::Display for ConfigOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(path) => write!(f, "config file `{}`", path.display()),
            Self::Environment(name) => write!(f, "environment variable `{name}`"),
            Self::Flag(flag) => write!(f, "flag `{flag}`"),
            Self::Defaults => f.write_str("default value"),
        }
    }
}

/// Why the static configuration could not be loaded. Every variant names the
/// source, and the key where there is one.
#[derive(Debug, thiserror::Error)]
pub enum StaticConfigError {
    /// The configuration file could not be read.
    #[error("config file `{}`: {source}", path.display())]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A source is malformed: YAML or TOML syntax, a flag without `--`.
    #[error("{origin}: {message}")]
    Syntax {
        /// The source.
        origin: ConfigOrigin,
        /// What is wrong, with a line and column for files.
        message: String,
    },
    /// A key that is not part of the static configuration.
    #[error("{origin}: unknown key `{key}` (expected {expected})")]
    UnknownKey {
        /// The source that wrote it.
        origin: ConfigOrigin,
        /// Its full path, as canonical as known (`entryPoints.web.adress`).
        key: String,
        /// The keys allowed there.
        expected: String,
    },
    /// A value of the wrong type, or out of range.
    #[error("{origin}: `{key}`: {message}")]
    InvalidValue {
        /// The source that set it.
        origin: ConfigOrigin,
        /// Its full path (`controlPlane.historySize`).
        key: String,
        /// What is wrong.
        message: String,
    },
}

impl StaticConfig {
    /// Reads, merges and validates the static configuration; see the
    /// [module documentation](super) for the precedence.
    pub fn load(sources: StaticConfigSources<'_>) -> Result<Self, StaticConfigError> {
        let mut layers = Vec::new();
        if let Some(path) = sources.config_file {
            layers.push((ConfigOrigin::File(path.to_owned()), read_file(path)?));
        }
        let mut env: Vec<&(String, String)> = sources.env.iter().collect();
        env.sort();
        for (name, value) in env {
            layers.extend(env_layer(name, value)?);
        }
        for flag in sources.flags {
            layers.extend(flag_layer(flag)?);
        }

        let root = Shape::Struct(&ROOT);
        let mut merged = Value::Object(Map::new());
        let mut merger = Merger::default();
        for (origin, tree) in layers {
            let from_text = !matches!(origin, ConfigOrigin::File(_));
            let tree = shape::canonicalize(tree, root, "", &origin, from_text)?;
            merger.merge(&mut merged, tree, root, "", &origin);
        }
        shape::finalize(&mut merged, root);

        let config: Self = serde_path_to_error::deserialize(merged).map_err(|error| {
            let key = error.path().to_string();
            StaticConfigError::InvalidValue {
                origin: merger.origin_of(&key),
                key,
                message: error.into_inner().to_string(),
            }
        })?;
        config
            .validate()
            .map_err(|(key, message)| StaticConfigError::InvalidValue {
                origin: merger.origin_of(&key),
                key,
                message,
            })?;
        Ok(config)
    }

    /// Checks what serde cannot: references between keys and ranges.
    /// Returns the offending key and the problem.
    fn validate(&self) -> Result<(), (String, String)> {
        for (name, entry_point) in &self.entry_points {
            let redirect = entry_point.http.redirections.as_ref();
            if let Some(redirect) = redirect.and_then(|r| r.entry_point.as_ref()) {
                let to = redirect.to.as_str();
                let is_port = to.strip_prefix(':').unwrap_or(to).parse::<u16>().is_ok();
                if !is_port && !self.entry_points.contains_key(to) {
                    let known: Vec<&str> = self.entry_points.keys().map(String::as_str).collect();
                    return Err((
                        format!("entryPoints.{name}.http.redirections.entryPoint.to"),
                        format!(
                            "`{to}` is neither a port (`:443`) nor an entry point (defined: {})",
                            known.join(", ")
                        ),
                    ));
                }
            }
        }
        let control_plane = &self.control_plane;
        if control_plane.history_size == 0 {
            return Err((
                "controlPlane.historySize".to_owned(),
                "must be at least 1".to_owned(),
            ));
        }
        let debounce = &control_plane.debounce;
        if debounce.max_delay < debounce.quiet_period {
            return Err((
                "controlPlane.debounce.maxDelay".to_owned(),
                format!(
                    "{} is shorter than the quiet period ({})",
                    debounce.max_delay, debounce.quiet_period
                ),
            ));
        }
        Ok(())
    }
}

/// The configuration file the CLI uses when `--configFile` is not given:
/// `sluice.yml`, `sluice.yaml` or `sluice.toml` in the current directory,
/// then in `/etc/sluice/`; failing those, `traefik.yml`, `traefik.yaml` or
/// `traefik.toml` in the same places.
pub fn default_config_file() -> Option<PathBuf> {
    let current = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    find_config_file(&[current.as_path(), Path::new("/etc/sluice")])
}

fn find_config_file(directories: &[&Path]) -> Option<PathBuf> {
    ["sluice", "traefik"]
        .iter()
        .flat_map(|stem| {
            directories.iter().flat_map(move |directory| {
                ["yml", "yaml", "toml"]
                    .iter()
                    .map(move |extension| directory.join(format!("{stem}.{extension}")))
            })
        })
        .find(|candidate| candidate.is_file())
}

fn read_file(path: &Path) -> Result<Value, StaticConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| StaticConfigError::ReadFile {
        path: path.to_owned(),
        source,
    })?;
    let extension = path
        .extension()
        .and_then(OsStr::to_str)
        .map(str::to_ascii_lowercase);
    let parsed = match extension.as_deref() {
        Some("yml" | "yaml") => serde_yaml::from_str(&text).map_err(|error| error.to_string()),
        Some("toml") => toml::from_str(&text)
            .map_err(|error: toml::de::Error| super::toml_error_message(&error, &text)),
        _ => Err("unsupported file extension (expected .yml, .yaml or .toml)".to_owned()),
    };
    parsed.map_err(|message| StaticConfigError::Syntax {
        origin: ConfigOrigin::File(path.to_owned()),
        message,
    })
}

/// `SLUICE_ENTRYPOINTS_WEB_ADDRESS=:80` as `{"entrypoints": {"web":
/// {"address": ":80"}}}`; `None` for other variables, for `SLUICE_CONFIGFILE`
/// (which the CLI reads) and for `SLUICE_PROXY_*` (the proxy's settings, often
/// in the same environment).
fn env_layer(name: &str, value: &str) -> Result<Option<(ConfigOrigin, Value)>, StaticConfigError> {
    let Some(key) = name.strip_prefix("SLUICE_") else {
        return Ok(None);
    };
    if key.starts_with("PROXY_") {
        return Ok(None);
    }
    let origin = ConfigOrigin::Environment(name.to_owned());
    let segments: Vec<String> = key.split('_').map(str::to_ascii_lowercase).collect();
    if segments.iter().any(String::is_empty) {
        return Err(StaticConfigError::Syntax {
            origin,
            message: "empty key segment (keys are separated by single underscores)".to_owned(),
        });
    }
    if segments == ["configfile"] {
        return Ok(None);
    }
    Ok(Some((origin, nest(segments, value))))
}

/// `--entryPoints.web.http.middlewares[0]=auth` as nested objects, the index
/// as a key; a bare `--key` means `true`. `None` for `--configFile`, which
/// the CLI reads.
fn flag_layer(flag: &str) -> Result<Option<(ConfigOrigin, Value)>, StaticConfigError> {
    let (name, value) = flag.split_once('=').unwrap_or((flag, "true"));
    let origin = ConfigOrigin::Flag(name.to_owned());
    let syntax = |message: &str| StaticConfigError::Syntax {
        origin: origin.clone(),
        message: format!("{message} (expected `--key.subkey=value`)"),
    };
    let key = name
        .strip_prefix("--")
        .ok_or_else(|| syntax("a flag starts with `--`"))?;
    let mut segments = Vec::new();
    for part in key.split('.') {
        let (field, mut indexes) = part
            .split_once('[')
            .map_or((part, ""), |(f, rest)| (f, rest));
        if field.is_empty() {
            return Err(syntax("empty key segment"));
        }
        segments.push(field.to_owned());
        if !indexes.is_empty() {
            indexes = indexes
                .strip_suffix(']')
                .ok_or_else(|| syntax("unclosed `[` in key"))?;
            for index in indexes.split("][") {
                if index.is_empty() || !index.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(syntax("list index must be a number, e.g. `domains[0]`"));
                }
                segments.push(index.to_owned());
            }
        }
    }
    if segments.len() == 1 && segments[0].eq_ignore_ascii_case("configFile") {
        return Ok(None);
    }
    Ok(Some((origin, nest(segments, value))))
}

/// `["a", "b"]` and `v` as `{"a": {"b": "v"}}`.
fn nest(segments: Vec<String>, value: &str) -> Value {
    segments
        .into_iter()
        .rev()
        .fold(Value::String(value.to_owned()), |inner, key| {
            Value::Object(Map::from_iter([(key, inner)]))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(directory: &Path, name: &str) -> PathBuf {
        let path = directory.join(name);
        std::fs::write(&path, "").unwrap();
        path
    }

    #[test]
    fn finds_sluice_files_before_traefik_files() {
        let current = tempfile::tempdir().unwrap();
        let etc = tempfile::tempdir().unwrap();
        let directories = [current.path(), etc.path()];
        assert_eq!(find_config_file(&directories), None);
        let traefik = touch(current.path(), "traefik.yml");
        assert_eq!(find_config_file(&directories), Some(traefik));
        let etc_sluice = touch(etc.path(), "sluice.toml");
        assert_eq!(find_config_file(&directories), Some(etc_sluice));
        let sluice = touch(current.path(), "sluice.yaml");
        assert_eq!(find_config_file(&directories), Some(sluice));
    }
}
