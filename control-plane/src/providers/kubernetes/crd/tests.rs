//! Traefik custom resources to the dynamic model, on clusters made from
//! manifests: weighted routes, TraefikServices, TLSOptions,
//! ServersTransports, Middlewares and namespace boundaries.

use std::sync::Arc;

use base64::Engine;
use serde::Deserialize;

use super::*;
use crate::dynamic::{HttpConfig, MirrorConfig, WeightedServiceRef};
use crate::providers::kubernetes::cluster::Cluster;

/// A cluster holding the objects of a multi-document manifest.
fn cluster(manifest: &str) -> Cluster {
    let mut services = Vec::new();
    let mut slices = Vec::new();
    let mut secrets = Vec::new();
    let mut custom = Vec::new();
    for document in serde_yaml::Deserializer::from_str(manifest) {
        let value = serde_json::Value::deserialize(document).unwrap();
        if value.is_null() {
            continue;
        }
        let kind = value["kind"].as_str().unwrap().to_owned();
        match kind.as_str() {
            "Service" => services.push(Arc::new(serde_json::from_value(value).unwrap())),
            "EndpointSlice" => slices.push(Arc::new(serde_json::from_value(value).unwrap())),
            "Secret" => secrets.push(Arc::new(serde_json::from_value(value).unwrap())),
            other => {
                let kind = CrdKind::ALL
                    .into_iter()
                    .find(|candidate| candidate.kind() == other)
                    .unwrap_or_else(|| panic!("unexpected kind {other}"));
                custom.push((kind, Arc::new(serde_json::from_value(value).unwrap())));
            }
        }
    }
    Cluster::new(Vec::new(), Vec::new(), services, slices, secrets, custom)
}

fn http(built: &Built) -> &HttpConfig {
    built.config.http.as_ref().unwrap()
}

fn no_errors(built: &Built) {
    assert!(built.errors.is_empty(), "{:#?}", built.errors);
}

/// The server URLs of load-balancer service `name`.
fn servers(http: &HttpConfig, name: &str) -> Vec<String> {
    http.services[name]
        .load_balancer
        .as_ref()
        .unwrap_or_else(|| panic!("{name} is not a load balancer"))
        .servers
        .iter()
        .map(|server| server.url.clone())
        .collect()
}

/// Services `name` (port 80, named `http`) with one ready Pod at `ip`:8080,
/// in `namespace`.
fn service(namespace: &str, name: &str, ip: &str) -> String {
    format!(
        r#"
---
apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: {namespace}}}
spec:
  ports: [{{name: http, port: 80, targetPort: 8080}}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: {name}-x1y2z
  namespace: {namespace}
  labels: {{kubernetes.io/service-name: {name}}}
addressType: IPv4
ports: [{{name: http, port: 8080}}]
endpoints:
- addresses: [{ip}]
  conditions: {{ready: true}}
"#
    )
}

fn weights(services: &[WeightedServiceRef]) -> Vec<(&str, Option<u32>)> {
    services
        .iter()
        .map(|service| (service.name.as_str(), service.weight))
        .collect()
}

#[test]
fn an_ingress_route_with_two_weighted_services_gets_a_weighted_service() {
    let manifest = format!(
        r#"
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {{name: split, namespace: default}}
spec:
  entryPoints: [web]
  routes:
  - match: Host(`split.example`)
    kind: Rule
    services:
    - {{name: heavy, port: 80, weight: 3}}
    - {{name: light, port: http, weight: 1}}
{}{}"#,
        service("default", "heavy", "10.0.0.1"),
        service("default", "light", "10.0.0.2"),
    );
    let built = build(&cluster(&manifest), &KubernetesCrdConfig::default());
    no_errors(&built);
    let http = http(&built);
    let router = &http.routers["default-split-0"];
    assert_eq!(router.rule, "Host(`split.example`)");
    assert_eq!(router.entry_points, ["web"]);
    assert_eq!(router.service, "default-split-0", "named after the router");
    let weighted = http.services["default-split-0"].weighted.as_ref().unwrap();
    assert_eq!(
        weights(&weighted.services),
        [
            ("default-heavy-80", Some(3)),
            ("default-light-http", Some(1))
        ]
    );
    assert_eq!(servers(http, "default-heavy-80"), ["http://10.0.0.1:8080"]);
    assert_eq!(
        servers(http, "default-light-http"),
        ["http://10.0.0.2:8080"]
    );
    assert_eq!(
        built.origins["http.routers.default-split-0"],
        "default/split"
    );
}

#[test]
fn an_ingress_route_uses_a_weighted_traefik_service_by_kind() {
    let manifest = format!(
        r#"
apiVersion: traefik.io/v1alpha1
kind: TraefikService
metadata: {{name: canary, namespace: default}}
spec:
  weighted:
    services:
    - {{name: stable, port: 80, weight: 1}}
    - {{name: next, port: 80, weight: 3}}
---
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {{name: shop, namespace: default}}
spec:
  routes:
  - match: Host(`shop.example`)
    services:
    - {{name: canary, kind: TraefikService}}
{}{}"#,
        service("default", "stable", "10.0.0.1"),
        service("default", "next", "10.0.0.2"),
    );
    let built = build(&cluster(&manifest), &KubernetesCrdConfig::default());
    no_errors(&built);
    let http = http(&built);
    assert_eq!(http.routers["default-shop-0"].service, "default-canary");
    let weighted = http.services["default-canary"].weighted.as_ref().unwrap();
    assert_eq!(
        weights(&weighted.services),
        [("default-stable-80", Some(1)), ("default-next-80", Some(3))]
    );
    assert_eq!(servers(http, "default-next-80"), ["http://10.0.0.2:8080"]);
    assert_eq!(
        built.origins["http.services.default-canary"],
        "default/canary"
    );
}

#[test]
fn a_mirroring_traefik_service_names_its_main_service_and_mirrors() {
    let manifest = format!(
        r#"
apiVersion: traefik.io/v1alpha1
kind: TraefikService
metadata: {{name: mirrored, namespace: default}}
spec:
  mirroring:
    name: main
    port: 80
    mirrorBody: false
    maxBodySize: 1024
    mirrors:
    - {{name: shadow, port: 80, percent: 20}}
    - {{name: other-wrr@file, kind: TraefikService, percent: 5}}
{}{}"#,
        service("default", "main", "10.0.0.1"),
        service("default", "shadow", "10.0.0.2"),
    );
    let built = build(&cluster(&manifest), &KubernetesCrdConfig::default());
    no_errors(&built);
    let http = http(&built);
    let mirroring = http.services["default-mirrored"]
        .mirroring
        .as_ref()
        .unwrap();
    assert_eq!(mirroring.service, "default-main-80");
    assert_eq!(mirroring.mirror_body, Some(false));
    assert_eq!(mirroring.max_body_size, Some(1024));
    assert_eq!(
        mirroring.mirrors,
        [
            MirrorConfig {
                name: "default-shadow-80".to_owned(),
                percent: 20
            },
            MirrorConfig {
                name: "other-wrr@file".to_owned(),
                percent: 5
            },
        ]
    );
    assert_eq!(servers(http, "default-shadow-80"), ["http://10.0.0.2:8080"]);
}

#[test]
fn a_traefik_service_with_both_or_neither_type_is_reported() {
    let manifest = r#"
apiVersion: traefik.io/v1alpha1
kind: TraefikService
metadata: {name: both, namespace: default}
spec:
  weighted: {services: []}
  mirroring: {name: main, port: 80}
---
apiVersion: traefik.io/v1alpha1
kind: TraefikService
metadata: {name: neither, namespace: default}
spec: {}
"#;
    let built = build(&cluster(manifest), &KubernetesCrdConfig::default());
    assert!(http(&built).services.is_empty());
    let reported: Vec<(&str, Option<&str>, &str)> = built
        .errors
        .iter()
        .map(|e| (e.location.as_str(), e.key.as_deref(), e.message.as_str()))
        .collect();
    assert_eq!(
        reported,
        [
            (
                "TraefikService default/both",
                Some("spec"),
                "set exactly one of `weighted` and `mirroring`"
            ),
            (
                "TraefikService default/neither",
                Some("spec"),
                "set exactly one of `weighted` and `mirroring`"
            ),
        ]
    );
}

const CA_PEM: &str = "-----BEGIN CERTIFICATE-----\nMIIBtest\n-----END CERTIFICATE-----\n";

fn base64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

#[test]
fn a_tls_option_becomes_tls_options_with_its_client_ca_inlined() {
    let manifest = format!(
        r#"
apiVersion: v1
kind: Secret
metadata: {{name: client-ca, namespace: default}}
data: {{ca.crt: {ca}}}
---
apiVersion: traefik.io/v1alpha1
kind: TLSOption
metadata: {{name: modern, namespace: default}}
spec:
  minVersion: VersionTLS12
  maxVersion: VersionTLS13
  cipherSuites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]
  curvePreferences: [CurveP256]
  sniStrict: true
  alpnProtocols: [h2, http/1.1]
  clientAuth:
    secretNames: [client-ca]
    clientAuthType: RequireAndVerifyClientCert
"#,
        ca = base64(CA_PEM)
    );
    let built = build(&cluster(&manifest), &KubernetesCrdConfig::default());
    no_errors(&built);
    let tls = built.config.tls.as_ref().unwrap();
    let options = &tls.options["default-modern"];
    assert_eq!(options.min_version, "VersionTLS12");
    assert_eq!(options.max_version, "VersionTLS13");
    assert_eq!(
        options.cipher_suites,
        ["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"]
    );
    assert_eq!(options.curve_preferences, ["CurveP256"]);
    assert!(options.sni_strict);
    assert_eq!(options.alpn_protocols, ["h2", "http/1.1"]);
    let client_auth = options.client_auth.as_ref().unwrap();
    assert_eq!(client_auth.ca_files, [CA_PEM]);
    assert_eq!(client_auth.client_auth_type, "RequireAndVerifyClientCert");
    assert_eq!(
        built.origins["tls.options.default-modern"],
        "default/modern"
    );
}

#[test]
fn a_tls_option_with_a_missing_secret_or_unknown_field_is_reported_by_key() {
    let manifest = r#"
apiVersion: traefik.io/v1alpha1
kind: TLSOption
metadata: {name: missing, namespace: default}
spec:
  clientAuth: {secretNames: [nowhere]}
---
apiVersion: traefik.io/v1alpha1
kind: TLSOption
metadata: {name: typo, namespace: default}
spec:
  minVersoin: VersionTLS12
"#;
    let built = build(&cluster(manifest), &KubernetesCrdConfig::default());
    assert!(built.config.tls.is_none());
    let missing = &built.errors[0];
    assert_eq!(missing.location, "TLSOption default/missing");
    assert_eq!(missing.key.as_deref(), Some("spec.clientAuth.secretNames"));
    assert_eq!(missing.message, "secret `default/nowhere` not found");
    let typo = &built.errors[1];
    assert_eq!(typo.location, "TLSOption default/typo");
    assert!(typo.message.contains("minVersoin"), "{}", typo.message);
}

#[test]
fn a_servers_transport_resolves_its_secrets_and_is_named_by_routes() {
    let manifest = format!(
        r#"
apiVersion: v1
kind: Secret
metadata: {{name: backend-ca, namespace: default}}
data: {{tls.ca: {ca}}}
---
apiVersion: v1
kind: Secret
metadata: {{name: client-cert, namespace: default}}
type: kubernetes.io/tls
data: {{tls.crt: {cert}, tls.key: {key}}}
---
apiVersion: traefik.io/v1alpha1
kind: ServersTransport
metadata: {{name: backend-tls, namespace: default}}
spec:
  serverName: backend.internal
  insecureSkipVerify: false
  rootCAsSecrets: [backend-ca]
  certificatesSecrets: [client-cert]
  maxIdleConnsPerHost: 7
  disableHTTP2: true
  forwardingTimeouts: {{dialTimeout: 5s, responseHeaderTimeout: 10s}}
---
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {{name: app, namespace: default}}
spec:
  routes:
  - match: Host(`app.example`)
    services:
    - {{name: app, port: 80, serversTransport: backend-tls}}
{}"#,
        service("default", "app", "10.0.0.1"),
        ca = base64(CA_PEM),
        cert = base64("CERT PEM"),
        key = base64("KEY PEM"),
    );
    let built = build(&cluster(&manifest), &KubernetesCrdConfig::default());
    no_errors(&built);
    let http = http(&built);
    let transport = &http.servers_transports["default-backend-tls"];
    assert_eq!(transport.server_name, "backend.internal");
    assert!(!transport.insecure_skip_verify);
    assert_eq!(transport.root_cas, [CA_PEM]);
    assert_eq!(transport.certificates.len(), 1);
    assert_eq!(transport.max_idle_conns_per_host, Some(7));
    assert!(transport.disable_http2);
    let timeouts = transport.forwarding_timeouts.as_ref().unwrap();
    assert_eq!(
        timeouts.dial_timeout.map(|d| d.0),
        Some(std::time::Duration::from_secs(5))
    );
    let service = http.services["default-app-80"].load_balancer.as_ref();
    assert_eq!(
        service.unwrap().servers_transport,
        "default-backend-tls",
        "a model name, qualified by the compiler"
    );
    assert_eq!(
        built.origins["http.serversTransports.default-backend-tls"],
        "default/backend-tls"
    );
}

const CROSS_NAMESPACE: &str = r#"
apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata: {name: shared-headers, namespace: infra}
spec:
  headers:
    customRequestHeaders: {X-Shared: "yes"}
---
apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata: {name: strip-api, namespace: apps}
spec:
  stripPrefix:
    prefixes: [/api]
---
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {name: web, namespace: apps}
spec:
  routes:
  - match: Host(`web.example`)
    middlewares:
    - {name: strip-api}
    - {name: shared-headers, namespace: infra}
    services:
    - {name: web, port: 80}
"#;

#[test]
fn a_middleware_of_another_namespace_is_refused_without_allow_cross_namespace() {
    let manifest = format!("{CROSS_NAMESPACE}{}", service("apps", "web", "10.0.0.1"));
    let built = build(&cluster(&manifest), &KubernetesCrdConfig::default());
    let http = http(&built);
    assert!(http.routers.is_empty(), "{:?}", http.routers);
    assert_eq!(built.errors.len(), 1, "{:#?}", built.errors);
    let error = &built.errors[0];
    assert_eq!(error.location, "IngressRoute apps/web");
    assert_eq!(error.key.as_deref(), Some("spec.routes[0].middlewares[1]"));
    assert!(
        error.message.contains("Middleware `infra/shared-headers`"),
        "{}",
        error.message
    );
    assert!(
        error.message.contains("allowCrossNamespace"),
        "{}",
        error.message
    );
    // The Middlewares themselves are fine.
    assert!(http.middlewares.contains_key("infra-shared-headers"));

    let config = KubernetesCrdConfig {
        allow_cross_namespace: true,
        ..KubernetesCrdConfig::default()
    };
    let allowed = build(&cluster(&manifest), &config);
    no_errors(&allowed);
    assert_eq!(
        self::http(&allowed).routers["apps-web-0"].middlewares,
        ["apps-strip-api", "infra-shared-headers"]
    );
}

#[test]
fn a_service_of_another_namespace_is_refused_without_allow_cross_namespace() {
    let manifest = format!(
        r#"
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {{name: web, namespace: apps}}
spec:
  routes:
  - match: Host(`web.example`)
    services:
    - {{name: db-admin, namespace: data, port: 80}}
{}"#,
        service("data", "db-admin", "10.0.0.1")
    );
    let built = build(&cluster(&manifest), &KubernetesCrdConfig::default());
    assert!(http(&built).routers.is_empty());
    let error = &built.errors[0];
    assert_eq!(error.key.as_deref(), Some("spec.routes[0].services[0]"));
    assert!(
        error.message.contains("Service `data/db-admin`"),
        "{}",
        error.message
    );
}

#[test]
fn strip_prefix_and_headers_middlewares_are_decoded() {
    let built = build(&cluster(CROSS_NAMESPACE), &KubernetesCrdConfig::default());
    let http = http(&built);
    let strip = http.middlewares["apps-strip-api"]
        .strip_prefix
        .as_ref()
        .unwrap();
    assert_eq!(strip.prefixes, ["/api"]);
    let headers = http.middlewares["infra-shared-headers"]
        .headers
        .as_ref()
        .unwrap();
    assert_eq!(headers.custom_request_headers["X-Shared"], "yes");
    assert_eq!(
        built.origins["http.middlewares.apps-strip-api"],
        "apps/strip-api"
    );
}

#[test]
fn a_middleware_with_an_unknown_field_is_reported_and_the_others_build() {
    let manifest = r#"
apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata: {name: broken, namespace: default}
spec:
  stripPrefix:
    prefix: [/api]
---
apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata: {name: good, namespace: default}
spec:
  addPrefix: {prefix: /v1}
"#;
    let built = build(&cluster(manifest), &KubernetesCrdConfig::default());
    let http = http(&built);
    assert_eq!(
        http.middlewares.keys().collect::<Vec<_>>(),
        ["default-good"]
    );
    let error = &built.errors[0];
    assert_eq!(error.location, "Middleware default/broken");
    assert_eq!(error.key.as_deref(), Some("spec.stripPrefix.prefix"));
    assert!(error.message.contains("unknown field"), "{}", error.message);
}

#[test]
fn a_pod_change_behind_an_ingress_route_changes_that_service_only() {
    let mut manifest = String::new();
    for index in 0..10 {
        manifest.push_str(&format!(
            r#"
---
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {{name: app{index}, namespace: default}}
spec:
  routes:
  - match: Host(`app{index}.example`)
    services: [{{name: app{index}, port: 80}}]
{}"#,
            service(
                "default",
                &format!("app{index}"),
                &format!("10.0.0.{index}")
            )
        ));
    }
    let config = KubernetesCrdConfig::default();
    let before = build(&cluster(&manifest), &config);
    let churned = manifest.replace("[10.0.0.4]", "[10.0.9.4]");
    let after = build(&cluster(&churned), &config);
    let (before, after) = (http(&before), http(&after));
    assert_eq!(before.routers, after.routers);
    let changed: Vec<&String> = before
        .services
        .keys()
        .filter(|name| before.services[*name] != after.services[*name])
        .collect();
    assert_eq!(changed, ["default-app4-80"]);
    assert_eq!(servers(after, "default-app4-80"), ["http://10.0.9.4:8080"]);
}
