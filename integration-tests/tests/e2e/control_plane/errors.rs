//! Broken configuration: `validate` names every error with its location,
//! the running control plane leaves out only what is broken, never prints a
//! secret, and never takes down what was fine.

use integration_tests::{ControlPlane, eventually, get, grpcurl, printed};
use serde_json::{Value, json};

use super::{CHANGE_DEADLINE, routes_file, snapshot_rules, stdout_json, wait_for_routes};

/// The rule of [`GOOD_FILE`]'s router.
const GOOD_RULE: &str = "Host(`good.example`)";
/// The rule in [`BROKEN_FILE`]: the string opened at column 29 is never closed.
const BAD_RULE: &str = "Host(`a.com`) && PathPrefix(`/x";
/// The password hash in [`GOOD_FILE`].
const HASH: &str = "$apr1$H6uskkkW$IgXLP6ewTrSuBkTrqE8wj/";

/// A good router behind a basicAuth middleware, and its service.
const GOOD_FILE: &str = r#"
http:
  routers:
    good:
      rule: "Host(`good.example`)"
      service: backend
      middlewares: [auth]
  services:
    backend:
      loadBalancer:
        servers:
          - url: "http://127.0.0.1:9"
  middlewares:
    auth:
      basicAuth:
        users:
          - "test:$apr1$H6uskkkW$IgXLP6ewTrSuBkTrqE8wj/"
"#;

/// A router with a bad rule ([`BAD_RULE`]) and one naming a missing
/// service: the file parses, both routers fail to compile.
const BROKEN_FILE: &str = r#"
http:
  routers:
    badrule:
      rule: "Host(`a.com`) && PathPrefix(`/x"
      service: backend
    orphan:
      rule: "Host(`orphan.example`)"
      service: missing
"#;

/// An unknown key: the whole file is rejected, as Traefik does.
const TYPO_FILE: &str = r#"
http:
  routers:
    typo:
      rulee: "Host(`typo.example`)"
      service: backend
"#;

/// The line of `text` that mentions `needle`, failing with the whole text.
fn line_with<'a>(text: &'a str, needle: &str) -> &'a str {
    text.lines()
        .find(|line| line.contains(needle))
        .unwrap_or_else(|| panic!("no line mentions `{needle}` in:\n{text}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn validate_names_each_error_and_the_running_control_plane_ships_the_rest() {
    let control_plane = ControlPlane::start(
        &["web"],
        &[
            ("good.yml", GOOD_FILE),
            ("broken.yml", BROKEN_FILE),
            ("typo.yml", TYPO_FILE),
        ],
    )
    .await;
    let broken_path = control_plane
        .dynamic_path("broken.yml")
        .display()
        .to_string();
    let typo_path = control_plane.dynamic_path("typo.yml").display().to_string();

    // `validate` prints every error with file, key and (for rules) column.
    let validated = control_plane.validate();
    let printed = printed(&validated);
    assert_eq!(validated.status.code(), Some(1), "{printed}");
    let bad_rule = line_with(&printed, "badrule");
    for expected in [
        broken_path.as_str(),
        "http.routers.badrule",
        BAD_RULE,
        "column 29",
    ] {
        assert!(
            bad_rule.contains(expected),
            "`{expected}` missing from: {bad_rule}"
        );
    }
    let typo = line_with(&printed, "rulee");
    for expected in [
        typo_path.as_str(),
        "http.routers.typo.rulee",
        "unknown field `rulee`",
    ] {
        assert!(typo.contains(expected), "`{expected}` missing from: {typo}");
    }
    let orphan = line_with(&printed, "orphan");
    for expected in [
        broken_path.as_str(),
        "http.routers.orphan",
        "`missing@file`",
    ] {
        assert!(
            orphan.contains(expected),
            "`{expected}` missing from: {orphan}"
        );
    }
    assert!(
        !printed.contains(HASH),
        "validate printed the hash: {printed}"
    );

    // The running control plane ships the good router, and only it.
    wait_for_routes(&control_plane, &[("good@file", GOOD_RULE)]).await;
    let snapshot = stdout_json(&grpcurl(
        &[],
        &control_plane.grpc_address,
        &["sluice.v1.SnapshotService/GetSnapshot"],
    ));
    let routers: Vec<&Value> = snapshot["resources"]["routers"]
        .as_array()
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(routers.len(), 1, "{snapshot:#}");
    assert_eq!(routers[0]["name"], "good@file");
    assert_eq!(routers[0]["middlewares"], json!(["auth@file"]));

    // /api/rawdata shows the broken routers disabled, with their errors.
    let rawdata = control_plane.api("/api/rawdata").await;
    let routers = &rawdata["routers"];
    assert_eq!(routers["good@file"]["status"], "enabled", "{rawdata:#}");
    let badrule = &routers["badrule@file"];
    assert_eq!(badrule["status"], "disabled", "{rawdata:#}");
    assert_eq!(badrule["origin"], broken_path.as_str());
    let badrule_error = badrule["errors"][0].as_str().unwrap_or_default();
    assert!(
        badrule_error.contains(BAD_RULE) && badrule_error.contains("column 29"),
        "{badrule:#}"
    );
    let orphan = &routers["orphan@file"];
    assert_eq!(orphan["status"], "disabled", "{rawdata:#}");
    assert!(
        orphan["errors"][0]
            .as_str()
            .unwrap_or_default()
            .contains("`missing@file`"),
        "{orphan:#}"
    );
    // The file with an unknown key is rejected whole: its error is listed
    // with the file and key, and its router is not served.
    let errors = rawdata["errors"].as_array().expect("rawdata lists errors");
    assert!(
        errors
            .iter()
            .any(|error| error["origin"] == typo_path.as_str()
                && error["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("http.routers.typo.rulee"))),
        "{errors:#?}"
    );
    assert!(
        routers
            .get("typo@file")
            .is_none_or(|typo| typo["status"] == "disabled")
    );

    // One router by name.
    let one = control_plane.api("/api/http/routers/badrule@file").await;
    assert_eq!(one["name"], "badrule@file");
    assert_eq!(one["status"], "disabled");
    assert_eq!(one["config"]["rule"], BAD_RULE);
    let one = control_plane.api("/api/http/routers/good@file").await;
    assert_eq!(one["status"], "enabled");
    assert_eq!(one["config"]["middlewares"], json!(["auth"]));
    let missing = get(&format!(
        "{}/api/http/routers/nope@file",
        control_plane.api_url
    ))
    .await
    .expect("admin API answers");
    assert_eq!(missing.status, 404);

    // Secrets: the user name is shown, the hash never.
    assert_eq!(
        rawdata["middlewares"]["auth@file"]["config"]["basicAuth"]["users"],
        json!(["test:<redacted>"])
    );
    for path in [
        "/api/rawdata",
        "/api/errors",
        "/api/entrypoints",
        "/api/http/routers",
        "/api/http/routers/good@file",
        "/api/http/services",
        "/api/http/middlewares",
        "/api/http/middlewares/auth@file",
        "/api/nodes",
        "/api/snapshot",
        "/api/version",
    ] {
        let response = get(&format!("{}{path}", control_plane.api_url))
            .await
            .unwrap_or_else(|error| panic!("{path}: {error}"));
        assert_eq!(response.status, 200, "{path}: {}", response.body);
        assert!(
            !response.body.contains(HASH) && !response.body.contains("IgXLP6ewTrSuBkTrqE8wj"),
            "{path} shows the password hash: {}",
            response.body
        );
    }

    // Once the broken files are gone, `validate` passes and the errors clear.
    control_plane.remove_dynamic("broken.yml");
    control_plane.remove_dynamic("typo.yml");
    let validated = control_plane.validate();
    let printed = String::from_utf8_lossy(&validated.stdout);
    assert_eq!(validated.status.code(), Some(0), "{printed}");
    assert!(printed.contains("configuration is valid"), "{printed}");
    eventually("/api/errors to be empty", CHANGE_DEADLINE, || async {
        let errors = control_plane.api("/api/errors").await;
        if errors == json!([]) {
            Ok(())
        } else {
            Err(format!("errors: {errors}"))
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broken_edit_never_takes_down_routes_that_were_fine() {
    let shop = "Host(`shop.example`)";
    let blog = "Host(`blog.example`)";
    let control_plane = ControlPlane::start(
        &["web"],
        &[(
            "routes.yml",
            &routes_file(&[("shop", shop), ("blog", blog)]),
        )],
    )
    .await;
    let good = wait_for_routes(&control_plane, &[("shop@file", shop), ("blog@file", blog)]).await;
    let path = control_plane.dynamic_path("routes.yml");
    let path_text = path.display().to_string();

    // A partial write, in place: the new file cut inside a quoted string.
    let shop2 = "Host(`shop2.example`)";
    let next = routes_file(&[
        ("shop", shop2),
        ("blog", blog),
        ("news", "Host(`news.example`)"),
    ]);
    let cut = next.find("shop2.exa").expect("the rule is in the file") + "shop2.exa".len();
    std::fs::write(&path, &next[..cut]).expect("writing the partial file");
    let error = eventually(
        "/api/errors to name the broken file",
        CHANGE_DEADLINE,
        || async {
            let errors = control_plane.api("/api/errors").await;
            errors
                .as_array()
                .into_iter()
                .flatten()
                .find(|error| error["origin"] == path_text.as_str())
                .cloned()
                .ok_or_else(|| format!("errors: {errors}"))
        },
    )
    .await;
    assert!(
        error["text"]
            .as_str()
            .is_some_and(|text| text.contains(&path_text)),
        "{error:#}"
    );
    // The previous routes still ship, unchanged.
    let snapshot = control_plane.api("/api/snapshot").await;
    assert_eq!(snapshot["version"], good.as_str(), "{snapshot:#}");
    assert_eq!(
        snapshot_rules(&snapshot),
        [("blog@file", blog), ("shop@file", shop)]
            .into_iter()
            .map(|(name, rule)| (name.to_owned(), rule.to_owned()))
            .collect()
    );

    // Fixed: the new content ships and the error clears.
    control_plane.write_dynamic("routes.yml", &next);
    wait_for_routes(
        &control_plane,
        &[
            ("shop@file", shop2),
            ("blog@file", blog),
            ("news@file", "Host(`news.example`)"),
        ],
    )
    .await;
    eventually("/api/errors to be empty", CHANGE_DEADLINE, || async {
        let errors = control_plane.api("/api/errors").await;
        if errors == json!([]) {
            Ok(())
        } else {
            Err(format!("errors: {errors}"))
        }
    })
    .await;
}
