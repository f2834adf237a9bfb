//! Traefik's custom resources through the real control plane and proxy:
//! weighted IngressRoutes and TraefikServices, mirroring TraefikServices,
//! TLSOptions and ServersTransports in the snapshot,
//! Middlewares across namespaces. Manifests in
//! `fixtures/kubernetes/crd-*.yaml`.

use std::collections::BTreeMap;

use base64::Engine;
use integration_tests::{EchoBackend, FakeKubernetes, TestPki, eventually, grpcurl, request};
use serde_json::Value;

use super::{DEADLINE, Stack};

const WEIGHTED: &str = include_str!("../fixtures/kubernetes/crd-weighted.yaml");
const MIRRORING: &str = include_str!("../fixtures/kubernetes/crd-mirroring.yaml");
const TLS_TRANSPORT: &str = include_str!("../fixtures/kubernetes/crd-tls-transport.yaml");
const CROSS_NAMESPACE: &str = include_str!("../fixtures/kubernetes/crd-cross-namespace.yaml");

/// Requests sent to measure a weighted split.
const SAMPLES: usize = 40;

/// The Pods `heavy` and `light` of `crd-weighted.yaml`.
struct WeightedPods {
    heavy: EchoBackend,
    light: EchoBackend,
}

impl WeightedPods {
    async fn start() -> Self {
        Self {
            heavy: EchoBackend::start("heavy").await,
            light: EchoBackend::start("light").await,
        }
    }

    fn manifest(&self) -> String {
        WEIGHTED
            .replace("PORT_HEAVY", &self.heavy.address.port().to_string())
            .replace("PORT_LIGHT", &self.light.address.port().to_string())
    }

    /// A stack serving `crd-weighted.yaml` with the `kubernetesCRD` provider.
    async fn stack(&self) -> Stack {
        let kubernetes = FakeKubernetes::start().await;
        kubernetes.apply_yaml(&self.manifest());
        Stack::start(kubernetes, &[("kubernetesCRD", "")]).await
    }
}

/// How many of `SAMPLES` requests to `host` each backend answered, once
/// the route is served.
async fn split(stack: &Stack, host: &str) -> BTreeMap<String, usize> {
    stack.wait(host, &[], 200, "").await;
    let mut answered = BTreeMap::new();
    for _ in 0..SAMPLES {
        let (status, backend, body) = stack.get(host, "/", &[]).await.unwrap();
        assert_eq!(status, 200, "{host}: {body}");
        *answered.entry(backend).or_insert(0) += 1;
    }
    answered
}

#[tokio::test(flavor = "multi_thread")]
async fn an_ingress_route_splits_traffic_3_to_1_between_two_services() {
    let pods = WeightedPods::start().await;
    let stack = pods.stack().await;

    let answered = split(&stack, "split.example").await;
    let (heavy, light) = (answered["heavy"], answered["light"]);
    assert_eq!(heavy + light, SAMPLES, "{answered:?}");
    assert!(light > 0, "both Services answer: {answered:?}");
    assert!(
        heavy > light,
        "weight 3 answers more than weight 1: {answered:?}"
    );

    let router = stack
        .control_plane
        .api("/api/http/routers/default-split-0@kubernetescrd")
        .await;
    assert_eq!(router["status"], "enabled", "{router}");
    assert_eq!(router["origin"], "default/split", "{router}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_ingress_route_sends_traffic_to_a_weighted_traefik_service() {
    let pods = WeightedPods::start().await;
    let stack = pods.stack().await;

    // The TraefikService weighs the same Services the other way round.
    let answered = split(&stack, "canary.example").await;
    let (heavy, light) = (answered["heavy"], answered["light"]);
    assert!(heavy > 0, "both Services answer: {answered:?}");
    assert!(
        light > heavy,
        "the TraefikService's weights (1:3) apply: {answered:?}"
    );

    let router = stack
        .control_plane
        .api("/api/http/routers/default-canary-0@kubernetescrd")
        .await;
    assert_eq!(router["config"]["service"], "default-canary", "{router}");
    let service = stack
        .control_plane
        .api("/api/http/services/default-canary@kubernetescrd")
        .await;
    assert_eq!(service["status"], "enabled", "{service}");
    assert_eq!(service["origin"], "default/canary", "{service}");
    let weights: Vec<(&str, u64)> = service["config"]["weighted"]["services"]
        .as_array()
        .unwrap_or_else(|| panic!("a weighted service: {service}"))
        .iter()
        .map(|child| {
            (
                child["name"].as_str().unwrap_or_default(),
                child["weight"].as_u64().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(weights, [("default-heavy-80", 1), ("default-light-80", 3)]);
}

/// A mirroring TraefikService: `heavy` answers every request to
/// mirror.example and `light` gets a copy of each (`percent: 100`), whose
/// answers the client never sees.
#[tokio::test(flavor = "multi_thread")]
async fn a_mirroring_traefik_service_copies_requests_to_its_mirror() {
    let pods = WeightedPods::start().await;
    let stack = pods.stack().await;
    stack.wait("split.example", &[], 200, "").await;

    stack.kubernetes.apply_yaml(MIRRORING);
    let router = eventually("the mirroring router", DEADLINE, || async {
        let router = stack
            .control_plane
            .api("/api/http/routers/default-mirrored-0@kubernetescrd")
            .await;
        if router["status"] == "enabled" {
            Ok(router)
        } else {
            Err(router.to_string())
        }
    })
    .await;
    assert_eq!(router["config"]["service"], "default-mirrored", "{router}");
    let service = stack
        .control_plane
        .api("/api/http/services/default-mirrored@kubernetescrd")
        .await;
    let mirroring = &service["config"]["mirroring"];
    assert_eq!(mirroring["service"], "default-heavy-80", "{service}");
    assert_eq!(mirroring["mirrors"][0]["name"], "default-light-80");
    assert_eq!(mirroring["mirrors"][0]["percent"], 100);

    // The proxy serves it (no NACK): `heavy` answers...
    stack.wait("mirror.example", &[], 200, "heavy").await;
    for _ in 0..SAMPLES {
        let (status, backend, body) = stack.get("mirror.example", "/", &[]).await.unwrap();
        assert_eq!((status, backend.as_str()), (200, "heavy"), "{body}");
    }
    // ... and `light` gets a copy of each request to mirror.example.
    let to_mirror = |backend: &EchoBackend| {
        backend
            .received()
            .iter()
            .filter(|r| r.headers.get("host").map(String::as_str) == Some("mirror.example"))
            .count()
    };
    let answered = to_mirror(&pods.heavy);
    assert!(answered > SAMPLES, "{answered}");
    eventually("a copy of every request at light", DEADLINE, || async {
        match to_mirror(&pods.light) {
            copies if copies == answered => Ok(()),
            copies => Err(format!("{copies} copies of {answered} requests")),
        }
    })
    .await;
    let node = stack.control_plane.node("proxy-1").await.unwrap();
    assert!(node["lastNack"].is_null(), "{node}");
}

/// The first element of `list` whose `name` is `name`.
fn named<'a>(list: &'a Value, name: &str) -> &'a Value {
    list.as_array()
        .and_then(|items| items.iter().find(|item| item["name"] == name))
        .unwrap_or_else(|| panic!("no `{name}` in {list:#}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tls_option_and_a_servers_transport_reach_the_snapshot() {
    let pod = EchoBackend::start("app").await;
    let pki = TestPki::generate();
    let ca = std::fs::read_to_string(pki.ca()).unwrap();
    let kubernetes = FakeKubernetes::start().await;
    kubernetes.apply_yaml(
        &TLS_TRANSPORT
            .replace("BACKEND_PORT", &pod.address.port().to_string())
            .replace(
                "CA_BASE64",
                &base64::engine::general_purpose::STANDARD.encode(&ca),
            ),
    );
    let stack = Stack::start(kubernetes, &[("kubernetesCRD", "")]).await;
    // Served through the ServersTransport: the proxy accepted the snapshot.
    stack.wait("app.example", &[], 200, "app").await;

    let output = grpcurl(
        &[],
        &stack.control_plane.grpc_address,
        &["sluice.v1.SnapshotService/GetSnapshot"],
    );
    assert!(output.status.success(), "grpcurl: {output:?}");
    let snapshot: Value = serde_json::from_slice(&output.stdout).unwrap();
    let resources = &snapshot["resources"];

    let options = named(&resources["tlsOptions"], "default-modern@kubernetescrd");
    assert_eq!(options["minVersion"], "VersionTLS12", "{options:#}");
    assert_eq!(options["maxVersion"], "VersionTLS13");
    assert_eq!(
        options["cipherSuites"],
        serde_json::json!([
            "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
            "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"
        ])
    );
    assert_eq!(options["sniStrict"], true);
    assert_eq!(
        options["alpnProtocols"],
        serde_json::json!(["h2", "http/1.1"])
    );
    assert_eq!(
        options["clientAuth"]["clientAuthType"],
        "RequireAndVerifyClientCert"
    );
    assert_eq!(
        options["clientAuth"]["caPems"],
        serde_json::json!([ca]),
        "the Secret's CA, inlined"
    );

    let transport = named(
        &resources["serversTransports"],
        "default-backend-tls@kubernetescrd",
    );
    assert_eq!(transport["serverName"], "backend.internal", "{transport:#}");
    assert_eq!(transport["rootCaPems"], serde_json::json!([ca]));
    assert_eq!(transport["maxIdleConnsPerHost"], 7);
    assert_eq!(transport["dialTimeoutMs"], "5000");
    assert_eq!(transport["responseHeaderTimeoutMs"], "10000");
    assert_eq!(transport["disableHttp2"], true);
    assert!(transport.get("insecureSkipVerify").is_none(), "false");
    let service = named(&resources["services"], "default-app-80@kubernetescrd");
    assert_eq!(
        service["loadBalancer"]["serversTransport"], "default-backend-tls@kubernetescrd",
        "{service:#}"
    );

    // The admin API shows the TLS options with their origin.
    let raw = stack.control_plane.api("/api/rawdata").await;
    let options = &raw["tlsOptions"]["default-modern@kubernetescrd"];
    assert_eq!(options["status"], "enabled", "{raw:#}");
    assert_eq!(options["provider"], "kubernetescrd");
    assert_eq!(options["origin"], "default/modern");
    assert_eq!(options["config"]["minVersion"], "VersionTLS12");
    let transport = &raw["serversTransports"]["default-backend-tls@kubernetescrd"];
    assert_eq!(transport["status"], "enabled", "{raw:#}");
    assert_eq!(transport["origin"], "default/backend-tls");
    assert_eq!(transport["config"]["serverName"], "backend.internal");
}

/// The Pod of `crd-cross-namespace.yaml` and a stack serving it with
/// `kubernetesCRD` given `settings`.
async fn cross_namespace_stack(pod: &EchoBackend, settings: &str) -> Stack {
    let kubernetes = FakeKubernetes::start().await;
    kubernetes
        .apply_yaml(&CROSS_NAMESPACE.replace("BACKEND_PORT", &pod.address.port().to_string()));
    Stack::start(kubernetes, &[("kubernetesCRD", settings)]).await
}

/// GET `path` on `host`: status, response headers and what the backend saw.
async fn get_echo(stack: &Stack, host: &str, path: &str) -> (u16, BTreeMap<String, String>, Value) {
    let url = format!(
        "http://127.0.0.1:{}{path}",
        stack.control_plane.entry_point_port("web")
    );
    let response = request("GET", &url, &[("host", host)], Vec::new())
        .await
        .unwrap();
    let echoed = serde_json::from_str(&response.body).unwrap_or(Value::Null);
    (response.status, response.headers, echoed)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_middleware_of_another_namespace_is_refused_without_allow_cross_namespace() {
    let pod = EchoBackend::start("web").await;
    let stack = cross_namespace_stack(&pod, "").await;

    // The route with only its own namespace's Middleware is served.
    let (status, _, echoed) = eventually("local.example/api/users", DEADLINE, || async {
        match get_echo(&stack, "local.example", "/api/users").await {
            (200, headers, echoed) => Ok((200, headers, echoed)),
            (status, _, _) => Err(format!("answered {status}")),
        }
    })
    .await;
    assert_eq!(status, 200);
    assert_eq!(echoed["path"], "/users", "stripPrefix applied: {echoed}");

    let errors = eventually("the IngressRoute to be reported", DEADLINE, || async {
        let errors = stack.control_plane.api("/api/errors").await;
        let text = errors.to_string();
        if text.contains("IngressRoute apps/web") {
            Ok(errors)
        } else {
            Err(text)
        }
    })
    .await;
    let error = errors
        .as_array()
        .and_then(|errors| {
            errors
                .iter()
                .find(|error| error["text"].as_str().unwrap_or("").contains("apps/web"))
        })
        .unwrap();
    let text = error["text"].as_str().unwrap();
    assert!(text.contains("spec.routes[0].middlewares[1]"), "{text}");
    assert!(text.contains("Middleware `infra/shared-headers`"), "{text}");
    assert!(text.contains("allowCrossNamespace"), "{text}");
    let (status, _, _) = get_echo(&stack, "web.example", "/api/users").await;
    assert_eq!(status, 404, "the refused route is not served");
}

#[tokio::test(flavor = "multi_thread")]
async fn with_allow_cross_namespace_strip_prefix_and_headers_middlewares_apply() {
    let pod = EchoBackend::start("web").await;
    let stack = cross_namespace_stack(&pod, "allowCrossNamespace: true").await;

    let (headers, echoed) = eventually("web.example/api/users", DEADLINE, || async {
        match get_echo(&stack, "web.example", "/api/users?page=2").await {
            (200, headers, echoed) => Ok((headers, echoed)),
            (status, _, _) => Err(format!("answered {status}")),
        }
    })
    .await;
    assert_eq!(echoed["path"], "/users?page=2", "stripPrefix: {echoed}");
    assert_eq!(
        echoed["headers"]["x-platform"], "infra",
        "headers, request side: {echoed}"
    );
    assert_eq!(
        headers.get("x-served-by").map(String::as_str),
        Some("sluice"),
        "headers, response side: {headers:?}"
    );
    let errors = stack.control_plane.api("/api/errors").await;
    assert!(
        !errors.to_string().contains("apps/web"),
        "nothing reported: {errors}"
    );
}
