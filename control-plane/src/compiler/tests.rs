//! Compiler behaviour over whole configurations: what ships, what is left
//! out and why, and determinism.

use std::collections::BTreeMap;

use sluice_proto::v1::matcher::Kind as MatcherKind;

use super::*;
use crate::config::StaticConfig;
use crate::dynamic::DynamicConfig;
use crate::providers::{ProviderUpdate, SourceError};

fn provider(name: &str, yaml: &str) -> ProviderUpdate {
    let config: DynamicConfig = serde_yaml::from_str(yaml).expect("test YAML is valid");
    let mut origins = BTreeMap::new();
    if let Some(http) = &config.http {
        for router in http.routers.keys() {
            origins.insert(
                format!("http.routers.{router}"),
                format!("/etc/sluice/{name}.yml"),
            );
        }
    }
    ProviderUpdate {
        provider: name.to_owned(),
        config,
        errors: Vec::new(),
        origins,
    }
}

fn entry_points(names: &[&str]) -> BTreeMap<String, EntryPointConfig> {
    let mut yaml = String::from("entryPoints:\n");
    for (index, name) in names.iter().enumerate() {
        yaml.push_str(&format!("  {name}:\n    address: \":{}\"\n", 8000 + index));
    }
    let file = tempfile::Builder::new().suffix(".yml").tempfile().unwrap();
    std::fs::write(file.path(), yaml).unwrap();
    StaticConfig::load(crate::config::StaticConfigSources {
        config_file: Some(file.path()),
        flags: &[],
        env: Vec::new(),
    })
    .unwrap()
    .entry_points
}

fn compile_providers(updates: Vec<ProviderUpdate>) -> Compiled {
    let providers = updates
        .into_iter()
        .map(|update| (update.provider.clone(), update))
        .collect();
    compile(CompileInput {
        entry_points: &entry_points(&["web", "websecure"]),
        providers: &providers,
        previous_certificates: &[],
    })
}

fn router_names(compiled: &Compiled) -> Vec<&str> {
    compiled
        .resources
        .routers
        .iter()
        .map(|r| r.name.as_str())
        .collect()
}

fn errors_of<'a>(compiled: &'a Compiled, name: &str) -> Vec<&'a str> {
    compiled
        .report
        .errors
        .iter()
        .filter(|error| error.name == name)
        .map(|error| error.message.as_str())
        .collect()
}

const GOOD: &str = r#"
http:
  routers:
    api:
      rule: "Host(`api.example.com`) && PathPrefix(`/v1`)"
      service: backend
    web:
      rule: "Host(`www.example.com`)"
      entryPoints: [web]
      service: backend
      priority: 7
  services:
    backend:
      loadBalancer:
        servers:
          - url: "http://10.0.0.1:80"
          - url: "h2c://10.0.0.2:80"
            weight: 3
"#;

#[test]
fn a_valid_configuration_ships_whole_with_qualified_names() {
    let compiled = compile_providers(vec![provider("file", GOOD)]);
    assert!(
        compiled.report.errors.is_empty(),
        "{:?}",
        compiled.report.errors
    );
    assert_eq!(router_names(&compiled), ["api@file", "web@file"]);
    let api = &compiled.resources.routers[0];
    assert_eq!(api.service, "backend@file");
    assert_eq!(
        api.priority,
        api.rule.len() as i64,
        "priority defaults to rule length"
    );
    assert_eq!(
        api.entry_points,
        ["web", "websecure"],
        "no entryPoints means all of them"
    );
    assert!(matches!(
        api.matcher.as_ref().unwrap().kind,
        Some(MatcherKind::All(_))
    ));
    let web = &compiled.resources.routers[1];
    assert_eq!(web.priority, 7);
    assert_eq!(web.entry_points, ["web"]);
    let Some(sluice_proto::v1::service::Kind::LoadBalancer(lb)) =
        &compiled.resources.services[0].kind
    else {
        panic!("expected a load balancer");
    };
    assert!(lb.pass_host_header, "passHostHeader defaults to true");
    assert_eq!(
        lb.servers.iter().map(|s| s.weight).collect::<Vec<_>>(),
        [1, 3]
    );
    assert!(
        compiled
            .resources
            .routers
            .iter()
            .all(|r| r.content_version.len() == 16)
    );
}

#[test]
fn compilation_is_deterministic() {
    let first = compile_providers(vec![provider("file", GOOD), provider("other", GOOD)]);
    let second = compile_providers(vec![provider("other", GOOD), provider("file", GOOD)]);
    assert_eq!(
        first.resources.content_hash(),
        second.resources.content_hash()
    );
    assert_eq!(
        prost::Message::encode_to_vec(&first.resources.to_proto()),
        prost::Message::encode_to_vec(&second.resources.to_proto())
    );
}

#[test]
fn a_broken_router_is_left_out_and_named_while_the_rest_ships() {
    let yaml = r#"
http:
  routers:
    good:
      rule: "Host(`good.example.com`)"
      service: backend
    bad-rule:
      rule: "Host(`a.com`) && PathPrefix(`/x"
      service: backend
    no-service:
      rule: "Host(`b.com`)"
      service: missing
    bad-entry-point:
      rule: "Host(`c.com`)"
      entryPoints: [nope]
      service: backend
  services:
    backend:
      loadBalancer:
        servers: [{url: "http://10.0.0.1"}]
"#;
    let compiled = compile_providers(vec![provider("file", yaml)]);
    assert_eq!(router_names(&compiled), ["good@file"]);
    let rule_error = errors_of(&compiled, "bad-rule@file");
    assert_eq!(rule_error.len(), 1);
    assert!(
        rule_error[0].contains("Host(`a.com`) && PathPrefix(`/x"),
        "{rule_error:?}"
    );
    assert!(rule_error[0].contains("column"), "{rule_error:?}");
    assert_eq!(
        errors_of(&compiled, "no-service@file"),
        ["service `missing@file` does not exist or is broken"]
    );
    assert!(
        errors_of(&compiled, "bad-entry-point@file")[0].contains("`nope` is not an entry point")
    );
    let shown = compiled
        .report
        .errors
        .iter()
        .find(|e| e.name == "bad-rule@file")
        .unwrap();
    assert!(
        shown.to_string().starts_with(
            "/etc/sluice/file.yml: http.routers.bad-rule (router `bad-rule@file`): rule `"
        ),
        "{shown}"
    );
    let status = &compiled.report.resources[&ResourceKindName::router("file", "bad-rule")];
    assert_eq!(status.status, "disabled");
}

#[test]
fn a_router_with_a_broken_middleware_is_not_served_without_it() {
    let yaml = r#"
http:
  routers:
    protected:
      rule: "Host(`admin.example.com`)"
      service: backend
      middlewares: [auth]
    chained:
      rule: "Host(`chained.example.com`)"
      service: backend
      middlewares: [both]
    open:
      rule: "Host(`www.example.com`)"
      service: backend
      middlewares: [strip]
  middlewares:
    auth:
      basicAuth:
        users: ["alice"]
    strip:
      stripPrefix:
        prefixes: ["/api"]
    both:
      chain:
        middlewares: [strip, auth]
  services:
    backend:
      loadBalancer:
        servers: [{url: "http://10.0.0.1"}]
"#;
    let compiled = compile_providers(vec![provider("file", yaml)]);
    assert_eq!(router_names(&compiled), ["open@file"]);
    assert!(errors_of(&compiled, "auth@file")[0].contains("basicAuth.users[0]"));
    assert!(
        errors_of(&compiled, "both@file")[0].contains("`auth@file` does not exist or is broken")
    );
    assert!(errors_of(&compiled, "protected@file")[0].contains("middleware `auth@file`"));
    assert!(errors_of(&compiled, "chained@file")[0].contains("middleware `both@file`"));
    let middlewares: Vec<&str> = compiled
        .resources
        .middlewares
        .iter()
        .map(|m| m.name.as_str())
        .collect();
    assert_eq!(middlewares, ["strip@file"]);
}

#[test]
fn cross_provider_references_and_cycles() {
    let kubernetes = r#"
http:
  services:
    shared:
      loadBalancer:
        servers: [{url: "http://10.0.0.9"}]
"#;
    let file = r#"
http:
  routers:
    uses-shared:
      rule: "Path(`/`)"
      service: "shared@kubernetes"
  services:
    loop-a:
      weighted:
        services: [{name: loop-b}]
    loop-b:
      weighted:
        services: [{name: loop-a}]
    split:
      weighted:
        services: [{name: "shared@kubernetes", weight: 3}, {name: loop-a}]
    dangling:
      failover: {service: nowhere, fallback: "shared@kubernetes"}
"#;
    let compiled = compile_providers(vec![
        provider("file", file),
        provider("kubernetes", kubernetes),
    ]);
    assert_eq!(router_names(&compiled), ["uses-shared@file"]);
    let services: Vec<&str> = compiled
        .resources
        .services
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(services, ["shared@kubernetes"]);
    assert!(errors_of(&compiled, "loop-a@file")[0].contains("references itself"));
    assert!(errors_of(&compiled, "split@file")[0].contains("loop-a@file"));
    assert!(errors_of(&compiled, "dangling@file")[0].contains("`nowhere@file`"));
}

#[test]
fn services_are_validated_option_by_option() {
    let yaml = r#"
http:
  services:
    no-scheme:
      loadBalancer:
        servers: [{url: "10.0.0.1:80"}]
    ftp:
      loadBalancer:
        servers: [{url: "ftp://10.0.0.1"}]
    two-kinds:
      loadBalancer: {servers: []}
      failover: {service: a, fallback: b}
    bad-check:
      loadBalancer:
        servers: [{url: "http://10.0.0.1"}]
        healthCheck: {path: "health"}
"#;
    let compiled = compile_providers(vec![provider("file", yaml)]);
    assert!(compiled.resources.services.is_empty());
    assert!(errors_of(&compiled, "no-scheme@file")[0].contains("servers[0].url `10.0.0.1:80`"));
    assert!(errors_of(&compiled, "ftp@file")[0].contains("unsupported scheme `ftp`"));
    assert!(errors_of(&compiled, "two-kinds@file")[0].contains("`loadBalancer`, `failover`"));
    assert!(errors_of(&compiled, "bad-check@file")[0].contains("healthCheck.path `health`"));
}

#[test]
fn entry_point_middlewares_resolve_and_fail_closed() {
    let yaml = r#"
http:
  routers:
    r:
      rule: "Path(`/`)"
      service: s
  middlewares:
    headers-mw:
      headers:
        customResponseHeaders: {X-Served-By: sluice}
  services:
    s:
      loadBalancer:
        servers: [{url: "http://10.0.0.1"}]
"#;
    let mut providers = BTreeMap::new();
    providers.insert("file".to_owned(), provider("file", yaml));
    let mut points = entry_points(&["web"]);
    points.get_mut("web").unwrap().http.middlewares = vec!["headers-mw".to_owned()];
    let compiled = compile(CompileInput {
        entry_points: &points,
        providers: &providers,
        previous_certificates: &[],
    });
    assert_eq!(
        compiled.resources.entry_points[0].middlewares,
        ["headers-mw@file"]
    );
    assert_eq!(router_names(&compiled), ["r@file"]);

    points.get_mut("web").unwrap().http.middlewares = vec!["missing".to_owned()];
    let compiled = compile(CompileInput {
        entry_points: &points,
        providers: &providers,
        previous_certificates: &[],
    });
    assert!(
        router_names(&compiled).is_empty(),
        "routers on the entry point fail closed"
    );
    assert!(
        errors_of(&compiled, "r@file")[0]
            .contains("entry point `web`: http.middlewares: middleware `missing` does not exist")
    );

    // Defined but broken counts as missing: the proxy must never get a name it cannot build.
    points.get_mut("web").unwrap().http.middlewares = vec!["broken".to_owned()];
    let broken_yaml = yaml.replace(
        "  middlewares:\n",
        "  middlewares:\n    broken:\n      replacePathRegex:\n        regex: \"(\"\n        replacement: /\n",
    );
    let mut broken_providers = BTreeMap::new();
    broken_providers.insert("file".to_owned(), provider("file", &broken_yaml));
    let compiled = compile(CompileInput {
        entry_points: &points,
        providers: &broken_providers,
        previous_certificates: &[],
    });
    assert!(router_names(&compiled).is_empty());
    assert!(compiled.resources.entry_points[0].middlewares.is_empty());

    points.get_mut("web").unwrap().http.middlewares.clear();
    points.get_mut("web").unwrap().http.tls = Some(crate::config::EntryPointTlsConfig {
        options: "nope".to_owned(),
        ..Default::default()
    });
    let compiled = compile(CompileInput {
        entry_points: &points,
        providers: &providers,
        previous_certificates: &[],
    });
    assert!(router_names(&compiled).is_empty());
    assert!(errors_of(&compiled, "web")[0].contains("http.tls.options: TLS options `nope`"));
}

#[test]
fn provider_source_errors_are_reported_first() {
    let mut update = provider("file", GOOD);
    update.errors.push(SourceError {
        location: "/etc/sluice/broken.yml".to_owned(),
        key: Some("http.routers.x.rulee".to_owned()),
        message: "unknown field `rulee`".to_owned(),
    });
    let compiled = compile_providers(vec![update]);
    assert_eq!(router_names(&compiled), ["api@file", "web@file"]);
    assert_eq!(
        compiled.report.errors[0].to_string(),
        "/etc/sluice/broken.yml: http.routers.x.rulee: unknown field `rulee`"
    );
}

#[test]
fn a_mismatched_key_is_reported_and_the_previous_certificate_kept() {
    let dir = tempfile::tempdir().unwrap();
    let issue = |name: &str| {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec![name.to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    };
    let (first_cert, first_key) = issue("secure.example.com");
    let (_, other_key) = issue("other.example.com");
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    std::fs::write(&cert_path, &first_cert).unwrap();
    std::fs::write(&key_path, &first_key).unwrap();
    let yaml = format!(
        "tls:\n  certificates:\n    - certFile: {}\n      keyFile: {}\n",
        cert_path.display(),
        key_path.display()
    );
    let providers: BTreeMap<String, ProviderUpdate> =
        [("file".to_owned(), provider("file", &yaml))].into();
    let points = entry_points(&["websecure"]);
    let compile_with = |previous: &[std::sync::Arc<sluice_proto::v1::Certificate>]| {
        compile(CompileInput {
            entry_points: &points,
            providers: &providers,
            previous_certificates: previous,
        })
    };
    let good = compile_with(&[]);
    assert!(good.report.errors.is_empty(), "{:?}", good.report.errors);
    assert_eq!(good.resources.certificates[0].sans, ["secure.example.com"]);

    std::fs::write(&key_path, &other_key).unwrap();
    let kept = compile_with(&good.resources.certificates);
    assert_eq!(kept.resources.certificates, good.resources.certificates);
    let message = &kept.report.errors[0].message;
    assert!(
        message.contains("the key does not match the certificate"),
        "{message}"
    );
    assert!(
        message.contains(&key_path.display().to_string()),
        "{message}"
    );
    assert!(message.contains("still serving the previous"), "{message}");

    let dropped = compile_with(&[]);
    assert!(dropped.resources.certificates.is_empty());
    assert_eq!(dropped.report.errors.len(), 1);
}

#[test]
fn a_compiler_reuses_unchanged_routers_and_recompiles_when_what_they_name_changes() {
    let entry_points = entry_points(&["web"]);
    let compile_with = |compiler: &mut Compiler, yaml: &str| {
        let update = provider("file", yaml);
        let providers = BTreeMap::from([(update.provider.clone(), update)]);
        let input = CompileInput {
            entry_points: &entry_points,
            providers: &providers,
            previous_certificates: &[],
        };
        let once = compile(input);
        let cached = compiler.compile(input);
        assert_eq!(cached.resources, once.resources, "{yaml}");
        assert_eq!(cached.report, once.report, "{yaml}");
        cached
    };
    let services = "  services:\n    s:\n      loadBalancer:\n        servers:\n          - url: http://127.0.0.1:1\n";
    let routers = |rule_b: &str| {
        format!(
            "http:\n  routers:\n    a:\n      rule: Host(`a.test`)\n      service: s\n    b:\n      rule: {rule_b}\n      service: s\n"
        )
    };
    let mut compiler = Compiler::default();
    let first = compile_with(
        &mut compiler,
        &format!("{}{services}", routers("Host(`b.test`)")),
    );
    assert_eq!(router_names(&first), ["a@file", "b@file"]);

    // One router changed: the other keeps its compiled form and version,
    // shared with the previous compilation rather than copied.
    let second = compile_with(
        &mut compiler,
        &format!("{}{services}", routers("Host(`c.test`)")),
    );
    let (before, after) = (&first.resources.routers, &second.resources.routers);
    assert!(std::sync::Arc::ptr_eq(&after[0], &before[0]));
    assert_ne!(after[1], before[1]);

    // A broken rule is reported again from the cache, with the same error.
    let broken = format!("{}{services}", routers("Host(`c.test`"));
    let third = compile_with(&mut compiler, &broken);
    let fourth = compile_with(&mut compiler, &broken);
    assert_eq!(router_names(&fourth), ["a@file"]);
    assert_eq!(fourth.report.errors, third.report.errors);
    assert_eq!(errors_of(&fourth, "b@file").len(), 1);

    // The service goes away: unchanged routers must not ship from the cache.
    let gone = compile_with(&mut compiler, &routers("Host(`c.test`)"));
    assert_eq!(router_names(&gone), Vec::<&str>::new());
    assert!(
        errors_of(&gone, "a@file")[0].contains("service `s@file` does not exist"),
        "{:?}",
        errors_of(&gone, "a@file")
    );
}

#[test]
fn a_cached_router_reports_the_file_it_moved_to() {
    let entry_points = entry_points(&["web"]);
    let yaml = "http:\n  routers:\n    a:\n      rule: Host(`a.test`)\n      service: s\n  services:\n    s:\n      loadBalancer:\n        servers:\n          - url: http://127.0.0.1:1\n";
    let mut compiler = Compiler::default();
    let mut origin_of_a = |file: &str| {
        let mut update = provider("file", yaml);
        update
            .origins
            .insert("http.routers.a".to_owned(), file.to_owned());
        let providers = BTreeMap::from([(update.provider.clone(), update)]);
        let compiled = compiler.compile(CompileInput {
            entry_points: &entry_points,
            providers: &providers,
            previous_certificates: &[],
        });
        let key = ResourceKindName::router("file", "a");
        compiled.report.resources[&key].origin.clone()
    };
    assert_eq!(origin_of_a("/d/one.yml").as_deref(), Some("/d/one.yml"));
    assert_eq!(origin_of_a("/d/two.yml").as_deref(), Some("/d/two.yml"));
}
