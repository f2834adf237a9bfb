//! The snapshot store: versions compiled snapshots, keeps a bounded history
//! and computes the update that brings a proxy from what it holds to the
//! latest.
//!
//! A version is `<generation>-<content hash>`. The generation increases with
//! every published snapshot; the hash names the content, so a proxy that
//! holds the same content under another generation (for instance after the
//! control plane restarted) needs no resources re-sent.
//!
//! History keeps past snapshots whole: they share every unchanged resource
//! with the current one ([`SharedResources`]), so each costs a list of
//! pointers plus what changed since.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use sluice_proto::v1::{Resources, Snapshot, SnapshotUpdate};
use tokio::sync::watch;

use crate::compiler::{CompileReport, Compiled};
use crate::resources::SharedResources;

/// One published snapshot.
#[derive(Debug)]
pub struct Published {
    /// `<generation>-<hash>`.
    pub version: String,
    /// Increases with every published snapshot.
    pub generation: u64,
    pub resources: SharedResources,
    /// Content hash part of the version.
    pub hash: String,
    pub published_at: SystemTime,
}

impl Published {
    /// The version string, `<generation>-<hash>`.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The proto message (a deep copy), for `GetSnapshot` and the admin API.
    pub fn to_snapshot(&self) -> Snapshot {
        Snapshot {
            version: self.version.clone(),
            generation: self.generation,
            resources: Some(self.resources.to_proto()),
        }
    }
}

/// Holds the current snapshot, the past ones and the latest compile report.
#[derive(Debug)]
pub struct SnapshotStore {
    current: watch::Sender<Option<Arc<Published>>>,
    report: watch::Sender<Arc<CompileReport>>,
    /// The latest snapshots, oldest first, the current one last.
    history: Mutex<VecDeque<Arc<Published>>>,
    history_size: usize,
    /// The latest deltas by (held version, target version): the proxies of
    /// a fleet usually hold the same version, and one diff serves them all.
    deltas: Mutex<VecDeque<(String, String, SnapshotUpdate)>>,
}

/// Deltas kept for proxies that ask for the same one.
const DELTAS_KEPT: usize = 8;

impl SnapshotStore {
    /// An empty store keeping `history_size` past snapshots for deltas.
    pub fn new(history_size: usize) -> Self {
        Self {
            current: watch::Sender::new(None),
            report: watch::Sender::new(Arc::default()),
            history: Mutex::new(VecDeque::new()),
            history_size: history_size.max(1),
            deltas: Mutex::new(VecDeque::new()),
        }
    }

    /// Publishes a compilation. Returns the new snapshot, or `None` when its
    /// content equals the current one (the report is still updated).
    pub fn publish(&self, compiled: Compiled) -> Option<Arc<Published>> {
        let report = Arc::new(compiled.report);
        let hash = compiled.resources.content_hash();
        let previous = self.current();
        if previous
            .as_ref()
            .is_some_and(|previous| previous.hash == hash)
        {
            self.report.send_replace(report);
            return None;
        }
        let generation = previous.map_or(1, |previous| previous.generation + 1);
        let published = Arc::new(Published {
            version: format!("{generation}-{hash}"),
            generation,
            resources: compiled.resources,
            hash,
            published_at: SystemTime::now(),
        });
        {
            let mut history = self.history.lock().unwrap_or_else(PoisonError::into_inner);
            history.push_back(Arc::clone(&published));
            while history.len() > self.history_size {
                history.pop_front();
            }
        }
        self.current.send_replace(Some(Arc::clone(&published)));
        // Replaced once the snapshot is out: freeing the previous report
        // (an entry per resource) need not delay it.
        self.report.send_replace(report);
        Some(published)
    }

    /// The latest snapshot, if one was compiled yet.
    pub fn current(&self) -> Option<Arc<Published>> {
        self.current.borrow().clone()
    }

    /// The latest compile report.
    pub fn report(&self) -> Arc<CompileReport> {
        Arc::clone(&self.report.borrow())
    }

    /// Notifies on every new snapshot.
    pub fn subscribe(&self) -> watch::Receiver<Option<Arc<Published>>> {
        self.current.subscribe()
    }

    /// Notifies on every new compile report.
    pub fn subscribe_reports(&self) -> watch::Receiver<Arc<CompileReport>> {
        self.report.subscribe()
    }

    /// The update that brings a proxy holding `held` (a version, or empty) to
    /// `target`: a delta when the held content is still in history, the full
    /// state otherwise.
    pub fn update_for(&self, held: &str, target: &Published) -> SnapshotUpdate {
        let held_hash = held.split_once('-').map(|(_, hash)| hash);
        let base = held_hash.and_then(|held_hash| {
            if held_hash == target.hash {
                return Some(None);
            }
            let history = self.history.lock().unwrap_or_else(PoisonError::into_inner);
            history
                .iter()
                .rev()
                .find(|past| past.hash == held_hash)
                .map(|past| Some(Arc::clone(past)))
        });
        match base {
            // Same content under another version: nothing to send but the new name.
            Some(None) => SnapshotUpdate {
                version: target.version().to_owned(),
                base_version: held.to_owned(),
                full_state: false,
                upserts: Some(Resources::default()),
                removals: Vec::new(),
            },
            Some(Some(base)) => self.delta(held, &base, target),
            None => SnapshotUpdate {
                version: target.version().to_owned(),
                base_version: String::new(),
                full_state: true,
                upserts: Some(target.resources.to_proto()),
                removals: Vec::new(),
            },
        }
    }

    /// The delta from `held` (whose snapshot is `base`) to `target`,
    /// computed once for every proxy that holds `held`.
    fn delta(&self, held: &str, base: &Published, target: &Published) -> SnapshotUpdate {
        let is_wanted = |(from, to, _): &(String, String, SnapshotUpdate)| {
            from == held && to == target.version()
        };
        let deltas = || self.deltas.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, _, update)) = deltas().iter().find(|delta| is_wanted(delta)) {
            return update.clone();
        }
        let (upserts, removals) = target.resources.changes_since(&base.resources);
        let update = SnapshotUpdate {
            version: target.version().to_owned(),
            base_version: held.to_owned(),
            full_state: false,
            upserts: Some(upserts),
            removals,
        };
        let mut deltas = deltas();
        if !deltas.iter().any(is_wanted) {
            if deltas.len() == DELTAS_KEPT {
                deltas.pop_front();
            }
            deltas.push_back((held.to_owned(), target.version().to_owned(), update.clone()));
        }
        update
    }
}

#[cfg(test)]
mod tests {
    use sluice_proto::v1::{ResourceKind, ResourceRef, Router};

    use super::*;

    fn compiled(routers: &[(&str, &str)]) -> Compiled {
        Compiled {
            resources: SharedResources::from_proto(Resources {
                routers: routers
                    .iter()
                    .map(|(name, version)| Router {
                        name: (*name).to_owned(),
                        content_version: (*version).to_owned(),
                        ..Router::default()
                    })
                    .collect(),
                ..Resources::default()
            }),
            report: CompileReport::default(),
        }
    }

    #[test]
    fn same_content_publishes_no_new_version() {
        let store = SnapshotStore::new(4);
        let first = store.publish(compiled(&[("a@file", "1")])).unwrap();
        assert_eq!(first.generation, 1);
        assert!(store.publish(compiled(&[("a@file", "1")])).is_none());
        let second = store.publish(compiled(&[("a@file", "2")])).unwrap();
        assert_eq!(second.generation, 2);
        assert!(second.version().starts_with("2-"));
    }

    #[test]
    fn delta_holds_only_changed_and_removed_resources() {
        let store = SnapshotStore::new(4);
        let base = store
            .publish(compiled(&[
                ("a@file", "1"),
                ("b@file", "1"),
                ("c@file", "1"),
            ]))
            .unwrap();
        let target = store
            .publish(compiled(&[
                ("a@file", "1"),
                ("b@file", "2"),
                ("d@file", "1"),
            ]))
            .unwrap();
        let update = store.update_for(base.version(), &target);
        assert!(!update.full_state);
        assert_eq!(update.base_version, base.version());
        let upserted: Vec<&str> = update
            .upserts
            .as_ref()
            .unwrap()
            .routers
            .iter()
            .map(|r| r.name.as_str())
            .collect();
        assert_eq!(upserted, ["b@file", "d@file"]);
        assert_eq!(
            update.removals,
            [ResourceRef {
                kind: ResourceKind::Router as i32,
                name: "c@file".to_owned()
            }]
        );
    }

    #[test]
    fn proxies_holding_one_version_get_one_delta_and_others_their_own() {
        let store = SnapshotStore::new(4);
        let first = store.publish(compiled(&[("a@file", "1")])).unwrap();
        let second = store
            .publish(compiled(&[("a@file", "1"), ("b@file", "1")]))
            .unwrap();
        let target = store
            .publish(compiled(&[("a@file", "2"), ("b@file", "1")]))
            .unwrap();
        let upserted = |update: &SnapshotUpdate| -> Vec<String> {
            let upserts = update.upserts.as_ref().unwrap();
            upserts.routers.iter().map(|r| r.name.clone()).collect()
        };
        let from_second = store.update_for(second.version(), &target);
        assert_eq!(upserted(&from_second), ["a@file"]);
        assert_eq!(store.update_for(second.version(), &target), from_second);
        let from_first = store.update_for(first.version(), &target);
        assert_eq!(from_first.base_version, first.version());
        assert_eq!(upserted(&from_first), ["a@file", "b@file"]);
        assert_eq!(store.update_for(second.version(), &target), from_second);
    }

    #[test]
    fn unknown_or_evicted_versions_get_full_state() {
        let store = SnapshotStore::new(2);
        let oldest = store.publish(compiled(&[("a@file", "1")])).unwrap();
        store.publish(compiled(&[("a@file", "2")])).unwrap();
        let latest = store.publish(compiled(&[("a@file", "3")])).unwrap();
        for held in ["", oldest.version(), "7-0123456789abcdef"] {
            let update = store.update_for(held, &latest);
            assert!(update.full_state, "held {held:?}");
            assert_eq!(update.upserts.unwrap().routers.len(), 1);
        }
    }

    #[test]
    fn same_content_under_another_generation_is_an_empty_delta() {
        let store = SnapshotStore::new(2);
        let latest = store.publish(compiled(&[("a@file", "1")])).unwrap();
        let held = format!("41-{}", latest.hash);
        let update = store.update_for(&held, &latest);
        assert!(!update.full_state);
        assert!(update.upserts.unwrap().is_empty());
        assert!(update.removals.is_empty());
    }
}
