//! The Consul providers: KV (`providers.consul`, Traefik's key layout) and
//! Catalog (`providers.consulCatalog`, services and their tags). Both follow
//! Consul with blocking queries through the small HTTP client in
//! `client.rs`.

mod catalog;
mod client;
mod constraints;
mod kv;
mod tags;

pub use catalog::{ConsulCatalogError, ConsulCatalogProvider};
pub use client::ConsulError;
pub(crate) use client::with_causes;
pub use constraints::ConstraintError;
pub use kv::ConsulKvProvider;
pub use tags::DefaultRuleError;
