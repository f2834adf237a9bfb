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

#[cfg(test)]
mod tests;
