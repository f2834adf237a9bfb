//! The Kubernetes providers against the harness's fake API server, fed with
//! manifests from `fixtures/kubernetes/`: Echo backends stand in for Pods
//! (EndpointSlice addresses `127.0.0.1` with the backend's port).

use std::time::Duration;

use base64::Engine;
use integration_tests::{
    ControlPlane, ControlPlaneOptions, EchoBackend, FakeKubernetes, Proxy, eventually, request,
    run_command,
};

mod churn;
mod crd;

/// How long a change may take to reach the proxy, with ample margin.
const DEADLINE: Duration = Duration::from_secs(30);

const TRAEFIK1: &str = include_str!("fixtures/kubernetes/traefik1-ingress.yaml");
const SHOP: &str = include_str!("fixtures/kubernetes/shop.yaml");
const BASIC_AUTH: &str = include_str!("fixtures/kubernetes/basic-auth.yaml");

/// A fake API server, a control plane watching it and a proxy.
struct Stack {
    kubernetes: FakeKubernetes,
    control_plane: ControlPlane,
    _proxy: Proxy,
}

impl Stack {
    /// Starts with `providers` among `kubernetesIngress` / `kubernetesCRD`,
    /// each given `extra` settings besides the endpoint.
    async fn start(kubernetes: FakeKubernetes, providers: &[(&str, &str)]) -> Self {
        let mut options = ControlPlaneOptions::new().entry_point("web");
        for (provider, extra) in providers {
            let settings = format!("endpoint: \"{}\"\n{extra}", kubernetes.url());
            options = options.provider(provider, &settings);
        }
        let control_plane = options.start().await;
        let proxy = Proxy::start(&control_plane.grpc_url(), "proxy-1", &[]);
        proxy.wait_ready().await;
        Self {
            kubernetes,
            control_plane,
            _proxy: proxy,
        }
    }

    async fn get(
        &self,
        host: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Result<(u16, String, String), String> {
        let url = format!(
            "http://127.0.0.1:{}{path}",
            self.control_plane.entry_point_port("web")
        );
        let mut all = vec![("host", host)];
        all.extend_from_slice(headers);
        let response = request("GET", &url, &all, Vec::new()).await?;
        let backend = response
            .headers
            .get("x-backend")
            .cloned()
            .unwrap_or_default();
        Ok((response.status, backend, response.body))
    }

    /// Waits until `host` answers `status` (from `backend`, when not empty).
    async fn wait(&self, host: &str, headers: &[(&str, &str)], status: u16, backend: &str) {
        eventually(
            &format!("{host} to answer {status} {backend}"),
            DEADLINE,
            || async {
                let (got, answered, _) = self.get(host, "/", headers).await?;
                if got == status && (backend.is_empty() || answered == backend) {
                    Ok(())
                } else {
                    Err(format!("answered {got} from `{answered}`"))
                }
            },
        )
        .await;
    }

    /// Waits until the backends answering `host` over a few requests are
    /// exactly `expected`.
    async fn wait_rotation(&self, host: &str, expected: &[&str]) {
        eventually(
            &format!("{host} served by {expected:?}"),
            DEADLINE,
            || async {
                let mut seen = std::collections::BTreeSet::new();
                for _ in 0..8 {
                    let (status, backend, _) = self.get(host, "/", &[]).await?;
                    if status != 200 {
                        return Err(format!("answered {status}"));
                    }
                    seen.insert(backend);
                }
                let expected: std::collections::BTreeSet<String> =
                    expected.iter().map(|b| (*b).to_owned()).collect();
                if seen == expected {
                    Ok(())
                } else {
                    Err(format!("served by {seen:?}"))
                }
            },
        )
        .await;
    }
}

fn shop(first: &EchoBackend, second: &EchoBackend, second_ready: bool) -> String {
    SHOP.replace("PORT_A", &first.address.port().to_string())
        .replace("PORT_B", &second.address.port().to_string())
        .replace("READY_B", &second_ready.to_string())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_traefik_1_ingress_rewrites_to_a_ready_pod_and_gets_its_status() {
    let pod = EchoBackend::start("pod").await;
    let kubernetes = FakeKubernetes::start().await;
    kubernetes.apply_yaml(&TRAEFIK1.replace("BACKEND_PORT", &pod.address.port().to_string()));
    let stack = Stack::start(
        kubernetes,
        &[(
            "kubernetesIngress",
            "ingressEndpoint:\n  ip: \"192.0.2.10\"",
        )],
    )
    .await;

    let (status, backend, body) = eventually("the Traefik 1.x Ingress", DEADLINE, || async {
        match stack.get("www.xxxx.com", "/api3/users", &[]).await? {
            (200, backend, body) => Ok((200, backend, body)),
            (status, _, body) => Err(format!("answered {status}: {body}")),
        }
    })
    .await;
    assert_eq!((status, backend.as_str()), (200, "pod"));
    let echoed: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(echoed["path"], "/api/users", "{echoed}");
    let (status, _, _) = stack.get("www.xxxx.com", "/other", &[]).await.unwrap();
    assert_eq!(status, 404);

    // The published address is written to the Ingress status.
    eventually("the Ingress status", DEADLINE, || async {
        let ingress = stack
            .kubernetes
            .get(
                "Ingress",
                "public-fe-node-qa",
                "public-fe-zhan-operation-node-qa-7091-2-ingress",
            )
            .ok_or("no Ingress")?;
        let ip = &ingress["status"]["loadBalancer"]["ingress"][0]["ip"];
        if ip == "192.0.2.10" {
            Ok(())
        } else {
            Err(format!("status: {}", ingress["status"]))
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn basic_auth_comes_from_an_htpasswd_secret_and_follows_its_rotation() {
    let pod = EchoBackend::start("grafana").await;
    let dir = tempfile::tempdir().unwrap();
    let auth = dir.path().join("auth");
    let htpasswd = |password: &str| {
        let path = auth.display().to_string();
        let output = run_command("htpasswd", &["-c", "-b", &path, "myusername", password]);
        assert!(output.status.success(), "htpasswd: {output:?}");
        base64::engine::general_purpose::STANDARD.encode(std::fs::read(&auth).unwrap())
    };
    let manifest = |password: &str| {
        BASIC_AUTH
            .replace("BACKEND_PORT", &pod.address.port().to_string())
            .replace("AUTH_BASE64", &htpasswd(password))
    };
    let kubernetes = FakeKubernetes::start().await;
    kubernetes.apply_yaml(&manifest("first-password"));
    let stack = Stack::start(
        kubernetes,
        &[("kubernetesIngress", ""), ("kubernetesCRD", "")],
    )
    .await;

    let basic = |password: &str| {
        let token =
            base64::engine::general_purpose::STANDARD.encode(format!("myusername:{password}"));
        format!("Basic {token}")
    };
    let first = basic("first-password");
    let second = basic("second-password");
    for host in ["grafana.example", "prometheus.example"] {
        stack
            .wait(host, &[("authorization", &first)], 200, "grafana")
            .await;
        let (status, _, _) = stack.get(host, "/", &[]).await.unwrap();
        assert_eq!(status, 401, "{host} without credentials");
        let (status, _, _) = stack
            .get(host, "/", &[("authorization", &second)])
            .await
            .unwrap();
        assert_eq!(status, 401, "{host} with a wrong password");
    }

    // The Secret rotated, nothing else changed: the new password works,
    // the old one no longer does.
    stack.kubernetes.apply_yaml(&manifest("second-password"));
    for host in ["grafana.example", "prometheus.example"] {
        stack
            .wait(host, &[("authorization", &second)], 200, "grafana")
            .await;
        stack
            .wait(host, &[("authorization", &first)], 401, "")
            .await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn pods_coming_and_going_change_the_rotation() {
    let first = EchoBackend::start("shop-a").await;
    let second = EchoBackend::start("shop-b").await;
    let kubernetes = FakeKubernetes::start().await;
    kubernetes.apply_yaml(&shop(&first, &second, true));
    let stack = Stack::start(kubernetes, &[("kubernetesIngress", "")]).await;
    stack
        .wait_rotation("shop.example", &["shop-a", "shop-b"])
        .await;

    // Pod b stops being ready: only a is served.
    stack.kubernetes.apply_yaml(&shop(&first, &second, false));
    stack.wait_rotation("shop.example", &["shop-a"]).await;

    // Pod b is ready again; then its slice goes away with the Pod.
    stack.kubernetes.apply_yaml(&shop(&first, &second, true));
    stack
        .wait_rotation("shop.example", &["shop-a", "shop-b"])
        .await;
    stack
        .kubernetes
        .delete("EndpointSlice", "default", "shop-def34");
    stack.wait_rotation("shop.example", &["shop-a"]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sticky_cookie_annotations_on_the_service_keep_a_client_on_one_pod() {
    let first = EchoBackend::start("shop-a").await;
    let second = EchoBackend::start("shop-b").await;
    let kubernetes = FakeKubernetes::start().await;
    // Where Traefik reads them: on the Service.
    let sticky = shop(&first, &second, true).replace(
        "kind: Service\nmetadata:\n  name: shop\n  namespace: default\n",
        "kind: Service\nmetadata:\n  name: shop\n  namespace: default\n  annotations:\n    \
         traefik.ingress.kubernetes.io/service.sticky.cookie: \"true\"\n    \
         traefik.ingress.kubernetes.io/service.sticky.cookie.name: shop_affinity\n    \
         traefik.ingress.kubernetes.io/service.sticky.cookie.httponly: \"true\"\n",
    );
    assert_ne!(sticky, shop(&first, &second, true), "the fixture changed");
    kubernetes.apply_yaml(&sticky);
    let stack = Stack::start(kubernetes, &[("kubernetesIngress", "")]).await;
    stack.wait("shop.example", &[], 200, "").await;

    let url = format!(
        "http://127.0.0.1:{}/",
        stack.control_plane.entry_point_port("web")
    );
    let first_answer = request("GET", &url, &[("host", "shop.example")], Vec::new())
        .await
        .unwrap();
    let set_cookie = first_answer
        .headers
        .get("set-cookie")
        .cloned()
        .unwrap_or_else(|| panic!("no Set-Cookie: {:?}", first_answer.headers));
    assert!(set_cookie.starts_with("shop_affinity="), "{set_cookie}");
    assert!(set_cookie.contains("HttpOnly"), "{set_cookie}");
    assert!(!set_cookie.contains("127.0.0.1"), "{set_cookie}");
    let pod = first_answer.headers["x-backend"].clone();
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    for _ in 0..10 {
        let answer = request(
            "GET",
            &url,
            &[("host", "shop.example"), ("cookie", &cookie)],
            Vec::new(),
        )
        .await
        .unwrap();
        assert_eq!(answer.headers["x-backend"], pod);
        assert!(!answer.headers.contains_key("set-cookie"), "{answer:?}");
    }
    // Without the cookie the rotation goes on over both pods.
    stack
        .wait_rotation("shop.example", &["shop-a", "shop-b"])
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broken_ingress_is_reported_while_the_others_serve_and_a_deleted_one_is_gone() {
    let first = EchoBackend::start("shop-a").await;
    let second = EchoBackend::start("shop-b").await;
    let kubernetes = FakeKubernetes::start().await;
    kubernetes.apply_yaml(&shop(&first, &second, true));
    let broken = SHOP
        .split("---")
        .find(|document| document.contains("kind: Ingress\n"))
        .unwrap()
        .replace("name: shop\n  namespace", "name: broken\n  namespace")
        .replace("host: shop.example", "host: broken.example")
        .replace(
            "namespace: default\nspec:",
            "namespace: default\n  annotations:\n    traefik.ingress.kubernetes.io/router.priority: high\nspec:",
        );
    kubernetes.apply_yaml(&broken);
    let stack = Stack::start(kubernetes, &[("kubernetesIngress", "")]).await;
    stack.wait("shop.example", &[], 200, "").await;
    let errors = eventually("the broken Ingress to be reported", DEADLINE, || async {
        let errors = stack.control_plane.api("/api/errors").await.to_string();
        if errors.contains("Ingress default/broken") {
            Ok(errors)
        } else {
            Err(format!("/api/errors: {errors}"))
        }
    })
    .await;
    assert!(
        errors.contains("traefik.ingress.kubernetes.io/router.priority"),
        "{errors}"
    );
    assert!(errors.contains("`high` is not an integer"), "{errors}");
    let (status, _, _) = stack.get("broken.example", "/", &[]).await.unwrap();
    assert_eq!(status, 404);

    // Deleting the good Ingress removes exactly its routes.
    stack.kubernetes.delete("Ingress", "default", "shop");
    stack.wait("shop.example", &[], 404, "").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_provider_resyncs_after_an_api_server_restart_without_dropping_routes() {
    let first = EchoBackend::start("shop-a").await;
    let second = EchoBackend::start("shop-b").await;
    let kubernetes = FakeKubernetes::start().await;
    kubernetes.apply_yaml(&shop(&first, &second, false));
    let mut stack = Stack::start(kubernetes, &[("kubernetesIngress", "")]).await;
    stack.wait_rotation("shop.example", &["shop-a"]).await;
    let lists = stack.kubernetes.list_count("Ingress");

    // While the API server restarts with its watch history gone, requests
    // keep succeeding.
    let url = format!(
        "http://127.0.0.1:{}/",
        stack.control_plane.entry_point_port("web")
    );
    let traffic = tokio::spawn(async move {
        let mut failures = Vec::new();
        for _ in 0..200 {
            match request("GET", &url, &[("host", "shop.example")], Vec::new()).await {
                Ok(response) if response.status == 200 => {}
                Ok(response) => failures.push(response.status.to_string()),
                Err(error) => failures.push(error),
            }
        }
        failures
    });
    stack.kubernetes.restart().await;
    // A change made after the restart reaches the proxy: the watches
    // resumed (the old resourceVersion got 410 Gone, so they relisted).
    stack.kubernetes.apply_yaml(&shop(&first, &second, true));
    stack
        .wait_rotation("shop.example", &["shop-a", "shop-b"])
        .await;
    eventually("the Ingress watch to relist", DEADLINE, || async {
        let now = stack.kubernetes.list_count("Ingress");
        if now > lists {
            Ok(())
        } else {
            Err(format!("{now} Ingress lists"))
        }
    })
    .await;
    let failures = traffic.await.unwrap();
    assert!(
        failures.is_empty(),
        "requests failed during the restart: {failures:?}"
    );
}
