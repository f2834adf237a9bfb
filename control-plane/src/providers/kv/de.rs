//! A serde `Deserializer` over a [`Node`] tree, so the dynamic configuration
//! model decodes straight from keys and string values.
//!
//! - Struct fields match case-insensitively against the names serde asks
//!   for (`loadbalancer` is `loadBalancer`, `passtlsclientcert` is
//!   `passTLSClientCert`); map keys (header names, resource names) are kept
//!   as written. The field tables are the model's own: nothing to keep in sync.
//! - Values are strings, converted to what the model asks for: booleans as
//!   Go reads them (`true`, `1`, `T`...), integers, floats.
//! - Lists are keys `0`, `1`... (ordered by number), or one value split on
//!   commas (`entrypoints = web,websecure`, as in labels).
//! - A struct written as a single `true` (or empty) value is enabled with its
//!   defaults (`.../middlewares/gz/compress = true`, `.../tls = true`).
//!
//! Errors carry the full key that caused them, innermost first.

use std::collections::BTreeMap;
use std::collections::btree_map;
use std::fmt;

use serde::de::value::StrDeserializer;
use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};

use super::tree::Node;

/// A key's position: its segments from the root, for error messages.
#[derive(Debug, Clone, Copy)]
pub(super) struct KeyPath<'p> {
    parent: Option<&'p KeyPath<'p>>,
    segment: &'p str,
}

impl<'p> KeyPath<'p> {
    /// The root key (`traefik`).
    pub(super) fn root(segment: &'p str) -> Self {
        Self {
            parent: None,
            segment,
        }
    }

    /// The key `segment` under this one.
    pub(super) fn child(&'p self, segment: &'p str) -> Self {
        Self {
            parent: Some(self),
            segment,
        }
    }

    /// The full key, segments joined by `separator`.
    pub(super) fn render(&self, separator: char) -> String {
        let mut segments = vec![self.segment];
        let mut current = self.parent;
        while let Some(path) = current {
            segments.push(path.segment);
            current = path.parent;
        }
        segments.reverse();
        segments.join(&separator.to_string())
    }
}

/// Why a key or value does not fit the model.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub(crate) struct DecodeError {
    /// The full key at fault, once known.
    pub(crate) key: Option<String>,
    /// What is wrong.
    pub(crate) message: String,
}

impl de::Error for DecodeError {
    fn custom<T: fmt::Display>(message: T) -> Self {
        Self {
            key: None,
            message: message.to_string(),
        }
    }
}

impl DecodeError {
    /// Attributes the error to `path` unless a deeper key already has it.
    pub(super) fn at(mut self, path: &KeyPath<'_>, separator: char) -> Self {
        if self.key.is_none() {
            self.key = Some(path.render(separator));
        }
        self
    }
}

/// What a deserializer reads: a node of the tree, or one item of a
/// comma-separated value.
#[derive(Debug, Clone, Copy)]
enum Content<'a> {
    Node(&'a Node),
    Text(&'a str),
}

/// Deserializes the model from one node of the key tree.
#[derive(Debug, Clone, Copy)]
pub(super) struct NodeDeserializer<'a, 'p> {
    content: Content<'a>,
    path: &'p KeyPath<'p>,
    separator: char,
}

impl<'a, 'p> NodeDeserializer<'a, 'p> {
    /// A deserializer for `node`, found at `path`.
    pub(super) fn new(node: &'a Node, path: &'p KeyPath<'p>, separator: char) -> Self {
        Self {
            content: Content::Node(node),
            path,
            separator,
        }
    }

    /// The value, for scalars; an error if there are keys under it.
    fn text(&self) -> Result<&'a str, DecodeError> {
        match self.content {
            Content::Text(text) => Ok(text),
            Content::Node(node) if node.children.is_empty() => {
                Ok(node.value.as_deref().unwrap_or_default())
            }
            Content::Node(node) => {
                let keys: Vec<String> = node
                    .children
                    .keys()
                    .take(3)
                    .map(|key| format!("`{key}`"))
                    .collect();
                Err(de::Error::custom(format!(
                    "expected a value, found keys under it ({})",
                    keys.join(", ")
                )))
            }
        }
    }

    /// The keys under this one, for structs and maps: none for an empty or
    /// `true` value.
    fn entries(&self, what: &str) -> Result<btree_map::Iter<'a, String, Node>, DecodeError> {
        static NONE: BTreeMap<String, Node> = BTreeMap::new();
        let text = match self.content {
            Content::Node(node) if !node.children.is_empty() => return Ok(node.children.iter()),
            Content::Node(node) => node.value.as_deref().unwrap_or_default(),
            Content::Text(text) => text,
        };
        if text.is_empty() || text.eq_ignore_ascii_case("true") {
            Ok(NONE.iter())
        } else {
            Err(de::Error::custom(format!(
                "expected {what} under this key, found the value `{text}`"
            )))
        }
    }

    /// List items: keys `0`, `1`... in numeric order, or the comma-separated
    /// parts of a value.
    fn items(&self) -> Result<Items<'a, 'p>, DecodeError> {
        let items = match self.content {
            Content::Node(node) if !node.children.is_empty() => {
                let mut indexed = Vec::with_capacity(node.children.len());
                for (key, child) in &node.children {
                    let index: usize = key.parse().map_err(|_| {
                        <DecodeError as de::Error>::custom("expected a list index (`0`, `1`, ...)")
                            .at(&self.path.child(key), self.separator)
                    })?;
                    indexed.push((index, Some(key.as_str()), Content::Node(child)));
                }
                indexed.sort_by_key(|(index, _, _)| *index);
                indexed
                    .into_iter()
                    .map(|(_, key, content)| (key, content))
                    .collect()
            }
            _ => self
                .text()?
                .split(',')
                .map(str::trim)
                .filter(|item| !item.is_empty())
                .map(|item| (None, Content::Text(item)))
                .collect(),
        };
        Ok(Items {
            items: Vec::into_iter(items),
            path: self.path,
            separator: self.separator,
        })
    }

    fn is_list(node: &Node) -> bool {
        !node.children.is_empty()
            && node
                .children
                .keys()
                .all(|key| !key.is_empty() && key.bytes().all(|byte| byte.is_ascii_digit()))
    }
}

/// Booleans as Go's `strconv.ParseBool` reads them.
fn parse_bool(text: &str) -> Result<bool, DecodeError> {
    match text.trim() {
        "1" | "t" | "T" => Ok(true),
        "0" | "f" | "F" => Ok(false),
        word if word.eq_ignore_ascii_case("true") => Ok(true),
        word if word.eq_ignore_ascii_case("false") => Ok(false),
        other => Err(de::Error::custom(format!(
            "invalid boolean `{other}` (expected true or false)"
        ))),
    }
}

macro_rules! deserialize_number {
    ($($method:ident => $visit:ident: $type:ty,)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
            let text = self.text()?;
            let number: $type = text.trim().parse().map_err(|error| {
                <DecodeError as de::Error>::custom(format!("invalid number `{text}`: {error}"))
            })?;
            visitor.$visit(number)
        }
    )*};
}

impl<'de> de::Deserializer<'de> for NodeDeserializer<'_, '_> {
    type Error = DecodeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        match self.content {
            Content::Node(node) if Self::is_list(node) => visitor.visit_seq(self.items()?),
            Content::Node(node) if !node.children.is_empty() => visitor.visit_map(Entries {
                iter: node.children.iter(),
                fields: &[],
                pending: None,
                path: self.path,
                separator: self.separator,
            }),
            _ => visitor.visit_str(self.text()?),
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        visitor.visit_bool(parse_bool(self.text()?)?)
    }

    deserialize_number! {
        deserialize_i8 => visit_i8: i8,
        deserialize_i16 => visit_i16: i16,
        deserialize_i32 => visit_i32: i32,
        deserialize_i64 => visit_i64: i64,
        deserialize_u8 => visit_u8: u8,
        deserialize_u16 => visit_u16: u16,
        deserialize_u32 => visit_u32: u32,
        deserialize_u64 => visit_u64: u64,
        deserialize_f32 => visit_f32: f32,
        deserialize_f64 => visit_f64: f64,
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        visitor.visit_str(self.text()?)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        visitor.visit_some(self)
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        visitor.visit_unit()
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        visitor.visit_unit()
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        visitor.visit_seq(self.items()?)
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _: usize,
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: usize,
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        visitor.visit_map(Entries {
            iter: self.entries("keys")?,
            fields: &[],
            pending: None,
            path: self.path,
            separator: self.separator,
        })
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        visitor.visit_map(Entries {
            iter: self.entries("options (or `true` for the defaults)")?,
            fields,
            pending: None,
            path: self.path,
            separator: self.separator,
        })
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        visitor.visit_enum(IntoDeserializer::<DecodeError>::into_deserializer(
            self.text()?,
        ))
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        visitor.visit_unit()
    }
}

/// The keys under a node, as a struct's fields or a map's entries.
struct Entries<'a, 'p> {
    iter: btree_map::Iter<'a, String, Node>,
    /// The struct's field names; empty for a map, whose keys stay as written.
    fields: &'static [&'static str],
    pending: Option<(&'a str, &'a Node)>,
    path: &'p KeyPath<'p>,
    separator: char,
}

impl<'de> de::MapAccess<'de> for Entries<'_, '_> {
    type Error = DecodeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DecodeError> {
        let Some((key, node)) = self.iter.next() else {
            return Ok(None);
        };
        self.pending = Some((key, node));
        let name = self
            .fields
            .iter()
            .find(|field| field.eq_ignore_ascii_case(key))
            .copied()
            .unwrap_or(key);
        seed.deserialize(StrDeserializer::<DecodeError>::new(name))
            .map(Some)
            .map_err(|error| error.at(&self.path.child(key), self.separator))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, DecodeError> {
        let (key, node) = self.pending.take().ok_or_else(|| {
            <DecodeError as de::Error>::custom("a value was asked for before its key")
        })?;
        let path = self.path.child(key);
        seed.deserialize(NodeDeserializer::new(node, &path, self.separator))
            .map_err(|error| error.at(&path, self.separator))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.iter.len())
    }
}

/// The items of a list.
struct Items<'a, 'p> {
    /// Each item's key (`None` for a part of a comma-separated value).
    items: std::vec::IntoIter<(Option<&'a str>, Content<'a>)>,
    path: &'p KeyPath<'p>,
    separator: char,
}

impl<'de> de::SeqAccess<'de> for Items<'_, '_> {
    type Error = DecodeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DecodeError> {
        let Some((key, content)) = self.items.next() else {
            return Ok(None);
        };
        let child;
        let path = match key {
            Some(key) => {
                child = self.path.child(key);
                &child
            }
            None => self.path,
        };
        let item = NodeDeserializer {
            content,
            path,
            separator: self.separator,
        };
        seed.deserialize(item)
            .map(Some)
            .map_err(|error| error.at(path, self.separator))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}
