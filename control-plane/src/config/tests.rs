//! End-to-end tests of [`StaticConfig::load`]: each source alone, their
//! precedence, key matching and the errors a user sees.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration as StdDuration;

use super::*;

const TRAEFIK_YAML: &str = r#"
# A typical Traefik v3 static configuration.
global:
  checkNewVersion: false
  sendAnonymousUsage: false

entryPoints:
  web:
    address: ":80"
    http:
      redirections:
        entryPoint:
          to: websecure
          scheme: https
  websecure:
    address: ":443"
    asDefault: true
    forwardedHeaders:
      trustedIPs: ["10.0.0.0/8", "192.168.1.7"]
    http:
      middlewares: [secure-headers@file]
      tls:
        certResolver: letsencrypt
        domains:
          - main: example.com
            sans: ["*.example.com"]
    transport:
      respondingTimeouts:
        readTimeout: 30s

providers:
  providersThrottleDuration: 2s
  file:
    directory: /etc/traefik/dynamic
    watch: true
  docker:
    exposedByDefault: false

api:
  dashboard: true
  insecure: false

log:
  level: DEBUG
  format: json

accessLog: {}

certificatesResolvers:
  letsencrypt:
    acme:
      email: ops@example.com
      storage: /letsencrypt/acme.json
      httpChallenge:
        entryPoint: web
"#;

const TRAEFIK_TOML: &str = r#"
[entryPoints]
  [entryPoints.web]
    address = ":80"
    [entryPoints.web.http.redirections.entryPoint]
      to = "websecure"
      scheme = "https"
  [entryPoints.websecure]
    address = ":443"
    [entryPoints.websecure.http.tls]

[providers.file]
  filename = "/etc/traefik/dynamic.toml"
  watch = false

[api]
  dashboard = true

[log]
  level = "warn"

[controlPlane]
  grpcAddress = "0.0.0.0:7050"
  debounce = "250ms"
"#;

fn write(directory: &Path, name: &str, text: &str) -> PathBuf {
    let path = directory.join(name);
    fs::write(&path, text).unwrap();
    path
}

fn load(
    file: Option<&Path>,
    env: &[(&str, &str)],
    flags: &[&str],
) -> Result<StaticConfig, StaticConfigError> {
    let flags: Vec<String> = flags.iter().map(|flag| flag.to_string()).collect();
    StaticConfig::load(StaticConfigSources {
        config_file: file,
        flags: &flags,
        env: env
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect(),
    })
}

fn ms(millis: u64) -> crate::dynamic::Duration {
    crate::dynamic::Duration(StdDuration::from_millis(millis))
}

#[test]
fn defaults_without_any_source() {
    let config = load(None, &[("PATH", "/bin"), ("HOME", "/root")], &[]).unwrap();
    assert_eq!(config, StaticConfig::default());
    let control_plane = &config.control_plane;
    assert_eq!(control_plane.grpc_address.to_string(), "127.0.0.1:7050");
    assert_eq!(control_plane.api_address.to_string(), "127.0.0.1:7070");
    assert_eq!(control_plane.debounce.quiet_period, ms(100));
    assert_eq!(control_plane.debounce.max_delay, ms(1000));
    assert_eq!(control_plane.history_size, 16);
    assert_eq!(config.log.level, LogLevel::Info);
    assert_eq!(config.log.format, LogFormat::Common);
}

#[test]
fn reads_a_traefik_yaml_file() {
    let directory = tempfile::tempdir().unwrap();
    let path = write(directory.path(), "traefik.yml", TRAEFIK_YAML);
    let config = load(Some(&path), &[], &[]).unwrap();

    let web = &config.entry_points["web"];
    assert_eq!(web.address.port, 80);
    let redirect = web
        .http
        .redirections
        .as_ref()
        .unwrap()
        .entry_point
        .as_ref()
        .unwrap();
    assert_eq!(
        (redirect.to.as_str(), redirect.permanent),
        ("websecure", true)
    );
    assert_eq!(redirect.priority, i64::MAX - 1);

    let websecure = &config.entry_points["websecure"];
    assert!(websecure.as_default);
    assert_eq!(websecure.forwarded_headers.trusted_ips.len(), 2);
    assert_eq!(websecure.http.middlewares, ["secure-headers@file"]);
    let tls = websecure.http.tls.as_ref().unwrap();
    assert_eq!(tls.cert_resolver, "letsencrypt");
    assert_eq!(tls.domains[0].sans, ["*.example.com"]);
    assert!(websecure.transport.is_some());

    let file = config.providers.file.as_ref().unwrap();
    assert_eq!(
        file.directory.as_deref(),
        Some(Path::new("/etc/traefik/dynamic"))
    );
    assert!(file.watch);
    assert_eq!(config.providers.providers_throttle_duration, Some(ms(2000)));
    assert!(config.providers.docker.is_some());
    assert_eq!(config.log.level, LogLevel::Debug);
    assert_eq!(config.log.format, LogFormat::Json);
    let api = serde_json::json!({"dashboard": true, "insecure": false});
    assert_eq!(config.api, Some(api));
    assert_eq!(config.access_log, Some(serde_json::json!({})));
    assert!(config.certificates_resolvers.is_some());
    assert!(config.global.is_some());
}

#[test]
fn reads_a_traefik_toml_file() {
    let directory = tempfile::tempdir().unwrap();
    let path = write(directory.path(), "sluice.toml", TRAEFIK_TOML);
    let config = load(Some(&path), &[], &[]).unwrap();
    assert_eq!(config.entry_points.len(), 2);
    let websecure = &config.entry_points["websecure"];
    assert_eq!(websecure.http.tls, Some(EntryPointTlsConfig::default()));
    let file = config.providers.file.as_ref().unwrap();
    let filename = Path::new("/etc/traefik/dynamic.toml");
    assert_eq!(file.filename.as_deref(), Some(filename));
    assert!(!file.watch);
    assert_eq!(config.log.level, LogLevel::Warn);
    assert_eq!(
        config.control_plane.grpc_address.to_string(),
        "0.0.0.0:7050"
    );
    assert_eq!(config.control_plane.debounce.quiet_period, ms(250));
    assert_eq!(config.control_plane.debounce.max_delay, ms(1000));
}

#[test]
fn reads_environment_variables_alone() {
    let config = load(
        None,
        &[
            ("SLUICE_PROVIDERS_FILE_DIRECTORY", "/x"),
            ("SLUICE_ENTRYPOINTS_WEB_ADDRESS", ":8080"),
            ("SLUICE_ENTRYPOINTS_WEB_HTTP_MIDDLEWARES", "a@file,b@file"),
            (
                "SLUICE_ENTRYPOINTS_WEB_HTTP_TLS_DOMAINS_0_MAIN",
                "example.com",
            ),
            ("SLUICE_CONTROLPLANE_GRPCADDRESS", "0.0.0.0:9000"),
            ("SLUICE_CONTROLPLANE_HISTORYSIZE", "4"),
            ("SLUICE_CONTROLPLANE_DEBOUNCE_MAXDELAY", "3s"),
            ("SLUICE_LOG_LEVEL", "error"),
            ("SLUICE_CONFIGFILE", "/read/by/the/cli.yml"),
            ("SLUICE_PROXY_NODE_ID", "the proxy's own setting"),
            ("OTHER_LOG_LEVEL", "nonsense"),
        ],
        &[],
    )
    .unwrap();
    let file = config.providers.file.as_ref().unwrap();
    assert_eq!(file.directory.as_deref(), Some(Path::new("/x")));
    assert!(file.watch, "watch defaults to true");
    let web = &config.entry_points["web"];
    assert_eq!(web.address.port, 8080);
    assert_eq!(web.http.middlewares, ["a@file", "b@file"]);
    assert_eq!(
        web.http.tls.as_ref().unwrap().domains[0].main,
        "example.com"
    );
    assert_eq!(
        config.control_plane.grpc_address.to_string(),
        "0.0.0.0:9000"
    );
    assert_eq!(config.control_plane.history_size, 4);
    assert_eq!(config.control_plane.debounce.max_delay, ms(3000));
    assert_eq!(config.control_plane.debounce.quiet_period, ms(100));
    assert_eq!(config.log.level, LogLevel::Error);
}

#[test]
fn reads_flags_alone() {
    let config = load(
        None,
        &[],
        &[
            "--providers.file.directory=/etc/sluice",
            "--providers.file.watch",
            "--controlPlane.grpcAddress=0.0.0.0:7050",
            "--controlPlane.debounce=50ms",
            "--entryPoints.web.address=:8000",
            "--entrypoints.web.http.middlewares=a,b",
            "--entryPoints.websecure.address=:8443",
            "--entryPoints.websecure.http.tls=true",
            "--entryPoints.websecure.http.tls.domains[0].main=example.com",
            "--entryPoints.websecure.http.tls.domains[0].sans=a.example.com,b.example.com",
            "--entryPoints.websecure.forwardedHeaders.trustedIPs=10.0.0.0/8,127.0.0.1",
            "--api.dashboard=true",
            "--configFile=/read/by/the/cli.yml",
        ],
    )
    .unwrap();
    let file = config.providers.file.as_ref().unwrap();
    assert_eq!(file.directory.as_deref(), Some(Path::new("/etc/sluice")));
    assert!(file.watch);
    assert_eq!(config.control_plane.debounce.quiet_period, ms(50));
    assert_eq!(config.entry_points["web"].address.port, 8000);
    assert_eq!(config.entry_points["web"].http.middlewares, ["a", "b"]);
    let websecure = &config.entry_points["websecure"];
    let tls = websecure.http.tls.as_ref().unwrap();
    assert_eq!(tls.domains[0].main, "example.com");
    assert_eq!(tls.domains[0].sans, ["a.example.com", "b.example.com"]);
    assert_eq!(websecure.forwarded_headers.trusted_ips.len(), 2);
    assert_eq!(config.api, Some(serde_json::json!({"dashboard": "true"})));
}

#[test]
fn later_sources_override_single_keys() {
    let directory = tempfile::tempdir().unwrap();
    let path = write(
        directory.path(),
        "sluice.yml",
        "providers:\n  file:\n    directory: /from/file\n    watch: false\n\
         controlPlane:\n  grpcAddress: 127.0.0.1:1\n  apiAddress: 127.0.0.1:2\n\
         entryPoints:\n  web:\n    address: ':80'\n    http:\n      middlewares: [a, b]\n",
    );
    let env = [
        ("SLUICE_CONTROLPLANE_GRPCADDRESS", "127.0.0.1:10"),
        ("SLUICE_CONTROLPLANE_APIADDRESS", "127.0.0.1:20"),
    ];
    let flags = [
        "--controlPlane.grpcAddress=127.0.0.1:100",
        "--providers.file.watch=true",
        "--entryPoints.web.http.middlewares=c",
    ];
    let config = load(Some(&path), &env, &flags).unwrap();
    // file < environment < flags for the same key.
    assert_eq!(
        config.control_plane.grpc_address.to_string(),
        "127.0.0.1:100"
    );
    assert_eq!(config.control_plane.api_address.to_string(), "127.0.0.1:20");
    // A sibling set by a flag leaves the file's key in place.
    let file = config.providers.file.as_ref().unwrap();
    assert!(file.watch);
    assert_eq!(file.directory.as_deref(), Some(Path::new("/from/file")));
    // A list is one value: replaced, not merged.
    let web = &config.entry_points["web"];
    assert_eq!(web.http.middlewares, ["c"]);
    assert_eq!(web.address.port, 80);
}

#[test]
fn struct_keys_ignore_case_everywhere() {
    let directory = tempfile::tempdir().unwrap();
    let path = write(
        directory.path(),
        "sluice.yaml",
        "ENTRYPOINTS:\n  Web:\n    Address: ':81'\nLog:\n  LEVEL: debug\n",
    );
    let flags = [
        "--entrypoints.Web.http.middlewares=x",
        "--CONTROLPLANE.historysize=3",
    ];
    let config = load(Some(&path), &[], &flags).unwrap();
    // Entry point names are kept as written, so `Web` is one entry point.
    assert_eq!(config.entry_points.keys().collect::<Vec<_>>(), ["Web"]);
    assert_eq!(config.entry_points["Web"].address.port, 81);
    assert_eq!(config.entry_points["Web"].http.middlewares, ["x"]);
    assert_eq!(config.log.level, LogLevel::Debug);
    assert_eq!(config.control_plane.history_size, 3);
}

#[test]
fn unknown_keys_name_source_and_key() {
    let directory = tempfile::tempdir().unwrap();
    let text = "entryPoints:\n  web:\n    adress: ':80'\n";
    let path = write(directory.path(), "traefik.yml", text);
    let error = load(Some(&path), &[], &[]).unwrap_err().to_string();
    let expected = format!(
        "config file `{}`: unknown key `entryPoints.web.adress`",
        path.display()
    );
    assert!(error.starts_with(&expected), "{error}");

    let error = load(None, &[], &["--providers.fil.directory=/x"]).unwrap_err();
    let expected = "flag `--providers.fil.directory`: unknown key `providers.fil`";
    assert!(error.to_string().starts_with(expected), "{error}");

    let error = load(None, &[("SLUICE_FOO", "1")], &[]).unwrap_err();
    let expected = "environment variable `SLUICE_FOO`: unknown key `foo`";
    assert!(error.to_string().starts_with(expected), "{error}");
}

#[test]
fn invalid_values_name_the_source_that_set_them() {
    let directory = tempfile::tempdir().unwrap();
    let path = write(directory.path(), "sluice.yml", "log:\n  level: loud\n");
    let error = load(Some(&path), &[], &[]).unwrap_err().to_string();
    let expected = format!("config file `{}`: `log.level`", path.display());
    assert!(error.starts_with(&expected), "{error}");
    assert!(error.contains("unknown log level `loud`"), "{error}");

    let error = load(None, &[], &["--controlPlane.historySize=many"]).unwrap_err();
    let expected = "flag `--controlPlane.historySize`: `controlPlane.historySize`:";
    assert!(error.to_string().starts_with(expected), "{error}");
    let error = load(None, &[], &["--controlPlane.historySize=0"]).unwrap_err();
    let expected = "`controlPlane.historySize`: must be at least 1";
    assert!(error.to_string().ends_with(expected), "{error}");

    let error = load(None, &[("SLUICE_ENTRYPOINTS_WEB_ADDRESS", "80")], &[]).unwrap_err();
    let expected = "environment variable `SLUICE_ENTRYPOINTS_WEB_ADDRESS`: \
                    `entryPoints.web.address`: address `80` has no port";
    assert!(error.to_string().starts_with(expected), "{error}");

    let error = load(None, &[], &["--entryPoints.web.asDefault"]).unwrap_err();
    let expected = "flag `--entryPoints.web.asDefault`: `entryPoints.web`: missing field `address`";
    assert_eq!(error.to_string(), expected);

    let flags = [
        "--entryPoints.web.address=:80",
        "--entryPoints.web.http.redirections.entryPoint.to=websecur",
    ];
    let error = load(None, &[], &flags).unwrap_err().to_string();
    let expected = "flag `--entryPoints.web.http.redirections.entryPoint.to`";
    assert!(error.starts_with(expected), "{error}");
    assert!(error.contains("`websecur` is neither a port"), "{error}");

    let error = load(None, &[], &["--controlPlane.debounce.quietPeriod=5s"]).unwrap_err();
    let expected = "`controlPlane.debounce.maxDelay`: 1s is shorter than the quiet period (5s)";
    assert!(error.to_string().ends_with(expected), "{error}");
}

#[test]
fn malformed_sources_are_syntax_errors() {
    let directory = tempfile::tempdir().unwrap();
    let yaml = write(directory.path(), "bad.yml", "entryPoints:\n  web: {\n");
    let error = load(Some(&yaml), &[], &[]).unwrap_err().to_string();
    assert!(error.contains("line"), "{error}");
    let toml = write(directory.path(), "bad.toml", "[entryPoints\n");
    let error = load(Some(&toml), &[], &[]).unwrap_err().to_string();
    assert!(error.contains("line 1 column 13"), "{error}");
    let ini = write(directory.path(), "sluice.ini", "");
    let error = load(Some(&ini), &[], &[]).unwrap_err().to_string();
    assert!(error.contains("unsupported file extension"), "{error}");
    let missing = directory.path().join("missing.yml");
    assert!(matches!(
        load(Some(&missing), &[], &[]),
        Err(StaticConfigError::ReadFile { .. })
    ));
    for flag in ["-log.level=debug", "--log..level=x", "--a[x]=1", "--a[0=1"] {
        let error = load(None, &[], &[flag]).unwrap_err();
        assert!(
            matches!(error, StaticConfigError::Syntax { .. }),
            "{flag}: {error}"
        );
    }
    let error = load(None, &[("SLUICE_LOG__LEVEL", "x")], &[]).unwrap_err();
    assert!(matches!(error, StaticConfigError::Syntax { .. }), "{error}");
}

#[test]
fn durations_accept_go_syntax_and_seconds() {
    let directory = tempfile::tempdir().unwrap();
    let path = write(
        directory.path(),
        "sluice.yml",
        "controlPlane:\n  debounce:\n    quietPeriod: 1m30s\n    maxDelay: 120\n\
         providers:\n  providersThrottleDuration: 1.5s\n",
    );
    let config = load(Some(&path), &[], &[]).unwrap();
    assert_eq!(config.control_plane.debounce.quiet_period, ms(90_000));
    assert_eq!(config.control_plane.debounce.max_delay, ms(120_000));
    assert_eq!(config.providers.providers_throttle_duration, Some(ms(1500)));
    let error = load(None, &[], &["--controlPlane.debounce.maxDelay=soon"]).unwrap_err();
    let error = error.to_string();
    assert!(
        error.contains("`controlPlane.debounce.maxDelay`: "),
        "{error}"
    );
    assert!(error.contains("`soon`"), "{error}");
}

#[test]
fn reads_the_kv_and_catalog_providers_with_traefik_defaults() {
    let directory = tempfile::tempdir().unwrap();
    let path = write(
        directory.path(),
        "traefik.yml",
        "providers:\n  consul:\n    rootKey: sluice\n    endpoints: [\"127.0.0.1:8500\", \"10.0.0.2:8500\"]\n    token: s3cret\n\
         \x20 etcd:\n    username: root\n    password: pw\n\
         \x20 consulCatalog:\n    exposedByDefault: false\n    endpoint:\n      address: consul:8500\n      token: t\n",
    );
    let config = load(
        Some(&path),
        &[(
            "SLUICE_PROVIDERS_ETCD_ENDPOINTS",
            "127.0.0.1:2379,127.0.0.1:22379",
        )],
        &["--providers.consulcatalog.endpoint.datacenter=dc2"],
    )
    .unwrap();
    let consul = config.providers.consul.as_ref().unwrap();
    assert_eq!(consul.root_key, "sluice");
    assert_eq!(consul.endpoints, ["127.0.0.1:8500", "10.0.0.2:8500"]);
    assert_eq!(consul.token.expose(), "s3cret");
    assert!(!format!("{consul:?}").contains("s3cret"));
    let etcd = config.providers.etcd.as_ref().unwrap();
    assert_eq!(etcd.root_key, "traefik");
    assert_eq!(etcd.endpoints, ["127.0.0.1:2379", "127.0.0.1:22379"]);
    assert_eq!(etcd.password.expose(), "pw");
    let catalog = config.providers.consul_catalog.as_ref().unwrap();
    assert!(!catalog.exposed_by_default);
    assert_eq!(catalog.prefix, "traefik");
    assert_eq!(catalog.default_rule, "Host(`{{ normalize .Name }}`)");
    assert_eq!(catalog.endpoint.address, "consul:8500");
    assert_eq!(catalog.endpoint.datacenter, "dc2");

    let defaults = load(None, &[], &["--providers.consul=true"]).unwrap();
    let consul = defaults.providers.consul.unwrap();
    assert_eq!(consul.endpoints, ["127.0.0.1:8500"]);
    assert_eq!(consul.root_key, "traefik");

    let error = load(None, &[], &["--providers.etcd.rootkeys=x"])
        .unwrap_err()
        .to_string();
    assert!(error.contains("providers.etcd.rootkeys"), "{error}");
}
