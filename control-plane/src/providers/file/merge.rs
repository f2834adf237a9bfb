//! Merging the files' configurations in path order. The first definition of
//! a name wins; a later one is an error on its file naming the first.
//!
//! With thousands of routers in one file, merging runs on every change, so
//! it never searches a growing map: definitions are gathered in file order,
//! sorted by name once (a sorted file is a single run), and each map of the
//! result is built from its sorted entries.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::path::Path;
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::dynamic::{
    DynamicConfig, HttpConfig, MiddlewareConfig, RouterConfig, ServersTransportConfig,
    ServiceConfig, TlsCertificateConfig, TlsConfig, TlsOptionsConfig, TlsStoreConfig,
};
use crate::providers::SourceError;

/// The merge so far.
#[derive(Default)]
pub(super) struct Merged<'a> {
    /// Every file added, as errors and origins show it.
    files: Vec<String>,
    http: Option<HttpDefinitions<'a>>,
    tls: Option<TlsDefinitions<'a>>,
    opaque: OpaqueSections<'a>,
    /// Duplicates and malformed tables in `opaque`.
    errors: Vec<SourceError>,
}

/// `tcp` and `udp`, kept as JSON and merged by `<kind>.<name>` the same way
/// (`tcp.routers.db`).
#[derive(Default)]
struct OpaqueSections<'a> {
    tcp: Option<Value>,
    udp: Option<Value>,
    /// The defining file of each name (these sections are rare and small).
    owners: BTreeMap<ModelKey<'a>, usize>,
}

#[derive(Default)]
struct HttpDefinitions<'a> {
    routers: Definitions<'a, Arc<RouterConfig>>,
    services: Definitions<'a, ServiceConfig>,
    middlewares: Definitions<'a, MiddlewareConfig>,
    servers_transports: Definitions<'a, ServersTransportConfig>,
}

#[derive(Default)]
struct TlsDefinitions<'a> {
    certificates: Vec<TlsCertificateConfig>,
    options: Definitions<'a, TlsOptionsConfig>,
    stores: Definitions<'a, TlsStoreConfig>,
}

/// Every definition of one section's names: (name, file, definition), in
/// file order.
struct Definitions<'a, T>(Vec<(&'a str, usize, &'a T)>);

impl<T> Default for Definitions<'_, T> {
    fn default() -> Self {
        Self(Vec::new())
    }
}

/// A name's place in the model: `http.routers.api` is (`http`, `routers`,
/// `api`).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct ModelKey<'a> {
    section: &'static str,
    kind: &'a str,
    name: &'a str,
}

impl ModelKey<'_> {
    /// The dotted key, as origins and errors name it.
    fn render(&self) -> String {
        let mut key =
            String::with_capacity(self.section.len() + self.kind.len() + self.name.len() + 2);
        key.push_str(self.section);
        key.push('.');
        key.push_str(self.kind);
        key.push('.');
        key.push_str(self.name);
        key
    }
}

/// What the merge yields besides the configuration.
struct Findings<'f> {
    files: &'f [String],
    /// The file that defined each name, in no particular order.
    origins: Vec<(String, String)>,
    errors: Vec<SourceError>,
}

/// The error on a later definition of `key` (in `file`), naming the first.
fn duplicate(files: &[String], key: &ModelKey<'_>, file: usize, owner: usize) -> SourceError {
    SourceError {
        location: files[file].clone(),
        message: format!(
            "already defined in `{}`; this definition is ignored",
            files[owner]
        ),
        key: Some(key.render()),
    }
}

impl<'a, T: Clone> Definitions<'a, T> {
    fn add(&mut self, source: &'a BTreeMap<String, T>, file: usize) {
        let definitions = source
            .iter()
            .map(|(name, value)| (name.as_str(), file, value));
        self.0.extend(definitions);
    }

    /// The first definition of each name; later ones are reported.
    fn resolve(
        mut self,
        (section, kind): (&'static str, &'static str),
        findings: &mut Findings<'_>,
    ) -> BTreeMap<String, T> {
        // Stable: a name's definitions stay in file order.
        self.0.sort_by(|a, b| a.0.cmp(b.0));
        let mut chosen: Vec<(String, T)> = Vec::with_capacity(self.0.len());
        findings.origins.reserve(self.0.len());
        let mut owner = None;
        for (name, file, value) in self.0 {
            let key = ModelKey {
                section,
                kind,
                name,
            };
            match owner {
                Some((owned, owner_file)) if owned == name => {
                    let error = duplicate(findings.files, &key, file, owner_file);
                    findings.errors.push(error);
                }
                _ => {
                    owner = Some((name, file));
                    findings
                        .origins
                        .push((key.render(), findings.files[file].clone()));
                    chosen.push((name.to_owned(), value.clone()));
                }
            }
        }
        // Sorted and unique: the map is built without a search.
        chosen.into_iter().collect()
    }
}

impl<'a> Merged<'a> {
    /// Adds one file's configuration; call in path order.
    pub(super) fn add(&mut self, file: &Path, config: &'a DynamicConfig) {
        self.files.push(file.display().to_string());
        let file = self.files.len() - 1;
        if let Some(http) = &config.http {
            let target = self.http.get_or_insert_with(HttpDefinitions::default);
            target.routers.add(&http.routers, file);
            target.services.add(&http.services, file);
            target.middlewares.add(&http.middlewares, file);
            target
                .servers_transports
                .add(&http.servers_transports, file);
        }
        if let Some(tls) = &config.tls {
            let target = self.tls.get_or_insert_with(TlsDefinitions::default);
            target.certificates.extend(tls.certificates.iter().cloned());
            target.options.add(&tls.options, file);
            target.stores.add(&tls.stores, file);
        }
        for (section, source) in [("tcp", &config.tcp), ("udp", &config.udp)] {
            if let Some(source) = source {
                let errors = &mut self.errors;
                self.opaque.add(section, source, file, &self.files, errors);
            }
        }
    }

    /// The merged configuration, the file that defined each name
    /// (`http.routers.api` to its path), and the duplicate-name errors.
    pub(super) fn finish(self) -> (DynamicConfig, BTreeMap<String, String>, Vec<SourceError>) {
        let mut findings = Findings {
            files: &self.files,
            origins: Vec::new(),
            errors: Vec::new(),
        };
        let http = self.http.map(|http| HttpConfig {
            routers: http.routers.resolve(("http", "routers"), &mut findings),
            services: http.services.resolve(("http", "services"), &mut findings),
            middlewares: http
                .middlewares
                .resolve(("http", "middlewares"), &mut findings),
            servers_transports: http
                .servers_transports
                .resolve(("http", "serversTransports"), &mut findings),
        });
        let tls = self.tls.map(|tls| TlsConfig {
            certificates: tls.certificates,
            options: tls.options.resolve(("tls", "options"), &mut findings),
            stores: tls.stores.resolve(("tls", "stores"), &mut findings),
        });
        let Findings {
            mut origins,
            mut errors,
            ..
        } = findings;
        let OpaqueSections { tcp, udp, owners } = self.opaque;
        origins.extend(
            owners
                .into_iter()
                .map(|(key, file)| (key.render(), self.files[file].clone())),
        );
        errors.extend(self.errors);
        let config = DynamicConfig {
            http,
            tls,
            tcp,
            udp,
        };
        (config, origins.into_iter().collect(), errors)
    }
}

impl<'a> OpaqueSections<'a> {
    /// Adds one file's `section` (`tcp` or `udp`); call in path order.
    fn add(
        &mut self,
        section: &'static str,
        source: &'a Value,
        file: usize,
        files: &[String],
        errors: &mut Vec<SourceError>,
    ) {
        let target = if section == "tcp" {
            &mut self.tcp
        } else {
            &mut self.udp
        };
        let target = target.get_or_insert_with(|| Value::Object(Map::new()));
        let (Value::Object(target_kinds), Value::Object(kinds)) = (target, source) else {
            return errors.push(not_a_table(files, section, file));
        };
        for (kind, entries) in kinds {
            let target = target_kinds
                .entry(kind.clone())
                .or_insert_with(|| Value::Object(Map::new()));
            let (Value::Object(target_entries), Value::Object(entries)) = (target, entries) else {
                errors.push(not_a_table(files, &format!("{section}.{kind}"), file));
                continue;
            };
            for (name, value) in entries {
                let key = ModelKey {
                    section,
                    kind,
                    name,
                };
                match self.owners.entry(key) {
                    Entry::Vacant(vacant) => {
                        vacant.insert(file);
                        target_entries.insert(name.clone(), value.clone());
                    }
                    Entry::Occupied(occupied) => {
                        errors.push(duplicate(files, &key, file, *occupied.get()));
                    }
                }
            }
        }
    }
}

/// The error on a `key` in `file` that should hold a table of names.
fn not_a_table(files: &[String], key: &str, file: usize) -> SourceError {
    SourceError {
        location: files[file].clone(),
        key: Some(key.to_owned()),
        message: "expected a table of names; ignored".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn config(value: Value) -> DynamicConfig {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn first_file_wins_and_the_second_is_told_where() {
        let a = config(json!({
            "http": {"routers": {"api": {"rule": "Host(`a`)", "service": "a"}}},
            "tls": {"certificates": [{"certFile": "a.crt", "keyFile": "a.key"}],
                    "options": {"default": {"minVersion": "VersionTLS12"}}},
            "tcp": {"routers": {"db": {"rule": "HostSNI(`*`)"}}},
        }));
        let b = config(json!({
            "http": {"routers": {"api": {"rule": "Host(`b`)"}, "web": {"rule": "Host(`w`)"}}},
            "tls": {"certificates": [{"certFile": "b.crt", "keyFile": "b.key"}],
                    "options": {"default": {"minVersion": "VersionTLS13"}}},
            "tcp": {"routers": {"db": {}, "cache": {}}},
        }));
        let mut merged = Merged::default();
        merged.add(Path::new("/d/a.yml"), &a);
        merged.add(Path::new("/d/b.yml"), &b);
        let (config, origins, errors) = merged.finish();

        let http = config.http.unwrap();
        assert_eq!(http.routers["api"].rule, "Host(`a`)");
        assert!(http.routers.contains_key("web"));
        let tls = config.tls.unwrap();
        assert_eq!(tls.certificates.len(), 2);
        assert_eq!(tls.options["default"].min_version, "VersionTLS12");
        assert_eq!(
            config.tcp.unwrap()["routers"],
            json!({"db": {"rule": "HostSNI(`*`)"}, "cache": {}})
        );

        assert_eq!(origins["http.routers.api"], "/d/a.yml");
        assert_eq!(origins["http.routers.web"], "/d/b.yml");
        assert_eq!(origins["tcp.routers.cache"], "/d/b.yml");

        let keys: Vec<_> = errors.iter().map(|e| e.key.as_deref().unwrap()).collect();
        assert_eq!(
            keys,
            ["http.routers.api", "tls.options.default", "tcp.routers.db"]
        );
        for error in &errors {
            assert_eq!(error.location, "/d/b.yml");
            assert!(
                error.message.contains("already defined in `/d/a.yml`"),
                "{error}"
            );
        }
    }

    #[test]
    fn with_a_name_in_many_files_the_first_in_path_order_wins() {
        let router = |rule: &str, names: &[&str]| {
            let routers: Map<String, Value> = names
                .iter()
                .map(|name| ((*name).to_owned(), json!({"rule": rule})))
                .collect();
            config(json!({"http": {"routers": routers}}))
        };
        // Many names around `api`, so the sort has real work to keep stable.
        let filler: Vec<String> = (0..50).map(|index| format!("r{index}")).collect();
        let mut names: Vec<&str> = filler.iter().map(String::as_str).collect();
        names.push("api");
        let (a, b, c) = (
            router("Host(`a`)", &["api"]),
            router("Host(`b`)", &names),
            router("Host(`c`)", &["api", "z"]),
        );
        let mut merged = Merged::default();
        merged.add(Path::new("/d/a.yml"), &a);
        merged.add(Path::new("/d/b.yml"), &b);
        merged.add(Path::new("/d/c.yml"), &c);
        let (config, origins, errors) = merged.finish();

        let routers = config.http.unwrap().routers;
        assert_eq!(routers["api"].rule, "Host(`a`)");
        assert_eq!(routers["r7"].rule, "Host(`b`)");
        assert_eq!(routers["z"].rule, "Host(`c`)");
        assert_eq!(routers.len(), 52);
        assert_eq!(origins["http.routers.api"], "/d/a.yml");
        let duplicates: Vec<(&str, &str)> = errors
            .iter()
            .map(|error| (error.location.as_str(), error.key.as_deref().unwrap()))
            .collect();
        assert_eq!(
            duplicates,
            [
                ("/d/b.yml", "http.routers.api"),
                ("/d/c.yml", "http.routers.api")
            ]
        );
    }
}
