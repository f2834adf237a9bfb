use std::collections::BTreeMap;

use super::decode::Decoded;
use super::*;
use crate::dynamic::Duration;

fn decode(pairs: &[(&str, &str)]) -> Decoded {
    let mut tree = KeyTree::new("traefik", '/');
    for (key, value) in pairs {
        tree.insert(key, value).unwrap();
    }
    tree.decode()
}

#[test]
fn routers_with_lists_priorities_and_tls() {
    let decoded = decode(&[
        ("traefik/http/routers/api/rule", "Host(`api.example`)"),
        ("traefik/http/routers/api/service", "api"),
        ("traefik/http/routers/api/entrypoints/0", "web"),
        ("traefik/http/routers/api/entrypoints/1", "websecure"),
        ("traefik/http/routers/api/middlewares/1", "second"),
        ("traefik/http/routers/api/middlewares/0", "first"),
        ("traefik/http/routers/api/middlewares/10", "eleventh"),
        ("traefik/http/routers/api/priority", "42"),
        ("traefik/http/routers/api/tls/options", "modern"),
        ("traefik/http/routers/api/tls/certresolver", "le"),
        ("traefik/http/routers/api/tls/domains/0/main", "example.com"),
        (
            "traefik/http/routers/api/tls/domains/0/sans/0",
            "a.example.com",
        ),
        ("traefik/http/routers/plain/rule", "PathPrefix(`/`)"),
        ("traefik/http/routers/plain/entrypoints", "web, websecure"),
        ("traefik/http/routers/plain/tls", "true"),
    ]);
    assert_eq!(decoded.errors, []);
    let http = decoded.config.http.unwrap();
    let api = &http.routers["api"];
    assert_eq!(api.rule, "Host(`api.example`)");
    assert_eq!(api.service, "api");
    assert_eq!(api.entry_points, ["web", "websecure"]);
    assert_eq!(api.middlewares, ["first", "second", "eleventh"]);
    assert_eq!(api.priority, 42);
    let tls = api.tls.as_ref().unwrap();
    assert_eq!(tls.options, "modern");
    assert_eq!(tls.cert_resolver, "le");
    assert_eq!(tls.domains[0].main, "example.com");
    assert_eq!(tls.domains[0].sans, ["a.example.com"]);
    let plain = &http.routers["plain"];
    assert_eq!(plain.entry_points, ["web", "websecure"]);
    assert_eq!(plain.tls, Some(Default::default()));
    assert_eq!(
        decoded.origins["http.routers.api"],
        "traefik/http/routers/api"
    );
}

#[test]
fn services_with_servers_health_checks_and_weighted() {
    let decoded = decode(&[
        (
            "traefik/http/services/api/loadbalancer/servers/0/url",
            "http://10.0.0.1:80",
        ),
        (
            "traefik/http/services/api/loadbalancer/servers/0/weight",
            "3",
        ),
        (
            "traefik/http/services/api/loadbalancer/servers/1/url",
            "http://10.0.0.2:80",
        ),
        (
            "traefik/http/services/api/loadbalancer/passhostheader",
            "false",
        ),
        (
            "traefik/http/services/api/loadbalancer/healthcheck/path",
            "/health",
        ),
        (
            "traefik/http/services/api/loadbalancer/healthcheck/interval",
            "5s",
        ),
        (
            "traefik/http/services/api/loadbalancer/healthcheck/headers/X-Probe",
            "1",
        ),
        (
            "traefik/http/services/api/loadbalancer/sticky/cookie/httponly",
            "TRUE",
        ),
        (
            "traefik/http/services/split/weighted/services/0/name",
            "api",
        ),
        (
            "traefik/http/services/split/weighted/services/0/weight",
            "2",
        ),
    ]);
    assert_eq!(decoded.errors, []);
    let http = decoded.config.http.unwrap();
    let lb = http.services["api"].load_balancer.as_ref().unwrap();
    assert_eq!(lb.servers.len(), 2);
    assert_eq!(lb.servers[0].url, "http://10.0.0.1:80");
    assert_eq!(lb.servers[0].weight, Some(3));
    assert_eq!(lb.servers[1].weight, None);
    assert_eq!(lb.pass_host_header, Some(false));
    let health = lb.health_check.as_ref().unwrap();
    assert_eq!(health.path, "/health");
    assert_eq!(health.interval, Some(Duration::parse("5s").unwrap()));
    assert_eq!(health.headers["X-Probe"], "1");
    assert!(
        lb.sticky
            .as_ref()
            .unwrap()
            .cookie
            .as_ref()
            .unwrap()
            .http_only
    );
    let weighted = http.services["split"].weighted.as_ref().unwrap();
    assert_eq!(weighted.services[0].name, "api");
    assert_eq!(weighted.services[0].weight, Some(2));
}

#[test]
fn middlewares_keep_map_keys_and_user_names_as_written() {
    let decoded = decode(&[
        (
            "traefik/http/middlewares/Add-Headers/headers/customrequestheaders/X-Foo",
            "bar",
        ),
        (
            "traefik/http/middlewares/Add-Headers/headers/customResponseHeaders/X-Served-By",
            "sluice",
        ),
        (
            "traefik/http/middlewares/Add-Headers/headers/forcestsheader",
            "true",
        ),
        (
            "traefik/http/middlewares/Add-Headers/headers/accesscontrolallowmethods/0",
            "GET",
        ),
        (
            "traefik/http/middlewares/Add-Headers/headers/accesscontrolallowmethods/1",
            "PUT",
        ),
        (
            "traefik/http/middlewares/strip/stripprefix/prefixes/0",
            "/api",
        ),
        (
            "traefik/http/middlewares/strip/stripprefix/prefixes/1",
            "/v1",
        ),
        ("traefik/http/middlewares/gz/compress", "true"),
        ("traefik/http/middlewares/limit/ratelimit/average", "100"),
        ("traefik/http/middlewares/limit/ratelimit/period", "1m"),
        (
            "traefik/http/middlewares/limit/ratelimit/sourcecriterion/ipstrategy/excludedips/0",
            "10.0.0.1",
        ),
        (
            "traefik/http/middlewares/client/passtlsclientcert/pem",
            "true",
        ),
        ("traefik/http/middlewares/pages/errors/status/0", "500-599"),
        (
            "traefik/http/middlewares/pages/errors/statusrewrites/500-599",
            "503",
        ),
    ]);
    assert_eq!(decoded.errors, []);
    let middlewares = decoded.config.http.unwrap().middlewares;
    let headers = middlewares["Add-Headers"].headers.as_ref().unwrap();
    assert_eq!(headers.custom_request_headers["X-Foo"], "bar");
    assert_eq!(headers.custom_response_headers["X-Served-By"], "sluice");
    assert!(headers.force_sts_header);
    assert_eq!(headers.access_control_allow_methods, ["GET", "PUT"]);
    let strip = middlewares["strip"].strip_prefix.as_ref().unwrap();
    assert_eq!(strip.prefixes, ["/api", "/v1"]);
    assert_eq!(middlewares["gz"].compress, Some(Default::default()));
    let limit = middlewares["limit"].rate_limit.as_ref().unwrap();
    assert_eq!(limit.average, 100);
    assert_eq!(limit.period.unwrap().as_millis(), 60_000);
    let strategy = limit
        .source_criterion
        .as_ref()
        .unwrap()
        .ip_strategy
        .as_ref()
        .unwrap();
    assert_eq!(strategy.excluded_ips, ["10.0.0.1"]);
    assert!(
        middlewares["client"]
            .pass_tls_client_cert
            .as_ref()
            .unwrap()
            .pem
    );
    let errors = middlewares["pages"].errors.as_ref().unwrap();
    assert_eq!(errors.status, ["500-599"]);
    assert_eq!(errors.status_rewrites["500-599"], 503);
}

#[test]
fn tls_options_stores_certificates_and_opaque_tcp() {
    let decoded = decode(&[
        ("traefik/tls/options/modern/minversion", "VersionTLS13"),
        (
            "traefik/tls/options/modern/ciphersuites/0",
            "TLS_AES_128_GCM_SHA256",
        ),
        ("traefik/tls/options/modern/sniStrict", "1"),
        ("traefik/tls/options/modern/clientauth/cafiles/0", "/ca.pem"),
        (
            "traefik/tls/stores/default/defaultcertificate/certfile",
            "/d.crt",
        ),
        ("traefik/tls/certificates/1/certfile", "/b.crt"),
        ("traefik/tls/certificates/1/keyfile", "/b.key"),
        ("traefik/tls/certificates/0/certfile", "/a.crt"),
        ("traefik/tls/certificates/0/keyfile", "/a.key"),
        ("traefik/tls/certificates/0/stores/0", "default"),
        ("traefik/tcp/routers/db/rule", "HostSNI(`*`)"),
        ("traefik/tcp/routers/db/entrypoints/0", "pg"),
    ]);
    assert_eq!(decoded.errors, []);
    let tls = decoded.config.tls.unwrap();
    let modern = &tls.options["modern"];
    assert_eq!(modern.min_version, "VersionTLS13");
    assert_eq!(modern.cipher_suites, ["TLS_AES_128_GCM_SHA256"]);
    assert!(modern.sni_strict);
    assert_eq!(modern.client_auth.as_ref().unwrap().ca_files, ["/ca.pem"]);
    let store = tls.stores["default"].default_certificate.as_ref().unwrap();
    assert_eq!(store.cert_file, "/d.crt");
    let files: Vec<_> = tls
        .certificates
        .iter()
        .map(|c| c.cert_file.as_str())
        .collect();
    assert_eq!(files, ["/a.crt", "/b.crt"]);
    assert_eq!(tls.certificates[0].stores, ["default"]);
    assert_eq!(
        decoded.config.tcp.unwrap(),
        serde_json::json!({"routers": {"db": {"rule": "HostSNI(`*`)", "entrypoints": ["pg"]}}})
    );
    assert_eq!(
        decoded.origins["tls.options.modern"],
        "traefik/tls/options/modern"
    );
    assert_eq!(decoded.origins["tcp.routers.db"], "traefik/tcp/routers/db");
}

#[test]
fn sections_and_fields_match_whatever_their_case() {
    let decoded = decode(&[
        ("traefik/HTTP/Routers/Api/RULE", "Path(`/`)"),
        (
            "traefik/http/services/Api/LoadBalancer/Servers/0/URL",
            "http://a",
        ),
        ("traefik/http/services/Api/LoadBalancer/PassHostHeader", "T"),
    ]);
    assert_eq!(decoded.errors, []);
    let http = decoded.config.http.unwrap();
    assert_eq!(http.routers["Api"].rule, "Path(`/`)");
    let lb = http.services["Api"].load_balancer.as_ref().unwrap();
    assert_eq!(lb.servers[0].url, "http://a");
    assert_eq!(lb.pass_host_header, Some(true));
    assert!(!http.routers.contains_key("api"));
}

#[test]
fn a_malformed_key_or_value_drops_only_its_resource_and_names_the_key() {
    let decoded = decode(&[
        ("traefik/http/routers/api/rulee", "Host(`a`)"),
        ("traefik/http/routers/api/service", "api"),
        ("traefik/http/routers/web/rule", "Host(`w`)"),
        ("traefik/http/routers/web/priority", "high"),
        ("traefik/http/routers/ok/rule", "Host(`ok`)"),
        (
            "traefik/http/services/s/loadbalancer/servers/x/url",
            "http://a",
        ),
        (
            "traefik/http/services/t/loadbalancer/passhostheader",
            "maybe",
        ),
        (
            "traefik/http/services/u/loadbalancer/servers/0/url",
            "http://u",
        ),
        ("traefik/http/routerz/x/rule", "r"),
        ("traefik/htp/routers/x/rule", "r"),
        ("traefik/http/middlewares/m/headers", "yes"),
    ]);
    let errors: BTreeMap<&str, &str> = decoded
        .errors
        .iter()
        .map(|error| (error.location.as_str(), error.message.as_str()))
        .collect();
    let expect = |key: &str, parts: &[&str]| {
        let message = errors
            .get(key)
            .unwrap_or_else(|| panic!("no error for {key}: {errors:#?}"));
        for part in parts {
            assert!(message.contains(part), "{key}: {message}");
        }
    };
    expect(
        "traefik/http/routers/api/rulee",
        &["unknown field `rulee`", "router `api` is left out"],
    );
    expect(
        "traefik/http/routers/web/priority",
        &["invalid number `high`"],
    );
    expect(
        "traefik/http/services/s/loadbalancer/servers/x",
        &["list index"],
    );
    expect(
        "traefik/http/services/t/loadbalancer/passhostheader",
        &["invalid boolean `maybe`", "service `t` is left out"],
    );
    expect("traefik/http/routerz", &["unknown key", "`routers`"]);
    expect("traefik/htp", &["unknown key", "`http`"]);
    expect(
        "traefik/http/middlewares/m/headers",
        &["found the value `yes`"],
    );
    assert_eq!(decoded.errors.len(), 7, "{:#?}", decoded.errors);

    let http = decoded.config.http.unwrap();
    assert_eq!(http.routers.keys().collect::<Vec<_>>(), ["ok"]);
    assert_eq!(http.services.keys().collect::<Vec<_>>(), ["u"]);
    assert!(http.middlewares.is_empty());
}

#[test]
fn dotted_tags_decode_with_the_same_rules() {
    let mut tree = KeyTree::new("traefik", '.');
    for (key, value) in [
        ("traefik.http.routers.api.rule", "Host(`a`)"),
        ("traefik.http.routers.api.middlewares", "auth,strip"),
        ("traefik.http.middlewares.auth.basicauth.users", "u:h,v:h"),
    ] {
        tree.insert(key, value).unwrap();
    }
    let decoded = tree.decode();
    assert_eq!(decoded.errors, []);
    let http = decoded.config.http.unwrap();
    assert_eq!(http.routers["api"].middlewares, ["auth", "strip"]);
    let auth = http.middlewares["auth"].basic_auth.as_ref().unwrap();
    assert_eq!(auth.users, ["u:h", "v:h"]);
    assert_eq!(
        decoded.origins["http.routers.api"],
        "traefik.http.routers.api"
    );
}

#[test]
fn ten_thousand_keys_decode_completely() {
    // 2,000 routers and services, five keys each.
    let mut pairs = Vec::new();
    for index in 0..2_000 {
        let router = format!("traefik/http/routers/r{index}");
        let service = format!("traefik/http/services/s{index}/loadbalancer");
        pairs.push((
            format!("{router}/rule"),
            format!("Host(`h{index}.example`)"),
        ));
        pairs.push((format!("{router}/service"), format!("s{index}")));
        pairs.push((format!("{router}/entrypoints/0"), "web".to_owned()));
        pairs.push((
            format!("{service}/servers/0/url"),
            format!("http://10.0.{}.{}:80", index / 256, index % 256),
        ));
        pairs.push((format!("{service}/passhostheader"), "true".to_owned()));
    }
    assert_eq!(pairs.len(), 10_000);
    let mut tree = KeyTree::new("traefik", '/');
    for (key, value) in &pairs {
        tree.insert(key, value).unwrap();
    }
    let decoded = tree.decode();
    assert_eq!(decoded.errors, []);
    let http = decoded.config.http.unwrap();
    assert_eq!(http.routers.len(), 2_000);
    assert_eq!(http.services.len(), 2_000);
    assert_eq!(http.routers["r1999"].rule, "Host(`h1999.example`)");
    assert_eq!(http.routers["r1999"].service, "s1999");
    let lb = http.services["s257"].load_balancer.as_ref().unwrap();
    assert_eq!(lb.servers[0].url, "http://10.0.1.1:80");
    assert_eq!(decoded.origins.len(), 4_000);
}
