//! The shape of the static configuration tree, used to line sources up key
//! by key before serde sees the result.
//!
//! Every source is first turned into a JSON tree. [`canonicalize`] rewrites
//! one source's tree against the key tables of `keys.rs`: struct keys take
//! their canonical spelling whatever their case (an unknown key is reported
//! with the source that wrote it), text from flags and environment variables
//! becomes booleans, numbers and comma-separated lists, and indexed list
//! items (`domains[0].main`) stay index-keyed objects so they can override
//! one item. [`Merger`] then lays the sources over each other and remembers
//! which source set which key, so that later errors can name it;
//! [`finalize`] turns index-keyed objects back into lists.

use serde_json::{Map, Value};

use super::load::{ConfigOrigin, StaticConfigError};

/// What a node of the configuration tree is.
#[derive(Clone, Copy)]
pub(super) enum Shape {
    /// A struct: keys matched case-insensitively against known field names.
    Struct(&'static StructShape),
    /// A map with names chosen by the user (entry points): keys kept as written.
    Map(&'static Shape),
    /// A list.
    List(&'static Shape),
    /// A string (also durations, addresses, paths, levels).
    Text,
    /// A boolean.
    Bool,
    /// An integer.
    Integer,
    /// A section accepted as is for Traefik compatibility.
    Opaque,
}

/// The fields of a struct, and what a scalar written in its place means.
pub(super) struct StructShape {
    pub(super) fields: &'static [(&'static str, Shape)],
    pub(super) scalar: ScalarForm,
}

/// What a scalar value written where a struct is expected means.
#[derive(Clone, Copy)]
pub(super) enum ScalarForm {
    /// Nothing: serde reports the type error.
    Invalid,
    /// It sets this one field (`debounce: 200ms`).
    SetsField(&'static str),
    /// `true` enables the section with its defaults, `false` removes it
    /// (`--entryPoints.websecure.http.tls=true`).
    Enables,
}

impl StructShape {
    /// A struct that a scalar cannot stand for.
    pub(super) const fn new(fields: &'static [(&'static str, Shape)]) -> Self {
        Self {
            fields,
            scalar: ScalarForm::Invalid,
        }
    }

    fn field(&self, key: &str) -> Option<(&'static str, Shape)> {
        self.fields
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(key))
            .copied()
    }

    fn expected(&self) -> String {
        let names: Vec<String> = self
            .fields
            .iter()
            .map(|(name, _)| format!("`{name}`"))
            .collect();
        format!("one of {}", names.join(", "))
    }
}

/// `parent.key`, or `key` at the root.
fn child_path(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_owned()
    } else {
        format!("{parent}.{key}")
    }
}

/// Whether `path` is `prefix` or lies under it.
fn is_within(path: &str, prefix: &str) -> bool {
    prefix.is_empty()
        || path
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('.') || rest.starts_with('['))
}

/// Rewrites one source's tree against `shape` (see the module doc).
/// `from_text` is set for flags and environment variables, whose values are
/// all strings.
pub(super) fn canonicalize(
    value: Value,
    shape: Shape,
    path: &str,
    origin: &ConfigOrigin,
    from_text: bool,
) -> Result<Value, StaticConfigError> {
    let canonical = match (shape, value) {
        (Shape::Struct(fields), value) => {
            return canonicalize_struct(value, fields, path, origin, from_text);
        }
        (Shape::Map(_) | Shape::Opaque, Value::Null) => Value::Object(Map::new()),
        (Shape::Map(inner), Value::Object(entries)) => Value::Object(
            entries
                .into_iter()
                .map(|(name, value)| {
                    let path = child_path(path, &name);
                    Ok((name, canonicalize(value, *inner, &path, origin, from_text)?))
                })
                .collect::<Result<_, StaticConfigError>>()?,
        ),
        (Shape::List(_), Value::Null) => Value::Array(Vec::new()),
        (Shape::List(item), Value::Array(items)) => Value::Array(
            items
                .into_iter()
                .enumerate()
                .map(|(index, value)| {
                    let path = format!("{path}[{index}]");
                    canonicalize(value, *item, &path, origin, from_text)
                })
                .collect::<Result<_, _>>()?,
        ),
        (Shape::List(item), Value::Object(indexed)) => {
            let mut items = Map::new();
            for (index, value) in indexed {
                let Ok(index) = index.parse::<usize>() else {
                    return Err(StaticConfigError::UnknownKey {
                        origin: origin.clone(),
                        key: child_path(path, &index),
                        expected: "a list index".to_owned(),
                    });
                };
                let path = format!("{path}[{index}]");
                let value = canonicalize(value, *item, &path, origin, from_text)?;
                items.insert(index.to_string(), value);
            }
            Value::Object(items)
        }
        (Shape::List(item @ (Shape::Text | Shape::Bool | Shape::Integer)), Value::String(list))
            if from_text =>
        {
            Value::Array(
                list.split(',')
                    .map(str::trim)
                    .filter(|entry| !entry.is_empty())
                    .map(|entry| from_string(entry, *item))
                    .collect(),
            )
        }
        (Shape::Bool | Shape::Integer, Value::String(text)) if from_text => {
            from_string(&text, shape)
        }
        (_, value) => value,
    };
    Ok(canonical)
}

fn canonicalize_struct(
    value: Value,
    shape: &'static StructShape,
    path: &str,
    origin: &ConfigOrigin,
    from_text: bool,
) -> Result<Value, StaticConfigError> {
    let entries = match (value, shape.scalar) {
        (Value::Object(entries), _) => entries,
        (Value::Null, _) => Map::new(),
        (scalar, ScalarForm::SetsField(field)) => Map::from_iter([(field.to_owned(), scalar)]),
        (scalar, ScalarForm::Enables) => match as_bool(&scalar) {
            Some(true) => Map::new(),
            Some(false) => return Ok(Value::Null),
            None => return Ok(scalar),
        },
        (scalar, ScalarForm::Invalid) => return Ok(scalar),
    };
    let mut canonical = Map::new();
    for (key, value) in entries {
        let Some((name, field)) = shape.field(&key) else {
            return Err(StaticConfigError::UnknownKey {
                origin: origin.clone(),
                key: child_path(path, &key),
                expected: shape.expected(),
            });
        };
        let path = child_path(path, name);
        if canonical.contains_key(name) {
            return Err(StaticConfigError::InvalidValue {
                origin: origin.clone(),
                key: path,
                message: format!("set twice (once as `{key}`)"),
            });
        }
        let value = canonicalize(value, field, &path, origin, from_text)?;
        canonical.insert(name.to_owned(), value);
    }
    Ok(Value::Object(canonical))
}

/// A flag or environment value read as `shape`; left as a string if it does
/// not parse, so serde reports the type error with its key.
fn from_string(text: &str, shape: Shape) -> Value {
    let parsed = match shape {
        Shape::Bool => as_bool(&Value::String(text.to_owned())).map(Value::Bool),
        Shape::Integer => text
            .parse::<i64>()
            .map(Value::from)
            .or_else(|_| text.parse::<u64>().map(Value::from))
            .ok(),
        _ => None,
    };
    parsed.unwrap_or_else(|| Value::String(text.to_owned()))
}

fn as_bool(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(enabled) => Some(*enabled),
        Value::String(text) if text.eq_ignore_ascii_case("true") => Some(true),
        Value::String(text) if text.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

/// Lays canonical trees over each other, later ones overriding single keys,
/// and remembers which source set each key.
#[derive(Default)]
pub(super) struct Merger {
    /// Key paths (`entryPoints.web.address`) and the source that last set
    /// them, whole subtrees included.
    origins: Vec<(String, ConfigOrigin)>,
}

impl Merger {
    /// Merges `source` over `target`.
    pub(super) fn merge(
        &mut self,
        target: &mut Value,
        source: Value,
        shape: Shape,
        path: &str,
        origin: &ConfigOrigin,
    ) {
        match (shape, target, source) {
            (Shape::List(item), target, Value::Object(indexed)) => {
                if let Value::Array(items) = target {
                    let by_index = items
                        .drain(..)
                        .enumerate()
                        .map(|(index, value)| (index.to_string(), value));
                    *target = Value::Object(by_index.collect());
                }
                match target {
                    Value::Object(existing) => {
                        for (index, value) in indexed {
                            let path = format!("{path}[{index}]");
                            self.merge_entry(existing, index, value, *item, &path, origin);
                        }
                    }
                    target => self.replace(target, Value::Object(indexed), path, origin),
                }
            }
            (
                Shape::Struct(_) | Shape::Map(_) | Shape::Opaque,
                Value::Object(existing),
                Value::Object(entries),
            ) => {
                for (key, value) in entries {
                    let path = child_path(path, &key);
                    let shape = match shape {
                        Shape::Struct(fields) => fields.field(&key).map_or(Shape::Opaque, |f| f.1),
                        Shape::Map(inner) => *inner,
                        _ => Shape::Opaque,
                    };
                    self.merge_entry(existing, key, value, shape, &path, origin);
                }
            }
            (_, target, source) => self.replace(target, source, path, origin),
        }
    }

    fn merge_entry(
        &mut self,
        existing: &mut Map<String, Value>,
        key: String,
        value: Value,
        shape: Shape,
        path: &str,
        origin: &ConfigOrigin,
    ) {
        match existing.get_mut(&key) {
            Some(target) => self.merge(target, value, shape, path, origin),
            None => {
                existing.insert(key, value);
                self.record(path, origin);
            }
        }
    }

    fn replace(&mut self, target: &mut Value, source: Value, path: &str, origin: &ConfigOrigin) {
        *target = source;
        self.record(path, origin);
    }

    fn record(&mut self, path: &str, origin: &ConfigOrigin) {
        self.origins
            .retain(|(recorded, _)| !is_within(recorded, path));
        self.origins.push((path.to_owned(), origin.clone()));
    }

    /// The source that set `path`, or the closest section above it.
    pub(super) fn origin_of(&self, path: &str) -> ConfigOrigin {
        self.origins
            .iter()
            .filter(|(recorded, _)| is_within(path, recorded))
            .max_by_key(|(recorded, _)| recorded.len())
            .map_or(ConfigOrigin::Defaults, |(_, origin)| origin.clone())
    }
}

/// Turns the index-keyed objects left by indexed flags back into lists,
/// ordered by index.
pub(super) fn finalize(value: &mut Value, shape: Shape) {
    match (shape, value) {
        (Shape::List(item), value) => {
            if let Value::Object(indexed) = value {
                let mut items: Vec<(usize, Value)> = std::mem::take(indexed)
                    .into_iter()
                    .filter_map(|(index, item)| Some((index.parse().ok()?, item)))
                    .collect();
                items.sort_by_key(|(index, _)| *index);
                *value = Value::Array(items.into_iter().map(|(_, item)| item).collect());
            }
            if let Value::Array(items) = value {
                items.iter_mut().for_each(|value| finalize(value, *item));
            }
        }
        (Shape::Struct(fields), Value::Object(entries)) => {
            for (key, value) in entries {
                if let Some((_, shape)) = fields.field(key) {
                    finalize(value, shape);
                }
            }
        }
        (Shape::Map(inner), Value::Object(entries)) => {
            entries
                .values_mut()
                .for_each(|value| finalize(value, *inner));
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::config::keys::ROOT;

    fn canonical(value: Value, from_text: bool) -> Result<Value, StaticConfigError> {
        canonicalize(
            value,
            Shape::Struct(&ROOT),
            "",
            &ConfigOrigin::Flag("--test".to_owned()),
            from_text,
        )
    }

    #[test]
    fn canonical_keys_ignore_case_but_keep_map_names() {
        let tree = canonical(json!({"ENTRYPOINTS": {"Web": {"ADDRESS": ":80"}}}), false).unwrap();
        assert_eq!(tree, json!({"entryPoints": {"Web": {"address": ":80"}}}));
    }

    #[test]
    fn text_values_become_typed() {
        let tree = canonical(
            json!({
                "controlplane": {"historysize": "32", "debounce": "250ms"},
                "providers": {"file": {"watch": "FALSE"}},
                "entrypoints": {"web": {"http": {"middlewares": "a, b", "tls": "true"}}},
            }),
            true,
        )
        .unwrap();
        assert_eq!(
            tree,
            json!({
                "controlPlane": {"historySize": 32, "debounce": {"quietPeriod": "250ms"}},
                "providers": {"file": {"watch": false}},
                "entryPoints": {"web": {"http": {"middlewares": ["a", "b"], "tls": {}}}},
            })
        );
        // File values are taken as written: serde reports a wrong type.
        let tree = canonical(json!({"controlPlane": {"historySize": "32"}}), false).unwrap();
        assert_eq!(tree, json!({"controlPlane": {"historySize": "32"}}));
    }

    #[test]
    fn unknown_keys_name_the_whole_path() {
        let error = canonical(json!({"entryPoints": {"web": {"adress": ":80"}}}), false)
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("flag `--test`: unknown key `entryPoints.web.adress`"),
            "{error}"
        );
        assert!(error.contains("`address`"), "{error}");
        let error = canonical(json!({"Log": {"level": "x", "LEVEL": "y"}}), false).unwrap_err();
        assert!(
            error.to_string().contains("`log.level`: set twice"),
            "{error}"
        );
    }

    #[test]
    fn indexed_items_override_single_list_entries() {
        let shape = Shape::Struct(&ROOT);
        let file = ConfigOrigin::File("traefik.yml".into());
        let flag = ConfigOrigin::Flag("--entryPoints.websecure.http.tls.domains[1].main".into());
        let tls = |domains| json!({"entryPoints": {"websecure": {"http": {"tls": {"domains": domains}}}}});
        let mut merged = json!({});
        let mut merger = Merger::default();
        let from_file = tls(json!([{"main": "a.example"}, {"main": "b.example", "sans": ["c"]}]));
        merger.merge(
            &mut merged,
            canonical(from_file, false).unwrap(),
            shape,
            "",
            &file,
        );
        let from_flag = tls(json!({"1": {"main": "d.example"}}));
        merger.merge(
            &mut merged,
            canonical(from_flag, true).unwrap(),
            shape,
            "",
            &flag,
        );
        finalize(&mut merged, shape);
        assert_eq!(
            merged,
            tls(json!([{"main": "a.example"}, {"main": "d.example", "sans": ["c"]}]))
        );
        let domains = "entryPoints.websecure.http.tls.domains";
        assert_eq!(merger.origin_of(&format!("{domains}[1].main")), flag);
        assert_eq!(merger.origin_of(&format!("{domains}[1].sans")), file);
        assert_eq!(merger.origin_of("log.level"), ConfigOrigin::Defaults);
    }
}
