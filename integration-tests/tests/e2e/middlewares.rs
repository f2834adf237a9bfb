//! Middleware scenarios through the real binaries: Traefik-format YAML in
//! the control plane's file provider, requests through `sluice-proxy` to
//! echo backends.
//!
//! - The issue's two verbatim cases: `replacePathRegex` (`^/api3/(.*)` ->
//!   `/api/$1`) and `basicAuth` from a file made by the real `htpasswd -c`.
//! - CORS preflight answered by `headers`.
//! - `retry` hiding a server that refuses connections, `circuitBreaker`
//!   opening on errors and closing again, `compress` negotiation,
//!   `rateLimit` refusing with 429 then letting through.
//! - A router whose middleware is broken is not served, the others are.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use integration_tests::{
    ControlPlane, ControlPlaneOptions, EchoBackend, HttpResponse, Proxy, eventually, free_port,
    printed, request,
};

/// How long a snapshot may take to reach the proxy, with margin.
const DEADLINE: Duration = Duration::from_secs(30);

/// A control plane with entry point `web` and routes from `yaml`, and a
/// proxy serving its snapshot.
struct Stack {
    control_plane: ControlPlane,
    _proxy: Proxy,
}

impl Stack {
    async fn start(yaml: &str) -> Self {
        let control_plane = ControlPlaneOptions::new()
            .entry_point("web")
            .dynamic_file("routes.yml", yaml)
            .start()
            .await;
        let proxy = Proxy::start(&control_plane.grpc_url(), "proxy-1", &[]);
        proxy.wait_ready().await;
        proxy
            .wait_serving(&control_plane.current_version().await)
            .await;
        Self {
            control_plane,
            _proxy: proxy,
        }
    }

    fn url(&self, path: &str) -> String {
        format!(
            "http://127.0.0.1:{}{path}",
            self.control_plane.entry_point_port("web")
        )
    }

    async fn send(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> HttpResponse {
        request(method, &self.url(path), headers, Vec::new())
            .await
            .unwrap_or_else(|error| panic!("{method} {path}: {error}"))
    }

    /// A response whose body is kept as bytes (compressed bodies are not
    /// text).
    async fn send_raw(
        &self,
        path: &str,
        headers: &[(&str, &str)],
    ) -> (BTreeMap<String, String>, Bytes) {
        let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
        let mut builder = hyper::Request::get(self.url(path));
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let response = client
            .request(builder.body(Full::default()).unwrap())
            .await
            .unwrap();
        let headers = response
            .headers()
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_str().unwrap_or("?").to_owned()))
            .collect();
        (
            headers,
            response.into_body().collect().await.unwrap().to_bytes(),
        )
    }
}

/// `htpasswd -c -b ./auth myusername <password>`, run for real in `dir`.
fn htpasswd(dir: &Path, password: &str) -> String {
    let output = std::process::Command::new("htpasswd")
        .current_dir(dir)
        .args(["-c", "-b", "./auth", "myusername", password])
        .output()
        .expect("running htpasswd (apache2-utils)");
    assert!(output.status.success(), "htpasswd: {output:?}");
    let path = dir.join("auth");
    let line = std::fs::read_to_string(&path).unwrap();
    assert!(line.starts_with("myusername:$"), "{line}");
    path.display().to_string()
}

fn basic(credentials: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(credentials)
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn the_two_cases_from_the_issue_work_verbatim() {
    let echo = EchoBackend::start("echo").await;
    let dir = tempfile::tempdir().unwrap();
    let users_file = htpasswd(dir.path(), "s3cret");
    let yaml = format!(
        r#"http:
  routers:
    api:
      rule: "PathPrefix(`/api3`)"
      service: echo
      middlewares: [rewrite]
    secure:
      rule: "PathPrefix(`/secure`)"
      service: echo
      middlewares: [auth]
  middlewares:
    rewrite:
      replacePathRegex:
        regex: "^/api3/(.*)"
        replacement: "/api/$1"
    auth:
      basicAuth:
        usersFile: "{users_file}"
        realm: "my realm"
        headerField: X-WebAuth-User
        removeHeader: true
  services:
    echo:
      loadBalancer:
        servers:
          - url: "{}"
"#,
        echo.url()
    );
    let stack = Stack::start(&yaml).await;

    let response = stack.send("GET", "/api3/users?id=1", &[]).await;
    assert_eq!(response.status, 200, "{}", response.body);
    let seen = response.json();
    assert_eq!(seen["path"], "/api/users?id=1");
    assert_eq!(seen["headers"]["x-replaced-path"], "/api3/users");

    let anonymous = stack.send("GET", "/secure", &[]).await;
    assert_eq!(anonymous.status, 401);
    assert_eq!(
        anonymous.headers["www-authenticate"],
        "Basic realm=\"my realm\""
    );
    let wrong = basic("myusername:wrong");
    let response = stack
        .send("GET", "/secure", &[("authorization", &wrong)])
        .await;
    assert_eq!(response.status, 401);
    let right = basic("myusername:s3cret");
    let response = stack
        .send("GET", "/secure", &[("authorization", &right)])
        .await;
    assert_eq!(response.status, 200, "{}", response.body);
    let seen = response.json();
    assert_eq!(seen["headers"]["x-webauth-user"], "myusername");
    assert!(seen["headers"].get("authorization").is_none(), "{seen}");
}

#[tokio::test(flavor = "multi_thread")]
async fn cors_preflights_are_answered_by_the_proxy() {
    let echo = EchoBackend::start("echo").await;
    let yaml = format!(
        r#"http:
  routers:
    app:
      rule: "PathPrefix(`/`)"
      service: echo
      middlewares: [cors]
  middlewares:
    cors:
      headers:
        accessControlAllowMethods: [GET, PUT]
        accessControlAllowHeaders: [X-Custom]
        accessControlAllowOriginList: ["https://app.example"]
        accessControlMaxAge: 100
        addVaryHeader: true
  services:
    echo:
      loadBalancer:
        servers:
          - url: "{}"
"#,
        echo.url()
    );
    let stack = Stack::start(&yaml).await;
    let preflight = [
        ("origin", "https://app.example"),
        ("access-control-request-method", "PUT"),
    ];
    let response = stack.send("OPTIONS", "/items", &preflight).await;
    assert_eq!(response.status, 200);
    assert_eq!(
        response.headers["access-control-allow-origin"],
        "https://app.example"
    );
    assert_eq!(response.headers["access-control-allow-methods"], "GET,PUT");
    assert_eq!(response.headers["access-control-allow-headers"], "X-Custom");
    assert_eq!(response.headers["access-control-max-age"], "100");
    assert!(
        echo.received().is_empty(),
        "the preflight reached the backend"
    );

    let response = stack
        .send("GET", "/items", &[("origin", "https://app.example")])
        .await;
    assert_eq!(response.status, 200);
    assert_eq!(
        response.headers["access-control-allow-origin"],
        "https://app.example"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn retries_hide_a_server_that_refuses_connections() {
    let echo = EchoBackend::start("alive").await;
    let dead = format!("http://127.0.0.1:{}", free_port());
    let yaml = format!(
        r#"http:
  routers:
    app:
      rule: "PathPrefix(`/`)"
      service: pool
      middlewares: [retry]
  middlewares:
    retry:
      retry:
        attempts: 2
        initialInterval: 10ms
  services:
    pool:
      loadBalancer:
        servers:
          - url: "{dead}"
          - url: "{}"
"#,
        echo.url()
    );
    let stack = Stack::start(&yaml).await;
    for sent in 1..=20 {
        let response = stack.send("GET", "/", &[]).await;
        assert_eq!(response.status, 200, "request {sent}: {}", response.body);
        assert_eq!(response.headers["x-backend"], "alive");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_circuit_breaker_opens_on_errors_and_recovers() {
    let echo = EchoBackend::start("echo").await;
    let yaml = format!(
        r#"http:
  routers:
    app:
      rule: "PathPrefix(`/`)"
      service: echo
      middlewares: [breaker]
  middlewares:
    breaker:
      circuitBreaker:
        expression: "ResponseCodeRatio(500, 600, 0, 600) > 0.5"
        checkPeriod: 50ms
        fallbackDuration: 1s
        recoveryDuration: 1s
  services:
    echo:
      loadBalancer:
        servers:
          - url: "{}"
"#,
        echo.url()
    );
    let stack = Stack::start(&yaml).await;
    echo.set_status(500);
    eventually("the breaker to open", DEADLINE, || async {
        let response = stack.send("GET", "/", &[]).await;
        if response.status == 503 && response.body == "Service Unavailable" {
            Ok(())
        } else {
            Err(format!("{} {}", response.status, response.body))
        }
    })
    .await;
    // Open: the backend is not asked.
    let before = echo.received().len();
    assert_eq!(stack.send("GET", "/", &[]).await.status, 503);
    assert_eq!(echo.received().len(), before);

    echo.set_status(200);
    eventually("the breaker to close again", DEADLINE, || async {
        for _ in 0..10 {
            let response = stack.send("GET", "/", &[]).await;
            if response.status != 200 {
                return Err(format!("{} {}", response.status, response.body));
            }
        }
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn compression_follows_accept_encoding() {
    let echo = EchoBackend::start("echo").await;
    let yaml = format!(
        r#"http:
  routers:
    app:
      rule: "PathPrefix(`/`)"
      service: echo
      middlewares: [compress]
    small:
      rule: "PathPrefix(`/small`)"
      service: echo
      middlewares: [default-compress]
  middlewares:
    compress:
      compress:
        minResponseBodyBytes: 100
    default-compress:
      compress: {{}}
  services:
    echo:
      loadBalancer:
        servers:
          - url: "{}"
"#,
        echo.url()
    );
    let stack = Stack::start(&yaml).await;
    let (headers, plain) = stack.send_raw("/data", &[]).await;
    assert!(!headers.contains_key("content-encoding"), "{headers:?}");
    let plain: serde_json::Value = serde_json::from_slice(&plain).unwrap();
    assert_eq!(plain["path"], "/data");
    for (accept, expected) in [
        ("gzip", "gzip"),
        ("gzip, br", "br"),
        ("gzip, br, zstd", "zstd"),
        ("zstd;q=0.5, gzip", "gzip"),
    ] {
        let (headers, body) = stack
            .send_raw("/data", &[("accept-encoding", accept)])
            .await;
        assert_eq!(headers["content-encoding"], expected, "{accept}");
        assert_eq!(headers["vary"], "Accept-Encoding");
        assert!(!headers.contains_key("content-length"));
        let mut decoded = Vec::new();
        match expected {
            "gzip" => {
                flate2::read::GzDecoder::new(&body[..])
                    .read_to_end(&mut decoded)
                    .unwrap();
            }
            "br" => {
                brotli::Decompressor::new(&body[..], 4096)
                    .read_to_end(&mut decoded)
                    .unwrap();
            }
            _ => decoded = zstd::decode_all(&body[..]).unwrap(),
        }
        let json: serde_json::Value = serde_json::from_slice(&decoded).unwrap();
        assert_eq!(json["path"], "/data", "{accept}");
    }
    // Under the default 1024 bytes: sent as it is.
    let (headers, body) = stack
        .send_raw("/small", &[("accept-encoding", "gzip")])
        .await;
    assert!(!headers.contains_key("content-encoding"), "{headers:?}");
    assert!(body.starts_with(b"{"));
}

#[tokio::test(flavor = "multi_thread")]
async fn rate_limiting_answers_429_then_lets_through() {
    let echo = EchoBackend::start("echo").await;
    let yaml = format!(
        r#"http:
  routers:
    app:
      rule: "PathPrefix(`/`)"
      service: echo
      middlewares: [limit]
  middlewares:
    limit:
      rateLimit:
        average: 2
        period: 1s
        burst: 2
  services:
    echo:
      loadBalancer:
        servers:
          - url: "{}"
"#,
        echo.url()
    );
    let stack = Stack::start(&yaml).await;
    let mut refused = None;
    for _ in 0..10 {
        let response = stack.send("GET", "/", &[]).await;
        if response.status == 429 {
            refused = Some(response);
            break;
        }
        assert_eq!(response.status, 200);
    }
    let refused = refused.expect("a burst of 10 requests was not limited");
    assert_eq!(refused.body, "Too Many Requests");
    assert_eq!(refused.headers["retry-after"], "1");
    eventually("the bucket to refill", DEADLINE, || async {
        match stack.send("GET", "/", &[]).await.status {
            200 => Ok(()),
            status => Err(format!("status {status}")),
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_router_with_a_broken_middleware_is_not_served() {
    let echo = EchoBackend::start("echo").await;
    let yaml = format!(
        r#"http:
  routers:
    broken:
      rule: "PathPrefix(`/broken`)"
      service: echo
      middlewares: [bad-regex]
    fine:
      rule: "PathPrefix(`/fine`)"
      service: echo
      middlewares: [prefix]
  middlewares:
    bad-regex:
      replacePathRegex:
        regex: "^/broken/(["
        replacement: "/$1"
    prefix:
      addPrefix:
        prefix: /v1
  services:
    echo:
      loadBalancer:
        servers:
          - url: "{}"
"#,
        echo.url()
    );
    let stack = Stack::start(&yaml).await;
    let response = stack.send("GET", "/broken/x", &[]).await;
    assert_eq!(response.status, 404, "{}", response.body);
    let response = stack.send("GET", "/fine", &[]).await;
    assert_eq!(response.status, 200);
    assert_eq!(response.json()["path"], "/v1/fine");
    // `validate` names the router and the middleware's option.
    let text = printed(&stack.control_plane.validate());
    assert!(text.contains("bad-regex"), "{text}");
}
