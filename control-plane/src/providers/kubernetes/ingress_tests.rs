//! Ingress building, on clusters made from manifests.

use std::sync::Arc;

use serde::Deserialize;

use super::*;
use crate::dynamic::HttpConfig;
use crate::providers::kubernetes::Built;
use crate::providers::kubernetes::cluster::Cluster;

/// A cluster holding the objects of a multi-document manifest.
fn cluster(manifest: &str) -> Cluster {
    let mut ingresses = Vec::new();
    let mut classes = Vec::new();
    let mut services = Vec::new();
    let mut slices = Vec::new();
    let mut secrets = Vec::new();
    for document in serde_yaml::Deserializer::from_str(manifest) {
        let value = serde_json::Value::deserialize(document).unwrap();
        match value["kind"].as_str().unwrap() {
            "Ingress" => ingresses.push(Arc::new(serde_json::from_value(value).unwrap())),
            "IngressClass" => classes.push(Arc::new(serde_json::from_value(value).unwrap())),
            "Service" => services.push(Arc::new(serde_json::from_value(value).unwrap())),
            "EndpointSlice" => slices.push(Arc::new(serde_json::from_value(value).unwrap())),
            "Secret" => secrets.push(Arc::new(serde_json::from_value(value).unwrap())),
            other => panic!("unexpected kind {other}"),
        }
    }
    Cluster::new(ingresses, classes, services, slices, secrets, Vec::new())
}

fn http(built: &Built) -> &HttpConfig {
    built.config.http.as_ref().unwrap()
}

const TRAEFIK1: &str = r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  annotations:
    kubernetes.io/ingress.class: traefik
    traefik.ingress.kubernetes.io/request-modifier: 'ReplacePathRegex: ^/api3/(.*) /api/$1'
  name: public-fe-zhan-operation-node-qa-7091-2-ingress
  namespace: public-fe-node-qa
spec:
  rules:
  - host: www.xxxx.com
    http:
      paths:
      - backend: {service: {name: public-fe-zhan-operation-node-qa, port: {number: 7091}}}
        path: /api3
        pathType: ImplementationSpecific
---
apiVersion: v1
kind: Service
metadata: {name: public-fe-zhan-operation-node-qa, namespace: public-fe-node-qa}
spec:
  ports: [{port: 7091, targetPort: 8080}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: public-fe-zhan-operation-node-qa-1
  namespace: public-fe-node-qa
  labels: {kubernetes.io/service-name: public-fe-zhan-operation-node-qa}
addressType: IPv4
ports: [{name: "", port: 8080}]
endpoints:
- addresses: [10.1.0.7]
  conditions: {ready: true}
- addresses: [10.1.0.8]
  conditions: {ready: false}
"#;

#[test]
fn the_traefik_1_ingress_becomes_a_router_a_rewrite_and_pod_servers() {
    let built = build(&cluster(TRAEFIK1), &KubernetesIngressConfig::default());
    assert!(built.errors.is_empty(), "{:?}", built.errors);
    let http = http(&built);
    let name =
        "public-fe-node-qa-public-fe-zhan-operation-node-qa-7091-2-ingress-www-xxxx-com-api3";
    let router = &http.routers[name];
    assert_eq!(router.rule, "Host(`www.xxxx.com`) && PathPrefix(`/api3`)");
    assert_eq!(
        router.service,
        "public-fe-node-qa-public-fe-zhan-operation-node-qa-7091"
    );
    assert_eq!(router.middlewares, [format!("{name}-request-modifier")]);
    let rewrite = http.middlewares[&router.middlewares[0]]
        .replace_path_regex
        .clone()
        .unwrap();
    assert_eq!(
        (rewrite.regex.as_str(), rewrite.replacement.as_str()),
        ("^/api3/(.*)", "/api/$1")
    );
    let servers: Vec<&str> = http.services[&router.service]
        .load_balancer
        .as_ref()
        .unwrap()
        .servers
        .iter()
        .map(|server| server.url.as_str())
        .collect();
    assert_eq!(
        servers,
        ["http://10.1.0.7:8080"],
        "ready Pods at the target port only"
    );
    assert_eq!(
        built.origins[&format!("http.routers.{name}")],
        "public-fe-node-qa/public-fe-zhan-operation-node-qa-7091-2-ingress"
    );
}

#[test]
fn classes_path_types_and_default_backends() {
    let manifest = r#"
apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata: {name: edge}
spec: {controller: traefik.io/ingress-controller}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web, namespace: default}
spec:
  ingressClassName: edge
  defaultBackend: {service: {name: web, port: {name: http}}}
  rules:
  - host: "*.example.com"
    http:
      paths:
      - {path: /exact, pathType: Exact, backend: {service: {name: web, port: {name: http}}}}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: other, namespace: default, annotations: {kubernetes.io/ingress.class: nginx}}
spec:
  rules:
  - host: other.example
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  ports: [{name: http, port: 80}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-1, namespace: default, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
ports: [{name: http, port: 8080}]
endpoints: [{addresses: [10.1.0.9]}]
"#;
    let built = build(&cluster(manifest), &KubernetesIngressConfig::default());
    let http = http(&built);
    let rules: Vec<(&str, &str, i64)> = http
        .routers
        .iter()
        .map(|(name, router)| (name.as_str(), router.rule.as_str(), router.priority))
        .collect();
    assert_eq!(
        rules,
        [
            ("default-web-default-backend", "PathPrefix(`/`)", 1),
            (
                "default-web-example-com-exact",
                "HostRegexp(`^[a-zA-Z0-9-]+\\.example\\.com$`) && Path(`/exact`)",
                0
            ),
        ],
        "the nginx-class Ingress is not served"
    );
}

#[test]
fn a_broken_ingress_is_reported_and_the_others_still_build() {
    let broken = TRAEFIK1
        .replace(
            "name: public-fe-zhan-operation-node-qa-7091-2-ingress",
            "name: broken",
        )
        .replace(
            "ReplacePathRegex: ^/api3/(.*) /api/$1",
            "ReplacePathRegex: ^/api3/(.* /api/$1",
        );
    let manifest = format!("{TRAEFIK1}\n---\n{}", broken.split("---").next().unwrap());
    let built = build(&cluster(&manifest), &KubernetesIngressConfig::default());
    assert_eq!(http(&built).routers.len(), 1);
    assert_eq!(built.errors.len(), 1, "{:?}", built.errors);
    let error = &built.errors[0];
    assert_eq!(error.location, "Ingress public-fe-node-qa/broken");
    assert_eq!(
        error.key.as_deref(),
        Some("traefik.ingress.kubernetes.io/request-modifier")
    );
}

#[test]
fn a_pod_change_in_one_service_changes_that_service_only() {
    let mut manifest = String::new();
    for index in 0..20 {
        manifest.push_str(&format!(
            r#"
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {{name: app{index}, namespace: default}}
spec:
  rules:
  - host: app{index}.example
    http:
      paths: [{{path: /, pathType: Prefix, backend: {{service: {{name: app{index}, port: {{number: 80}}}}}}}}]
---
apiVersion: v1
kind: Service
metadata: {{name: app{index}, namespace: default}}
spec: {{ports: [{{port: 80}}]}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {{name: app{index}-1, namespace: default, labels: {{kubernetes.io/service-name: app{index}}}}}
addressType: IPv4
ports: [{{port: 8080}}]
endpoints: [{{addresses: [10.0.0.{index}]}}, {{addresses: [10.0.1.{index}], conditions: {{ready: POD_READY}}}}]
"#
        ));
    }
    let config = KubernetesIngressConfig::default();
    let before = build(&cluster(&manifest.replace("POD_READY", "true")), &config);
    let churned = manifest.replace("POD_READY", "true").replacen(
        "addresses: [10.0.1.7], conditions: {ready: true}",
        "addresses: [10.0.1.7], conditions: {ready: false}",
        1,
    );
    let after = build(&cluster(&churned), &config);
    let (before, after) = (http(&before), http(&after));
    assert_eq!(before.routers, after.routers);
    assert_eq!(before.middlewares, after.middlewares);
    let changed: Vec<&String> = before
        .services
        .keys()
        .filter(|name| before.services[*name] != after.services[*name])
        .collect();
    assert_eq!(changed, ["default-app7-80"]);
}
