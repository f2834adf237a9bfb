//! Merging the files' configurations in path order. The first definition of
//! a name wins; a later one is an error on its file naming the first.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::path::Path;

use serde_json::{Map, Value};

use crate::dynamic::{DynamicConfig, HttpConfig, TlsConfig};
use crate::providers::SourceError;

/// The merge so far.
#[derive(Default)]
pub(super) struct Merged<'a> {
    config: DynamicConfig,
    claims: Claims<'a>,
}

/// Which file defined each name (`http.routers.api`), and the duplicates.
#[derive(Default)]
struct Claims<'a> {
    owners: BTreeMap<String, &'a Path>,
    errors: Vec<SourceError>,
}

impl<'a> Merged<'a> {
    /// Adds one file's configuration; call in path order.
    pub(super) fn add(&mut self, file: &'a Path, config: &DynamicConfig) {
        let claims = &mut self.claims;
        if let Some(http) = &config.http {
            let target = self.config.http.get_or_insert_with(HttpConfig::default);
            claims.section(&mut target.routers, &http.routers, "http.routers", file);
            claims.section(&mut target.services, &http.services, "http.services", file);
            let middlewares = &http.middlewares;
            claims.section(
                &mut target.middlewares,
                middlewares,
                "http.middlewares",
                file,
            );
            let transports = &http.servers_transports;
            let section = "http.serversTransports";
            claims.section(&mut target.servers_transports, transports, section, file);
        }
        if let Some(tls) = &config.tls {
            let target = self.config.tls.get_or_insert_with(TlsConfig::default);
            target.certificates.extend(tls.certificates.iter().cloned());
            claims.section(&mut target.options, &tls.options, "tls.options", file);
            claims.section(&mut target.stores, &tls.stores, "tls.stores", file);
        }
        if let Some(tcp) = &config.tcp {
            claims.opaque(&mut self.config.tcp, tcp, "tcp", file);
        }
        if let Some(udp) = &config.udp {
            claims.opaque(&mut self.config.udp, udp, "udp", file);
        }
    }

    /// The merged configuration, the file that defined each name
    /// (`http.routers.api` to its path), and the duplicate-name errors.
    pub(super) fn finish(self) -> (DynamicConfig, BTreeMap<String, String>, Vec<SourceError>) {
        let origins = self
            .claims
            .owners
            .into_iter()
            .map(|(key, file)| (key, file.display().to_string()))
            .collect();
        (self.config, origins, self.claims.errors)
    }
}

impl<'a> Claims<'a> {
    /// Records `file` as the owner of `key`; false (and an error) if another
    /// file already is.
    fn claim(&mut self, key: String, file: &'a Path) -> bool {
        match self.owners.entry(key) {
            Entry::Vacant(vacant) => {
                vacant.insert(file);
                true
            }
            Entry::Occupied(occupied) => {
                self.errors.push(SourceError {
                    location: file.display().to_string(),
                    message: format!(
                        "already defined in `{}`; this definition is ignored",
                        occupied.get().display()
                    ),
                    key: Some(occupied.key().clone()),
                });
                false
            }
        }
    }

    fn not_a_table(&mut self, key: &str, file: &Path) {
        self.errors.push(SourceError {
            location: file.display().to_string(),
            key: Some(key.to_owned()),
            message: "expected a table of names; ignored".to_owned(),
        });
    }

    fn section<T: Clone>(
        &mut self,
        target: &mut BTreeMap<String, T>,
        source: &BTreeMap<String, T>,
        section: &str,
        file: &'a Path,
    ) {
        for (name, value) in source {
            if self.claim(format!("{section}.{name}"), file) {
                target.insert(name.clone(), value.clone());
            }
        }
    }

    /// `tcp` and `udp` are kept as JSON: merged by `<kind>.<name>` the same
    /// way (`tcp.routers.db`).
    fn opaque(
        &mut self,
        target: &mut Option<Value>,
        source: &Value,
        section: &str,
        file: &'a Path,
    ) {
        let target = target.get_or_insert_with(|| Value::Object(Map::new()));
        let (Value::Object(target_kinds), Value::Object(kinds)) = (target, source) else {
            return self.not_a_table(section, file);
        };
        for (kind, entries) in kinds {
            let target = target_kinds
                .entry(kind.clone())
                .or_insert_with(|| Value::Object(Map::new()));
            let (Value::Object(target_entries), Value::Object(entries)) = (target, entries) else {
                self.not_a_table(&format!("{section}.{kind}"), file);
                continue;
            };
            for (name, value) in entries {
                if self.claim(format!("{section}.{kind}.{name}"), file) {
                    target_entries.insert(name.clone(), value.clone());
                }
            }
        }
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
}
