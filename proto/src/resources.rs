//! Helpers over [`Resources`]: every resource kind has a name and a content
//! version, and these let generic code (delta computation, delta application)
//! treat the eight lists alike.

use crate::v1::{
    Certificate, EntryPoint, Middleware, ResourceKind, Resources, Router, ServersTransport,
    Service, TlsOptions, TlsStore,
};

/// A resource that is keyed by name and carries a content version.
pub trait ResourceNames {
    /// The resource kind, as used in removals.
    const KIND: ResourceKind;
    /// Qualified name.
    fn name(&self) -> &str;
    /// Hash of the resource's content.
    fn content_version(&self) -> &str;
    /// Sets the content version.
    fn set_content_version(&mut self, version: String);
}

macro_rules! resource_names {
    ($($ty:ty => $kind:ident),* $(,)?) => {$(
        impl ResourceNames for $ty {
            const KIND: ResourceKind = ResourceKind::$kind;
            fn name(&self) -> &str {
                &self.name
            }
            fn content_version(&self) -> &str {
                &self.content_version
            }
            fn set_content_version(&mut self, version: String) {
                self.content_version = version;
            }
        }
    )*};
}

resource_names! {
    EntryPoint => EntryPoint,
    Router => Router,
    Service => Service,
    Middleware => Middleware,
    Certificate => Certificate,
    TlsOptions => TlsOptions,
    TlsStore => TlsStore,
    ServersTransport => ServersTransport,
}

impl Resources {
    /// Total number of resources of every kind.
    pub fn len(&self) -> usize {
        self.entry_points.len()
            + self.routers.len()
            + self.services.len()
            + self.middlewares.len()
            + self.certificates.len()
            + self.tls_options.len()
            + self.tls_stores.len()
            + self.servers_transports.len()
    }

    /// True when there is no resource at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
