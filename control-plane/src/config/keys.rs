//! The keys of every section of the static configuration, as
//! [`StructShape`] tables for the loader (see `shape.rs`). They mirror the
//! serde types; a test checks that both list exactly the same keys.

use super::shape::{ScalarForm, Shape, StructShape};

/// The root: [`super::StaticConfig`].
pub(super) static ROOT: StructShape = StructShape::new(&[
    ("entryPoints", Shape::Map(&ENTRY_POINT)),
    ("providers", Shape::Struct(&PROVIDERS)),
    ("log", Shape::Struct(&LOG)),
    ("controlPlane", Shape::Struct(&CONTROL_PLANE)),
    ("accessLog", Shape::Opaque),
    ("api", Shape::Opaque),
    ("ping", Shape::Opaque),
    ("metrics", Shape::Opaque),
    ("tracing", Shape::Opaque),
    ("global", Shape::Opaque),
    ("serversTransport", Shape::Opaque),
    ("tcpServersTransport", Shape::Opaque),
    ("certificatesResolvers", Shape::Opaque),
    ("experimental", Shape::Opaque),
    ("hostResolver", Shape::Opaque),
    ("core", Shape::Opaque),
    ("spiffe", Shape::Opaque),
]);

static ENTRY_POINT: Shape = Shape::Struct(&ENTRY_POINT_FIELDS);
static ENTRY_POINT_FIELDS: StructShape = StructShape::new(&[
    ("address", Shape::Text),
    ("asDefault", Shape::Bool),
    ("allowACMEByPass", Shape::Bool),
    ("reusePort", Shape::Bool),
    ("forwardedHeaders", Shape::Struct(&FORWARDED_HEADERS)),
    ("http", Shape::Struct(&ENTRY_POINT_HTTP)),
    ("transport", Shape::Opaque),
    ("proxyProtocol", Shape::Opaque),
    ("http2", Shape::Opaque),
    ("http3", Shape::Opaque),
    ("udp", Shape::Opaque),
    ("observability", Shape::Opaque),
]);

static FORWARDED_HEADERS: StructShape = StructShape::new(&[
    ("insecure", Shape::Bool),
    ("trustedIPs", Shape::List(&Shape::Text)),
    ("connection", Shape::List(&Shape::Text)),
]);

static ENTRY_POINT_HTTP: StructShape = StructShape::new(&[
    ("redirections", Shape::Struct(&REDIRECTIONS)),
    ("middlewares", Shape::List(&Shape::Text)),
    ("tls", Shape::Struct(&ENTRY_POINT_TLS)),
    ("encodeQuerySemicolons", Shape::Bool),
    ("sanitizePath", Shape::Bool),
    ("maxHeaderBytes", Shape::Integer),
]);

static REDIRECTIONS: StructShape =
    StructShape::new(&[("entryPoint", Shape::Struct(&ENTRY_POINT_REDIRECT))]);

static ENTRY_POINT_REDIRECT: StructShape = StructShape::new(&[
    ("to", Shape::Text),
    ("scheme", Shape::Text),
    ("permanent", Shape::Bool),
    ("priority", Shape::Integer),
]);

static ENTRY_POINT_TLS: StructShape = StructShape {
    fields: &[
        ("options", Shape::Text),
        ("certResolver", Shape::Text),
        ("domains", Shape::List(&DOMAIN)),
    ],
    scalar: ScalarForm::Enables,
};

static DOMAIN: Shape = Shape::Struct(&DOMAIN_FIELDS);
static DOMAIN_FIELDS: StructShape =
    StructShape::new(&[("main", Shape::Text), ("sans", Shape::List(&Shape::Text))]);

static PROVIDERS: StructShape = StructShape::new(&[
    ("providersThrottleDuration", Shape::Text),
    ("file", Shape::Struct(&FILE_PROVIDER)),
    (
        "kubernetesIngress",
        Shape::Struct(&KUBERNETES_INGRESS_PROVIDER),
    ),
    ("kubernetesCRD", Shape::Struct(&KUBERNETES_CRD_PROVIDER)),
    ("kubernetesGateway", Shape::Opaque),
    ("consul", Shape::Struct(&CONSUL_PROVIDER)),
    ("consulCatalog", Shape::Struct(&CONSUL_CATALOG_PROVIDER)),
    ("etcd", Shape::Struct(&ETCD_PROVIDER)),
    ("redis", Shape::Struct(&REDIS_PROVIDER)),
    ("zooKeeper", Shape::Opaque),
    ("docker", Shape::Opaque),
    ("swarm", Shape::Opaque),
    ("nomad", Shape::Opaque),
    ("ecs", Shape::Opaque),
    ("http", Shape::Opaque),
    ("rest", Shape::Opaque),
    ("plugin", Shape::Opaque),
]);

static FILE_PROVIDER: StructShape = StructShape::new(&[
    ("filename", Shape::Text),
    ("directory", Shape::Text),
    ("watch", Shape::Bool),
    ("debugLogGeneratedTemplate", Shape::Bool),
]);

static PROVIDER_TLS: StructShape = StructShape::new(&[
    ("ca", Shape::Text),
    ("cert", Shape::Text),
    ("key", Shape::Text),
    ("insecureSkipVerify", Shape::Bool),
    ("caOptional", Shape::Bool),
]);

/// `--providers.<name>=true` enables the provider with its defaults.
static CONSUL_PROVIDER: StructShape = StructShape {
    fields: &[
        ("rootKey", Shape::Text),
        ("endpoints", Shape::List(&Shape::Text)),
        ("token", Shape::Text),
        ("namespaces", Shape::List(&Shape::Text)),
        ("tls", Shape::Struct(&PROVIDER_TLS)),
    ],
    scalar: ScalarForm::Enables,
};

/// `--providers.<name>=true` enables the provider with its defaults.
static ETCD_PROVIDER: StructShape = StructShape {
    fields: &[
        ("rootKey", Shape::Text),
        ("endpoints", Shape::List(&Shape::Text)),
        ("username", Shape::Text),
        ("password", Shape::Text),
        ("tls", Shape::Struct(&PROVIDER_TLS)),
    ],
    scalar: ScalarForm::Enables,
};

/// `--providers.<name>=true` enables the provider with its defaults.
static REDIS_PROVIDER: StructShape = StructShape {
    fields: &[
        ("rootKey", Shape::Text),
        ("endpoints", Shape::List(&Shape::Text)),
        ("username", Shape::Text),
        ("password", Shape::Text),
        ("db", Shape::Integer),
        ("tls", Shape::Struct(&PROVIDER_TLS)),
        ("sentinel", Shape::Opaque),
    ],
    scalar: ScalarForm::Enables,
};

/// `--providers.<name>=true` enables the provider with its defaults.
static CONSUL_CATALOG_PROVIDER: StructShape = StructShape {
    fields: &[
        ("constraints", Shape::Text),
        ("prefix", Shape::Text),
        ("refreshInterval", Shape::Text),
        ("requireConsistent", Shape::Bool),
        ("stale", Shape::Bool),
        ("cache", Shape::Bool),
        ("exposedByDefault", Shape::Bool),
        ("defaultRule", Shape::Text),
        ("connectAware", Shape::Bool),
        ("connectByDefault", Shape::Bool),
        ("serviceName", Shape::Text),
        ("watch", Shape::Bool),
        ("strictChecks", Shape::List(&Shape::Text)),
        ("namespaces", Shape::List(&Shape::Text)),
        ("endpoint", Shape::Struct(&CONSUL_ENDPOINT)),
    ],
    scalar: ScalarForm::Enables,
};

static CONSUL_ENDPOINT: StructShape = StructShape::new(&[
    ("address", Shape::Text),
    ("scheme", Shape::Text),
    ("datacenter", Shape::Text),
    ("token", Shape::Text),
    ("endpointWaitTime", Shape::Text),
    ("tls", Shape::Struct(&PROVIDER_TLS)),
    ("httpAuth", Shape::Struct(&HTTP_AUTH)),
]);

/// `--providers.<name>=true` enables the provider with its defaults.
static KUBERNETES_INGRESS_PROVIDER: StructShape = StructShape {
    fields: &[
        ("endpoint", Shape::Text),
        ("token", Shape::Text),
        ("certAuthFilePath", Shape::Text),
        ("namespaces", Shape::List(&Shape::Text)),
        ("labelSelector", Shape::Text),
        ("ingressClass", Shape::Text),
        ("throttleDuration", Shape::Text),
        ("allowExternalNameServices", Shape::Bool),
        ("allowEmptyServices", Shape::Bool),
        ("ingressEndpoint", Shape::Struct(&INGRESS_ENDPOINT)),
    ],
    scalar: ScalarForm::Enables,
};

static INGRESS_ENDPOINT: StructShape = StructShape::new(&[
    ("ip", Shape::Text),
    ("hostname", Shape::Text),
    ("publishedService", Shape::Text),
]);

/// `--providers.<name>=true` enables the provider with its defaults.
static KUBERNETES_CRD_PROVIDER: StructShape = StructShape {
    fields: &[
        ("endpoint", Shape::Text),
        ("token", Shape::Text),
        ("certAuthFilePath", Shape::Text),
        ("namespaces", Shape::List(&Shape::Text)),
        ("labelSelector", Shape::Text),
        ("ingressClass", Shape::Text),
        ("throttleDuration", Shape::Text),
        ("allowCrossNamespace", Shape::Bool),
        ("allowExternalNameServices", Shape::Bool),
        ("allowEmptyServices", Shape::Bool),
    ],
    scalar: ScalarForm::Enables,
};

static HTTP_AUTH: StructShape =
    StructShape::new(&[("username", Shape::Text), ("password", Shape::Text)]);

static LOG: StructShape = StructShape::new(&[
    ("level", Shape::Text),
    ("format", Shape::Text),
    ("noColor", Shape::Bool),
    ("filePath", Shape::Text),
    ("maxSize", Shape::Integer),
    ("maxAge", Shape::Integer),
    ("maxBackups", Shape::Integer),
    ("compress", Shape::Bool),
    ("otlp", Shape::Opaque),
]);

static CONTROL_PLANE: StructShape = StructShape::new(&[
    ("grpcAddress", Shape::Text),
    ("apiAddress", Shape::Text),
    ("debounce", Shape::Struct(&DEBOUNCE)),
    ("historySize", Shape::Integer),
    ("tls", Shape::Struct(&CONTROL_PLANE_TLS)),
    ("token", Shape::Text),
]);

static CONTROL_PLANE_TLS: StructShape = StructShape::new(&[
    ("certFile", Shape::Text),
    ("keyFile", Shape::Text),
    ("clientCAFile", Shape::Text),
]);

static DEBOUNCE: StructShape = StructShape {
    fields: &[("quietPeriod", Shape::Text), ("maxDelay", Shape::Text)],
    scalar: ScalarForm::SetsField("quietPeriod"),
};

#[cfg(test)]
mod tests {
    use std::fmt;

    use serde::de::{self, DeserializeOwned, Visitor};

    use super::*;
    use crate::config::*;
    use crate::dynamic::DomainConfig;

    /// A deserializer that only records the field names a struct asks for.
    struct FieldProbe;

    #[derive(Debug)]
    enum Probed {
        Fields(&'static [&'static str]),
        NotAStruct,
    }

    impl fmt::Display for Probed {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "{self:?}")
        }
    }

    impl std::error::Error for Probed {}

    impl de::Error for Probed {
        fn custom<T: fmt::Display>(_: T) -> Self {
            Self::NotAStruct
        }
    }

    impl<'de> de::Deserializer<'de> for FieldProbe {
        type Error = Probed;

        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Probed> {
            Err(Probed::NotAStruct)
        }

        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Probed> {
            Err(Probed::Fields(fields))
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
            bytes byte_buf option unit unit_struct newtype_struct seq tuple
            tuple_struct map enum identifier ignored_any
        }
    }

    fn assert_same_keys<T: DeserializeOwned>(shape: &StructShape) {
        let Err(Probed::Fields(fields)) = T::deserialize(FieldProbe) else {
            panic!("{} is not a struct", std::any::type_name::<T>());
        };
        let mut serde_keys = fields.to_vec();
        let mut shape_keys: Vec<&str> = shape.fields.iter().map(|(name, _)| *name).collect();
        serde_keys.sort_unstable();
        shape_keys.sort_unstable();
        assert_eq!(shape_keys, serde_keys, "{}", std::any::type_name::<T>());
    }

    #[test]
    fn shapes_list_exactly_the_serde_keys() {
        assert_same_keys::<StaticConfig>(&ROOT);
        assert_same_keys::<EntryPointConfig>(&ENTRY_POINT_FIELDS);
        assert_same_keys::<ForwardedHeadersConfig>(&FORWARDED_HEADERS);
        assert_same_keys::<EntryPointHttpConfig>(&ENTRY_POINT_HTTP);
        assert_same_keys::<RedirectionsConfig>(&REDIRECTIONS);
        assert_same_keys::<EntryPointRedirectConfig>(&ENTRY_POINT_REDIRECT);
        assert_same_keys::<EntryPointTlsConfig>(&ENTRY_POINT_TLS);
        assert_same_keys::<DomainConfig>(&DOMAIN_FIELDS);
        assert_same_keys::<ProvidersConfig>(&PROVIDERS);
        assert_same_keys::<FileProviderConfig>(&FILE_PROVIDER);
        assert_same_keys::<ConsulConfig>(&CONSUL_PROVIDER);
        assert_same_keys::<ConsulCatalogConfig>(&CONSUL_CATALOG_PROVIDER);
        assert_same_keys::<ConsulEndpointConfig>(&CONSUL_ENDPOINT);
        assert_same_keys::<EtcdConfig>(&ETCD_PROVIDER);
        assert_same_keys::<RedisConfig>(&REDIS_PROVIDER);
        assert_same_keys::<ProviderTlsConfig>(&PROVIDER_TLS);
        assert_same_keys::<HttpAuthConfig>(&HTTP_AUTH);
        assert_same_keys::<KubernetesIngressConfig>(&KUBERNETES_INGRESS_PROVIDER);
        assert_same_keys::<IngressEndpointConfig>(&INGRESS_ENDPOINT);
        assert_same_keys::<KubernetesCrdConfig>(&KUBERNETES_CRD_PROVIDER);
        assert_same_keys::<LogConfig>(&LOG);
        assert_same_keys::<ControlPlaneConfig>(&CONTROL_PLANE);
        assert_same_keys::<DebounceConfig>(&DEBOUNCE);
        assert_same_keys::<ControlPlaneTlsConfig>(&CONTROL_PLANE_TLS);
    }
}
