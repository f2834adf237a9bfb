use super::*;

fn rules() -> CatalogRules {
    CatalogRules {
        prefix: "traefik".to_owned(),
        exposed_by_default: true,
        default_rule: DefaultRule::parse("Host(`{{ normalize .Name }}.example`)").unwrap(),
        constraints: None,
    }
}

fn instance(id: &str, address: &str, port: u16, tags: &[&str]) -> Instance {
    Instance {
        id: id.to_owned(),
        address: address.to_owned(),
        port,
        tags: tags.iter().map(|tag| (*tag).to_owned()).collect(),
    }
}

fn build(rules: &CatalogRules, services: &[(&str, Vec<Instance>)]) -> CatalogConfig {
    let services = services
        .iter()
        .map(|(name, instances)| ((*name).to_owned(), instances.clone()))
        .collect();
    rules.build(&services)
}

fn urls(config: &CatalogConfig, service: &str) -> Vec<String> {
    let http = config.config.http.as_ref().unwrap();
    let balancer = http.services[service].load_balancer.as_ref().unwrap();
    balancer
        .servers
        .iter()
        .map(|server| server.url.clone())
        .collect()
}

#[test]
fn default_rule_templates() {
    let rule =
        DefaultRule::parse("Host(`{{ normalize .Name }}`) || Host(`{{.Name}}.local`)").unwrap();
    assert_eq!(
        rule.render("my_api.v2"),
        "Host(`my-api-v2`) || Host(`my_api.v2.local`)"
    );
    let error = DefaultRule::parse("Host(`{{ .Labels.host }}`)")
        .unwrap_err()
        .to_string();
    assert!(error.contains("`{{ .Labels.host }}`"), "{error}");
    assert!(
        error.contains("defaultRule `Host(`{{ .Labels.host }}`)`"),
        "{error}"
    );
    assert!(DefaultRule::parse("Host(`{{ .Name `)").is_err());
    assert_eq!(normalize("--web__app--1"), "web-app-1");
}

#[test]
fn untagged_services_get_a_load_balancer_and_the_default_router() {
    let config = build(
        &rules(),
        &[(
            "web_app",
            vec![
                instance("web-1", "10.0.0.1", 8080, &["v1"]),
                instance("web-2", "10.0.0.2", 8081, &[]),
            ],
        )],
    );
    assert_eq!(config.errors, []);
    let http = config.config.http.as_ref().unwrap();
    let router = &http.routers["web-app"];
    assert_eq!(router.rule, "Host(`web-app.example`)");
    assert_eq!(router.service, "web-app");
    assert_eq!(
        urls(&config, "web-app"),
        ["http://10.0.0.1:8080", "http://10.0.0.2:8081"]
    );
    assert_eq!(
        config.origins["http.routers.web-app"],
        "consul catalog service `web_app`"
    );
}

#[test]
fn tags_define_routers_middlewares_and_server_overrides() {
    let tags = [
        "traefik.http.routers.api.rule=PathPrefix(`/api`)",
        "traefik.http.routers.api.middlewares=strip",
        "traefik.http.routers.api.entrypoints=web",
        "traefik.http.middlewares.strip.stripprefix.prefixes=/api",
        "traefik.http.services.api-svc.loadbalancer.server.port=9000",
        "traefik.http.services.api-svc.loadbalancer.server.scheme=h2c",
        "traefik.http.services.api-svc.loadbalancer.passhostheader=false",
        "unrelated=tag",
        "other.http.routers.x.rule=y",
    ];
    let config = build(
        &rules(),
        &[("api", vec![instance("api-1", "::1", 80, &tags)])],
    );
    assert_eq!(config.errors, []);
    let http = config.config.http.as_ref().unwrap();
    assert_eq!(http.routers.keys().collect::<Vec<_>>(), ["api"]);
    let router = &http.routers["api"];
    assert_eq!(router.rule, "PathPrefix(`/api`)");
    assert_eq!(router.service, "api-svc");
    assert_eq!(router.middlewares, ["strip"]);
    assert_eq!(router.entry_points, ["web"]);
    let strip = http.middlewares["strip"].strip_prefix.as_ref().unwrap();
    assert_eq!(strip.prefixes, ["/api"]);
    assert_eq!(urls(&config, "api-svc"), ["h2c://[::1]:9000"]);
    let balancer = http.services["api-svc"].load_balancer.as_ref().unwrap();
    assert_eq!(balancer.pass_host_header, Some(false));
}

#[test]
fn routers_without_rule_or_service_get_the_defaults() {
    let tags = ["traefik.http.routers.web.entrypoints=websecure"];
    let config = build(
        &rules(),
        &[("shop", vec![instance("s1", "10.0.0.1", 80, &tags)])],
    );
    let http = config.config.http.as_ref().unwrap();
    assert_eq!(http.routers["web"].rule, "Host(`shop.example`)");
    assert_eq!(http.routers["web"].service, "shop");

    let two = [
        "traefik.http.routers.web.rule=Path(`/`)",
        "traefik.http.services.a.loadbalancer.server.port=1",
        "traefik.http.services.b.loadbalancer.server.port=2",
    ];
    let config = build(
        &rules(),
        &[("shop", vec![instance("s1", "10.0.0.1", 80, &two)])],
    );
    assert!(config.config.http.as_ref().unwrap().routers.is_empty());
    assert_eq!(config.errors.len(), 1);
    assert_eq!(
        config.errors[0].key.as_deref(),
        Some("traefik.http.routers.web.service")
    );
}

#[test]
fn enable_constraints_and_exposed_by_default() {
    let services = [
        (
            "on",
            vec![instance(
                "on-1",
                "10.0.0.1",
                80,
                &["traefik.enable=true", "public"],
            )],
        ),
        (
            "off",
            vec![instance(
                "off-1",
                "10.0.0.2",
                80,
                &["traefik.enable=false", "public"],
            )],
        ),
        (
            "plain",
            vec![instance("plain-1", "10.0.0.3", 80, &["public"])],
        ),
        ("private", vec![instance("private-1", "10.0.0.4", 80, &[])]),
    ];
    let routers = |config: &CatalogConfig| -> Vec<String> {
        config
            .config
            .http
            .as_ref()
            .map_or_else(Vec::new, |http| http.routers.keys().cloned().collect())
    };
    assert_eq!(
        routers(&build(&rules(), &services)),
        ["on", "plain", "private"]
    );
    let opt_in = CatalogRules {
        exposed_by_default: false,
        ..rules()
    };
    assert_eq!(routers(&build(&opt_in, &services)), ["on"]);
    let constrained = CatalogRules {
        constraints: Some(Constraint::parse("Tag(`public`)").unwrap()),
        ..rules()
    };
    assert_eq!(routers(&build(&constrained, &services)), ["on", "plain"]);
}

#[test]
fn bad_tags_name_the_instance_and_the_key_and_connect_is_refused() {
    let services = [
        (
            "api",
            vec![instance(
                "api-1",
                "10.0.0.1",
                80,
                &[
                    "traefik.http.routers.api.rulee=Path(`/`)",
                    "traefik.http.services.api.loadbalancer.server.port=http",
                ],
            )],
        ),
        (
            "mesh",
            vec![instance(
                "mesh-1",
                "10.0.0.2",
                80,
                &["traefik.consulcatalog.connect=true"],
            )],
        ),
        (
            "odd",
            vec![instance("odd-1", "10.0.0.3", 80, &["traefik.enable=yes"])],
        ),
    ];
    let config = build(&rules(), &services);
    let keys: Vec<(&str, &str)> = config
        .errors
        .iter()
        .map(|error| {
            (
                error.location.as_str(),
                error.key.as_deref().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        keys,
        [
            (
                "service `api` instance `api-1`",
                "traefik.http.services.api.loadbalancer.server.port"
            ),
            (
                "service `api` instance `api-1`",
                "traefik.http.routers.api.rulee"
            ),
            (
                "service `mesh` instance `mesh-1`",
                "traefik.consulcatalog.connect"
            ),
            ("service `odd` instance `odd-1`", "traefik.enable"),
        ],
        "{:#?}",
        config.errors
    );
    // The broken router is left out; the service still gets its default router.
    let http = config.config.http.as_ref().unwrap();
    assert_eq!(http.routers.keys().collect::<Vec<_>>(), ["api"]);
    assert_eq!(http.routers["api"].rule, "Host(`api.example`)");
    assert_eq!(urls(&config, "api"), ["http://10.0.0.1:80"]);
}

#[test]
fn instances_that_disagree_keep_the_first_definition() {
    let services = [(
        "api",
        vec![
            instance(
                "a",
                "10.0.0.1",
                80,
                &["traefik.http.routers.api.rule=Path(`/a`)"],
            ),
            instance(
                "b",
                "10.0.0.2",
                80,
                &["traefik.http.routers.api.rule=Path(`/b`)"],
            ),
        ],
    )];
    let config = build(&rules(), &services);
    let http = config.config.http.as_ref().unwrap();
    assert_eq!(http.routers["api"].rule, "Path(`/a`)");
    assert_eq!(
        urls(&config, "api"),
        ["http://10.0.0.1:80", "http://10.0.0.2:80"]
    );
    assert_eq!(config.errors.len(), 1);
    assert_eq!(config.errors[0].location, "service `api` instance `b`");
    assert_eq!(config.errors[0].key.as_deref(), Some("http.routers.api"));
}
