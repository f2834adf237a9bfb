//! Traefik's key-value layout, shared by the Consul KV, etcd and Consul
//! Catalog providers.
//!
//! Under a root key (`traefik`), keys spell the dynamic configuration's
//! path: `traefik/http/routers/<name>/rule`,
//! `traefik/http/services/<name>/loadbalancer/servers/0/url`,
//! `traefik/http/middlewares/<name>/headers/customrequestheaders/X-Foo`,
//! `traefik/tls/options/<name>/minversion`, `traefik/tls/certificates/0/certfile`.
//! Catalog tags use the same layout with `.` for `/`
//! (`traefik.http.routers.api.rule=...`).
//!
//! Struct fields match whatever their case (stores usually hold lowercase
//! keys); names chosen by the user (resources, header names) are kept as
//! written. Values are strings, converted to what the model expects; lists
//! are `/0`, `/1`... or one comma-separated value. Each resource is decoded
//! on its own: a malformed key or value is an error naming the full key, and
//! only the resource it belongs to is left out. Start at [`KeyTree`].

mod de;
mod decode;
mod tree;

pub(crate) use tree::{KeyTree, Node};

use std::collections::BTreeMap;

use super::{ProviderUpdate, SourceError};

/// The update of a store that holds raw bytes per key (etcd, Redis): keys
/// under `root_key` decoded into a configuration; a value that is not UTF-8
/// is an error naming its key.
pub(crate) fn update_from_raw_keys(
    provider: &str,
    root_key: &str,
    keys: &BTreeMap<String, Vec<u8>>,
) -> ProviderUpdate {
    let mut tree = KeyTree::new(root_key, '/');
    let mut errors = Vec::new();
    for (key, value) in keys {
        let inserted = match std::str::from_utf8(value) {
            Ok(value) => tree.insert(key, value),
            Err(_) => Err(SourceError {
                location: key.clone(),
                key: None,
                message: "value is not UTF-8 text".to_owned(),
            }),
        };
        errors.extend(inserted.err());
    }
    let decoded = tree.decode();
    errors.extend(decoded.errors);
    ProviderUpdate {
        provider: provider.to_owned(),
        config: decoded.config,
        errors,
        origins: decoded.origins,
    }
}

#[cfg(test)]
mod tests;
