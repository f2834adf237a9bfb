//! Applications in bulk, shaped as a real cluster holds them: for
//! application `i`, an Ingress and a Service as `kubectl apply` leaves them
//! (labels, the `last-applied-configuration` annotation, `managedFields`),
//! and the EndpointSlice the EndpointSlice controller keeps for the Service
//! (three ready Pods with their node, zone and `targetRef`).
//!
//! Application `i` lives in namespace `team-<i % 50>` and is named
//! `app-<i>` (five digits): Ingress, Service and Pods alike. Its host is
//! `app-<i>.team-<nn>.example.com`; its Service port `http` (80) targets
//! 8080 on the Pods.

use serde_json::{Value, json};

/// Namespaces the applications are spread over.
const NAMESPACES: usize = 50;

/// Pods behind each Service.
const PODS: usize = 3;

/// Namespace and name of application `index`.
pub fn application_name(index: usize) -> (String, String) {
    (
        format!("team-{:02}", index % NAMESPACES),
        format!("app-{index:05}"),
    )
}

/// The Ingress, the Service and the EndpointSlice of application `index`.
pub(super) fn application(index: usize) -> [Value; 3] {
    [ingress(index), service(index), endpoint_slice(index, 0)]
}

/// Application `index`'s EndpointSlice after `generation` Pod churns: each
/// churn replaces the first Pod by a new one with a new address, as a
/// rollout or an evicted Pod does.
pub(super) fn endpoint_slice(index: usize, generation: usize) -> Value {
    let (namespace, name) = application_name(index);
    let endpoints: Vec<Value> = (0..PODS)
        .map(|pod| {
            let (ip, pod_name) = if pod == 0 && generation > 0 {
                (
                    address(CHURNED + index * 16 + generation % 16),
                    format!("{name}-7c9d8f6b5-g{generation}"),
                )
            } else {
                (
                    address(index * PODS + pod),
                    format!("{name}-7c9d8f6b5-{}", pod_suffix(index * PODS + pod)),
                )
            };
            json!({
                "addresses": [ip],
                "conditions": {"ready": true, "serving": true, "terminating": false},
                "nodeName": format!("node-{:03}", (index + pod) % 120),
                "zone": format!("eu-west-1{}", ["a", "b", "c"][pod % 3]),
                "targetRef": {
                    "kind": "Pod",
                    "namespace": namespace,
                    "name": pod_name,
                    "uid": format!("{:08x}-0000-4000-8000-{:012x}", index, pod),
                },
            })
        })
        .collect();
    json!({
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": format!("{name}-{}", pod_suffix(index)),
            "namespace": namespace,
            "generateName": format!("{name}-"),
            "labels": {
                "kubernetes.io/service-name": name,
                "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
                "app.kubernetes.io/name": name,
                "app.kubernetes.io/part-of": namespace,
            },
            "annotations": {
                "endpoints.kubernetes.io/last-change-trigger-time": "2024-05-02T10:14:07Z",
            },
            "ownerReferences": [{
                "apiVersion": "v1",
                "kind": "Service",
                "name": name,
                "uid": format!("{:08x}-0000-4000-8000-000000000000", index),
                "controller": true,
                "blockOwnerDeletion": true,
            }],
            "managedFields": [managed_fields("endpointslice-controller", "Update")],
        },
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
        "endpoints": endpoints,
    })
}

/// Pod addresses from `CHURNED` on are new Pods.
const CHURNED: usize = 1 << 21;

/// `10.a.b.c` for `n` below 2^24.
fn address(n: usize) -> String {
    format!("10.{}.{}.{}", (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff)
}

/// Five lowercase characters, as Kubernetes generates for names.
fn pod_suffix(n: usize) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut n = n.wrapping_mul(2_654_435_761) % 14_348_907;
    (0..5)
        .map(|_| {
            let character = ALPHABET[n % ALPHABET.len()] as char;
            n /= ALPHABET.len();
            character
        })
        .collect()
}

fn managed_fields(manager: &str, operation: &str) -> Value {
    json!({
        "manager": manager,
        "operation": operation,
        "apiVersion": "v1",
        "time": "2024-05-02T10:14:07Z",
        "fieldsType": "FieldsV1",
        "fieldsV1": {
            "f:metadata": {
                "f:annotations": {".": {}, "f:kubectl.kubernetes.io/last-applied-configuration": {}},
                "f:labels": {".": {}, "f:app.kubernetes.io/name": {}, "f:app.kubernetes.io/part-of": {}},
            },
            "f:spec": {".": {}},
        },
    })
}

/// `metadata` as `kubectl apply` leaves it: the object's own labels and
/// the applied manifest in an annotation.
fn applied_metadata(index: usize, spec: &Value, kind: &str, api_version: &str) -> Value {
    let (namespace, name) = application_name(index);
    let labels = json!({"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": namespace});
    let applied = json!({
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": spec,
    });
    json!({
        "name": name,
        "namespace": namespace,
        "labels": labels,
        "annotations": {"kubectl.kubernetes.io/last-applied-configuration": format!("{applied}\n")},
        "managedFields": [managed_fields("kubectl-client-side-apply", "Update")],
    })
}

fn ingress(index: usize) -> Value {
    let (namespace, name) = application_name(index);
    let spec = json!({
        "ingressClassName": "sluice",
        "rules": [{
            "host": format!("{name}.{namespace}.example.com"),
            "http": {"paths": [{
                "path": "/",
                "pathType": "Prefix",
                "backend": {"service": {"name": name, "port": {"name": "http"}}},
            }]},
        }],
    });
    json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": applied_metadata(index, &spec, "Ingress", "networking.k8s.io/v1"),
        "spec": spec,
    })
}

fn service(index: usize) -> Value {
    let (_, name) = application_name(index);
    let spec = json!({
        "selector": {"app.kubernetes.io/name": name},
        "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}],
    });
    let mut full = spec.clone();
    full["type"] = json!("ClusterIP");
    full["clusterIP"] = json!(format!("10.96.{}.{}", (index >> 8) & 0xff, index & 0xff));
    full["clusterIPs"] = json!([full["clusterIP"].clone()]);
    full["sessionAffinity"] = json!("None");
    full["ipFamilies"] = json!(["IPv4"]);
    full["ipFamilyPolicy"] = json!("SingleStack");
    full["internalTrafficPolicy"] = json!("Cluster");
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": applied_metadata(index, &spec, "Service", "v1"),
        "spec": full,
        "status": {"loadBalancer": {}},
    })
}

/// The IngressClass the generated Ingresses name.
pub(super) fn ingress_class() -> Value {
    json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "IngressClass",
        "metadata": {"name": "sluice"},
        "spec": {"controller": "sluice.dev/ingress-controller"},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_addresses_are_distinct() {
        assert_eq!(
            application_name(42),
            ("team-42".to_owned(), "app-00042".to_owned())
        );
        assert_eq!(address(3 * 4999 + 2), "10.0.58.151");
        let before = endpoint_slice(7, 0);
        let after = endpoint_slice(7, 1);
        assert_eq!(before["metadata"]["name"], after["metadata"]["name"]);
        assert_ne!(before["endpoints"][0], after["endpoints"][0]);
        assert_eq!(before["endpoints"][1], after["endpoints"][1]);
        assert_ne!(pod_suffix(1), pod_suffix(2));
    }
}
