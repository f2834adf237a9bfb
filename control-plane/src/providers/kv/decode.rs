//! The key tree as a [`DynamicConfig`], one resource at a time: a broken
//! router drops only that router, with an error naming the key at fault.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::de::{KeyPath, NodeDeserializer};
use super::tree::{KeyTree, Node};
use crate::dynamic::{DynamicConfig, HttpConfig, TlsConfig};
use crate::providers::SourceError;

/// What a key tree decodes to.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Decoded {
    /// Every resource that decoded.
    pub(crate) config: DynamicConfig,
    /// One error per resource left out (or key ignored), naming the key.
    pub(crate) errors: Vec<SourceError>,
    /// The key each resource was read from, by model path
    /// (`http.routers.api` to `traefik/http/routers/api`).
    pub(crate) origins: BTreeMap<String, String>,
}

impl KeyTree {
    /// Decodes every section under the root.
    pub(crate) fn decode(&self) -> Decoded {
        let root = KeyPath::root(&self.root);
        let mut decoder = Decoder {
            separator: self.separator,
            decoded: Decoded::default(),
        };
        for (section, node) in &self.node.children {
            let path = root.child(section);
            if !decoder.has_keys(node, &path) {
                continue;
            }
            match section.to_ascii_lowercase().as_str() {
                "http" => decoder.http(node, &path),
                "tls" => decoder.tls(node, &path),
                "tcp" | "udp" => decoder.opaque(node, &path, section),
                _ => decoder.unknown(&path, "`http`, `tcp`, `udp` or `tls`"),
            }
        }
        decoder.decoded
    }
}

struct Decoder {
    separator: char,
    decoded: Decoded,
}

impl Decoder {
    fn error(&mut self, key: String, message: String) {
        self.decoded.errors.push(SourceError {
            location: key,
            key: None,
            message,
        });
    }

    fn unknown(&mut self, path: &KeyPath<'_>, expected: &str) {
        let key = path.render(self.separator);
        self.error(
            key,
            format!("unknown key (expected {expected}); the keys under it are ignored"),
        );
    }

    /// Whether `node` has keys under it; a value where keys belong is an
    /// error, an empty one (a folder) is nothing.
    fn has_keys(&mut self, node: &Node, path: &KeyPath<'_>) -> bool {
        if !node.children.is_empty() {
            return true;
        }
        if node.value.as_deref().is_some_and(|value| !value.is_empty()) {
            let key = path.render(self.separator);
            self.error(
                key,
                "expected keys under this key, found a value; ignored".to_owned(),
            );
        }
        false
    }

    fn http(&mut self, node: &Node, path: &KeyPath<'_>) {
        let http = self
            .decoded
            .config
            .http
            .get_or_insert_with(HttpConfig::default);
        let mut routers = std::mem::take(&mut http.routers);
        let mut services = std::mem::take(&mut http.services);
        let mut middlewares = std::mem::take(&mut http.middlewares);
        let mut transports = std::mem::take(&mut http.servers_transports);
        for (kind, node) in &node.children {
            let path = path.child(kind);
            if !self.has_keys(node, &path) {
                continue;
            }
            match kind.to_ascii_lowercase().as_str() {
                "routers" => self.named(node, &path, "http.routers", "router", &mut routers),
                "services" => self.named(node, &path, "http.services", "service", &mut services),
                "middlewares" => {
                    self.named(
                        node,
                        &path,
                        "http.middlewares",
                        "middleware",
                        &mut middlewares,
                    );
                }
                "serverstransports" => self.named(
                    node,
                    &path,
                    "http.serversTransports",
                    "servers transport",
                    &mut transports,
                ),
                _ => self.unknown(
                    &path,
                    "`routers`, `services`, `middlewares` or `serversTransports`",
                ),
            }
        }
        let http = self
            .decoded
            .config
            .http
            .get_or_insert_with(HttpConfig::default);
        http.routers = routers;
        http.services = services;
        http.middlewares = middlewares;
        http.servers_transports = transports;
    }

    fn tls(&mut self, node: &Node, path: &KeyPath<'_>) {
        let mut tls = self.decoded.config.tls.take().unwrap_or_default();
        for (kind, node) in &node.children {
            let path = path.child(kind);
            if !self.has_keys(node, &path) {
                continue;
            }
            match kind.to_ascii_lowercase().as_str() {
                "certificates" => self.certificates(node, &path, &mut tls),
                "options" => {
                    self.named(node, &path, "tls.options", "TLS options", &mut tls.options)
                }
                "stores" => self.named(node, &path, "tls.stores", "TLS store", &mut tls.stores),
                _ => self.unknown(&path, "`certificates`, `options` or `stores`"),
            }
        }
        self.decoded.config.tls = Some(tls);
    }

    fn certificates(&mut self, node: &Node, path: &KeyPath<'_>, tls: &mut TlsConfig) {
        let mut indexed = Vec::new();
        for (index, node) in &node.children {
            let path = path.child(index);
            let Ok(number) = index.parse::<usize>() else {
                self.unknown(&path, "a list index (`0`, `1`, ...)");
                continue;
            };
            if let Some(certificate) = self.resource(node, &path, "certificate") {
                indexed.push((number, certificate));
            }
        }
        indexed.sort_by_key(|(index, _)| *index);
        tls.certificates
            .extend(indexed.into_iter().map(|(_, certificate)| certificate));
    }

    /// `tcp` and `udp`, kept as JSON like the file provider does: by kind
    /// (`routers`), then name.
    fn opaque(&mut self, node: &Node, path: &KeyPath<'_>, section: &str) {
        let section = section.to_ascii_lowercase();
        let mut kinds = Map::new();
        for (kind, node) in &node.children {
            let path = path.child(kind);
            if !self.has_keys(node, &path) {
                continue;
            }
            let mut named = BTreeMap::<String, Value>::new();
            let prefix = format!("{section}.{kind}");
            self.named(
                node,
                &path,
                &prefix,
                &format!("{section} {kind}"),
                &mut named,
            );
            kinds.insert(kind.clone(), Value::Object(named.into_iter().collect()));
        }
        let target = match section.as_str() {
            "tcp" => &mut self.decoded.config.tcp,
            _ => &mut self.decoded.config.udp,
        };
        match target {
            Some(Value::Object(existing)) => existing.extend(kinds),
            _ => *target = Some(Value::Object(kinds)),
        }
    }

    /// Every named resource under `node` (`http/routers/<name>/...`).
    fn named<T: DeserializeOwned>(
        &mut self,
        node: &Node,
        path: &KeyPath<'_>,
        section: &str,
        what: &str,
        target: &mut BTreeMap<String, T>,
    ) {
        for (name, node) in &node.children {
            let path = path.child(name);
            if target.contains_key(name) {
                let key = path.render(self.separator);
                self.error(
                    key,
                    format!("{what} `{name}` is defined twice; this one is ignored"),
                );
                continue;
            }
            if let Some(resource) = self.resource(node, &path, &format!("{what} `{name}`")) {
                self.decoded
                    .origins
                    .insert(format!("{section}.{name}"), path.render(self.separator));
                target.insert(name.clone(), resource);
            }
        }
    }

    /// One resource; on error, `None` and an error naming the key at fault.
    fn resource<T: DeserializeOwned>(
        &mut self,
        node: &Node,
        path: &KeyPath<'_>,
        what: &str,
    ) -> Option<T> {
        match T::deserialize(NodeDeserializer::new(node, path, self.separator)) {
            Ok(resource) => Some(resource),
            Err(error) => {
                let error = error.at(path, self.separator);
                let key = error.key.unwrap_or_default();
                self.error(key, format!("{}; {what} is left out", error.message));
                None
            }
        }
    }
}
