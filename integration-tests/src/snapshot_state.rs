//! What a proxy holds, by name and content version, and what each
//! `SnapshotUpdate` changed in it: for scenarios and benchmarks that check
//! a change reaches the proxies as the smallest delta.

use std::collections::BTreeMap;
use std::fmt;

use sluice_proto::ResourceNames;
use sluice_proto::v1::{ResourceKind, Resources, SnapshotUpdate};

/// Content versions by kind (`routers`, `services`...) then name.
#[derive(Debug, Clone, Default)]
pub struct SnapshotState {
    resources: BTreeMap<&'static str, BTreeMap<String, String>>,
}

/// A content version that changed: `None` when the resource did not exist
/// before, or does not after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionChange {
    pub kind: &'static str,
    pub name: String,
    pub before: Option<String>,
    pub after: Option<String>,
}

/// What one update carried and what it changed.
#[derive(Debug, Clone, Default)]
pub struct DeltaSummary {
    pub version: String,
    pub base_version: String,
    pub full_state: bool,
    /// Resources sent, by kind.
    pub upserts: BTreeMap<&'static str, Vec<String>>,
    /// Resources removed, as `kind/name`.
    pub removals: Vec<String>,
    /// Content versions that differ from before the update.
    pub changed: Vec<VersionChange>,
    /// Resources held after the update, by kind.
    pub totals: BTreeMap<&'static str, usize>,
}

impl DeltaSummary {
    /// How many resources the update carried.
    pub fn upsert_count(&self) -> usize {
        self.upserts.values().map(Vec::len).sum()
    }
}

/// One line, `key=value` separated by spaces, for logs and benchmark
/// drivers: `version= base= full= upserts=routers:1,services:2 removals=0
/// totals=... changed=<n> changes=service:name:old>new;...` (the first 10
/// changes).
impl fmt::Display for DeltaSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let counts = |map: &mut dyn Iterator<Item = (&&str, usize)>| {
            map.map(|(kind, count)| format!("{kind}:{count}"))
                .collect::<Vec<_>>()
                .join(",")
        };
        let changes: Vec<String> = self
            .changed
            .iter()
            .take(10)
            .map(|change| {
                format!(
                    "{}:{}:{}>{}",
                    change.kind,
                    change.name,
                    change.before.as_deref().unwrap_or("-"),
                    change.after.as_deref().unwrap_or("-")
                )
            })
            .collect();
        write!(
            f,
            "version={} base={} full={} upserts={} removals={} totals={} changed={} changes={}",
            self.version,
            if self.base_version.is_empty() {
                "-"
            } else {
                &self.base_version
            },
            self.full_state,
            counts(&mut self.upserts.iter().map(|(k, v)| (k, v.len()))),
            self.removals.len(),
            counts(&mut self.totals.iter().map(|(k, v)| (k, *v))),
            self.changed.len(),
            if changes.is_empty() {
                "-".to_owned()
            } else {
                changes.join(";")
            },
        )
    }
}

impl SnapshotState {
    /// Nothing held.
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies `update` as a proxy would and says what it changed.
    pub fn apply(&mut self, update: &SnapshotUpdate) -> DeltaSummary {
        let before = self.resources.clone();
        if update.full_state {
            self.resources.clear();
        }
        let mut upserts: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
        if let Some(resources) = &update.upserts {
            for (kind, name, version) in entries(resources) {
                upserts.entry(kind).or_default().push(name.clone());
                self.resources
                    .entry(kind)
                    .or_default()
                    .insert(name, version);
            }
        }
        let mut removals = Vec::new();
        for removal in &update.removals {
            let kind = kind_name(removal.kind());
            removals.push(format!("{kind}/{}", removal.name));
            if let Some(names) = self.resources.get_mut(kind) {
                names.remove(&removal.name);
            }
        }
        DeltaSummary {
            version: update.version.clone(),
            base_version: update.base_version.clone(),
            full_state: update.full_state,
            upserts,
            removals,
            changed: changes(&before, &self.resources),
            totals: self.totals(),
        }
    }

    /// Resources held, by kind.
    pub fn totals(&self) -> BTreeMap<&'static str, usize> {
        self.resources
            .iter()
            .map(|(kind, names)| (*kind, names.len()))
            .collect()
    }

    /// The content version of `kind` `name`, if held.
    pub fn content_version(&self, kind: &str, name: &str) -> Option<&str> {
        self.resources.get(kind)?.get(name).map(String::as_str)
    }
}

fn changes(
    before: &BTreeMap<&'static str, BTreeMap<String, String>>,
    after: &BTreeMap<&'static str, BTreeMap<String, String>>,
) -> Vec<VersionChange> {
    let empty = BTreeMap::new();
    let mut kinds: Vec<&'static str> = before.keys().chain(after.keys()).copied().collect();
    kinds.sort_unstable();
    kinds.dedup();
    let mut changed = Vec::new();
    for kind in kinds {
        let (old, new) = (
            before.get(kind).unwrap_or(&empty),
            after.get(kind).unwrap_or(&empty),
        );
        let mut names: Vec<&String> = old.keys().chain(new.keys()).collect();
        names.sort_unstable();
        names.dedup();
        for name in names {
            let (was, is) = (old.get(name), new.get(name));
            if was != is {
                changed.push(VersionChange {
                    kind,
                    name: name.clone(),
                    before: was.cloned(),
                    after: is.cloned(),
                });
            }
        }
    }
    changed
}

fn entries(resources: &Resources) -> Vec<(&'static str, String, String)> {
    fn of<T: ResourceNames>(kind: &'static str, list: &[T]) -> Vec<(&'static str, String, String)> {
        list.iter()
            .map(|item| {
                (
                    kind,
                    item.name().to_owned(),
                    item.content_version().to_owned(),
                )
            })
            .collect()
    }
    let mut all = of("entryPoints", &resources.entry_points);
    all.extend(of("routers", &resources.routers));
    all.extend(of("services", &resources.services));
    all.extend(of("middlewares", &resources.middlewares));
    all.extend(of("certificates", &resources.certificates));
    all.extend(of("tlsOptions", &resources.tls_options));
    all.extend(of("tlsStores", &resources.tls_stores));
    all.extend(of("serversTransports", &resources.servers_transports));
    all
}

fn kind_name(kind: ResourceKind) -> &'static str {
    match kind {
        ResourceKind::EntryPoint => "entryPoints",
        ResourceKind::Router => "routers",
        ResourceKind::Service => "services",
        ResourceKind::Middleware => "middlewares",
        ResourceKind::Certificate => "certificates",
        ResourceKind::TlsOptions => "tlsOptions",
        ResourceKind::TlsStore => "tlsStores",
        ResourceKind::ServersTransport => "serversTransports",
        ResourceKind::Unspecified => "unspecified",
    }
}
