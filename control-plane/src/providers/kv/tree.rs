//! Keys and their string values as a tree of segments, under a root key.

use std::collections::BTreeMap;

use crate::providers::SourceError;

/// One segment of a key: its value, the keys under it, or both (a value
/// beside keys under it is ignored: `tls = true` next to `tls/options`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Node {
    /// The value stored at exactly this key.
    pub(crate) value: Option<String>,
    /// The keys under this one, by segment as written.
    pub(crate) children: BTreeMap<String, Node>,
}

impl Node {
    /// The child whose segment matches `segment` ignoring case.
    pub(crate) fn child_ignoring_case_mut(&mut self, segment: &str) -> Option<&mut Node> {
        self.children
            .iter_mut()
            .find(|(key, _)| key.eq_ignore_ascii_case(segment))
            .map(|(_, node)| node)
    }

    /// Removes and returns the child whose segment matches `segment`
    /// ignoring case.
    pub(crate) fn take_child_ignoring_case(&mut self, segment: &str) -> Option<Node> {
        let key = self
            .children
            .keys()
            .find(|key| key.eq_ignore_ascii_case(segment))?
            .clone();
        self.children.remove(&key)
    }
}

/// Every key under a root key (`traefik`), split on a separator (`/` for
/// KV stores, `.` for Consul Catalog tags).
#[derive(Debug, Clone)]
pub(crate) struct KeyTree {
    pub(super) root: String,
    pub(super) separator: char,
    pub(super) node: Node,
}

impl KeyTree {
    /// An empty tree for keys under `root`.
    pub(crate) fn new(root: &str, separator: char) -> Self {
        Self {
            root: root.trim_end_matches(separator).to_owned(),
            separator,
            node: Node::default(),
        }
    }

    /// Adds a key and its value. Keys outside the root and directory
    /// markers (a key ending with the separator, as Consul folders are) are
    /// skipped; a key with an empty segment (`a//b`) is an error naming it.
    pub(crate) fn insert(&mut self, key: &str, value: &str) -> Result<(), SourceError> {
        let Some(rest) = key
            .strip_prefix(self.root.as_str())
            .and_then(|rest| rest.strip_prefix(self.separator))
        else {
            return Ok(());
        };
        let Some(rest) = (!rest.is_empty() && !rest.ends_with(self.separator)).then_some(rest)
        else {
            return Ok(());
        };
        if rest.split(self.separator).any(str::is_empty) {
            return Err(SourceError {
                location: key.to_owned(),
                key: None,
                message: format!(
                    "empty segment in key (`{}{}`)",
                    self.separator, self.separator
                ),
            });
        }
        let mut node = &mut self.node;
        for segment in rest.split(self.separator) {
            node = node.children.entry(segment.to_owned()).or_default();
        }
        node.value = Some(value.to_owned());
        Ok(())
    }

    /// Removes and returns the node at `path` (segments matched ignoring
    /// case), for keys that are not part of the dynamic configuration
    /// (`traefik.enable`).
    pub(crate) fn take(&mut self, path: &[&str]) -> Option<Node> {
        let (last, parents) = path.split_last()?;
        let mut node = &mut self.node;
        for segment in parents {
            node = node.child_ignoring_case_mut(segment)?;
        }
        node.take_child_ignoring_case(last)
    }

    /// The nodes one level under `path` (matched ignoring case), mutable, by
    /// segment as written: e.g. every service under `http/services`.
    pub(crate) fn children_mut(&mut self, path: &[&str]) -> Vec<(&str, &mut Node)> {
        let mut nodes = vec![&mut self.node];
        for segment in path {
            nodes = nodes
                .into_iter()
                .flat_map(|node| {
                    node.children
                        .iter_mut()
                        .filter(|(key, _)| key.eq_ignore_ascii_case(segment))
                        .map(|(_, child)| child)
                })
                .collect();
        }
        nodes
            .into_iter()
            .flat_map(|node| {
                node.children
                    .iter_mut()
                    .map(|(key, child)| (key.as_str(), child))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skips_foreign_keys_and_folders_and_rejects_empty_segments() {
        let mut tree = KeyTree::new("traefik/", '/');
        tree.insert("traefik/http/routers/a/rule", "r").unwrap();
        tree.insert("traefik", "").unwrap();
        tree.insert("traefik/", "").unwrap();
        tree.insert("traefik/http/", "").unwrap();
        tree.insert("traefikx/http/routers/b/rule", "r").unwrap();
        tree.insert("other/http", "x").unwrap();
        let error = tree.insert("traefik/http//routers", "x").unwrap_err();
        assert_eq!(error.location, "traefik/http//routers");
        let http = &tree.node.children["http"];
        assert_eq!(http.children.len(), 1);
        assert_eq!(
            http.children["routers"].children["a"].children["rule"]
                .value
                .as_deref(),
            Some("r")
        );
        assert_eq!(tree.node.children.len(), 1);
    }

    #[test]
    fn takes_and_walks_ignoring_case() {
        let mut tree = KeyTree::new("traefik", '.');
        tree.insert("traefik.enable", "true").unwrap();
        tree.insert("traefik.http.services.Web.loadbalancer.server.port", "80")
            .unwrap();
        assert_eq!(
            tree.take(&["ENABLE"]).unwrap().value.as_deref(),
            Some("true")
        );
        assert_eq!(tree.take(&["enable"]), None);
        let services = tree.children_mut(&["HTTP", "Services"]);
        assert_eq!(services.len(), 1);
        assert_eq!(services[0].0, "Web");
    }
}
