//! State that outlives runtimes: pooled backend connections (per servers
//! transport), parsed certificates, server health and its checkers, rotation
//! positions, mirror counts and room for mirror copies, and middleware state, keyed by stable identities (service name,
//! server URL, middleware name and options, content versions) so that a
//! snapshot swap does not reset them.

use std::any::Any;
use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use dashmap::DashMap;
use http::HeaderValue;
use tokio_util::sync::CancellationToken;

use crate::service::{HealthChecks, MirrorBudget, MirrorCounts, UpstreamClient, UpstreamConfig};
use crate::tls::{CertCache, TlsError};

/// Long-lived state shared by every runtime of one proxy.
#[derive(Debug)]
pub(crate) struct SharedState {
    /// `X-Forwarded-Server`: the node id.
    pub(crate) forwarded_server: HeaderValue,
    /// Pooled clients to backends (the default transport).
    pub(crate) client: Arc<UpstreamClient>,
    /// Clients of servers transports, by name and content version.
    transports: DashMap<String, Arc<UpstreamClient>>,
    /// Settings transports start from.
    upstream: UpstreamConfig,
    /// Parsed server certificates and the generated default.
    pub(crate) certificates: CertCache,
    /// Server health and health-check tasks.
    pub(crate) health: HealthChecks,
    /// Smooth weighted round robin positions, by service name.
    positions: DashMap<String, Arc<AtomicUsize>>,
    /// Requests and copies counted by mirroring services, by service name.
    mirror_counts: DashMap<String, Arc<MirrorCounts>>,
    /// Room for mirror copies in flight, shared by all mirroring services.
    pub(crate) mirror_budget: MirrorBudget,
    /// Fires when the grace period is over: tunnels (WebSocket...) close.
    pub(crate) hard_stop: CancellationToken,
    /// Snapshot updates applied and rejected since start.
    pub(crate) updates: UpdateCounters,
    /// State of middlewares (verified credentials, counters...).
    pub(crate) middlewares: MiddlewareStates,
}

/// Snapshot updates applied (full or delta) and rejected since the proxy
/// started, reported by the admin endpoint's `/api/snapshot`: they show, for
/// instance, that a reconnect to a restarted control plane re-sent nothing.
#[derive(Debug, Default)]
pub(crate) struct UpdateCounters {
    full: AtomicU64,
    delta: AtomicU64,
    rejected: AtomicU64,
}

impl UpdateCounters {
    /// Counts an applied update.
    pub(crate) fn applied(&self, full_state: bool) {
        let counter = if full_state { &self.full } else { &self.delta };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a rejected (NACKed) update.
    pub(crate) fn rejected(&self) {
        self.rejected.fetch_add(1, Ordering::Relaxed);
    }

    /// Full-state updates applied.
    pub(crate) fn full(&self) -> u64 {
        self.full.load(Ordering::Relaxed)
    }

    /// Delta updates applied.
    pub(crate) fn delta(&self) -> u64 {
        self.delta.load(Ordering::Relaxed)
    }

    /// Updates rejected.
    pub(crate) fn rejected_count(&self) -> u64 {
        self.rejected.load(Ordering::Relaxed)
    }
}

impl SharedState {
    /// Fresh state for node `node_id`; background tasks stop with `hard_stop`.
    pub(crate) fn new(
        node_id: String,
        upstream: &UpstreamConfig,
        hard_stop: CancellationToken,
    ) -> Self {
        let forwarded_server = HeaderValue::from_str(&node_id)
            .unwrap_or_else(|_| HeaderValue::from_static("sluice-proxy"));
        Self {
            forwarded_server,
            client: Arc::new(
                UpstreamClient::new(upstream, None)
                    .expect("the default TLS client (Mozilla roots, no client certificate) builds"),
            ),
            transports: DashMap::new(),
            upstream: upstream.clone(),
            certificates: CertCache::new()
                .expect("generating a self-signed ECDSA P-256 certificate only needs randomness"),
            health: HealthChecks::new(hard_stop.child_token()),
            positions: DashMap::new(),
            mirror_counts: DashMap::new(),
            mirror_budget: MirrorBudget::default(),
            hard_stop,
            updates: UpdateCounters::default(),
            middlewares: MiddlewareStates::default(),
        }
    }

    /// The client of servers transport `transport`, built on first use.
    pub(crate) fn transport_client(
        &self,
        transport: &sluice_proto::v1::ServersTransport,
    ) -> Result<Arc<UpstreamClient>, TlsError> {
        let key = format!("{}#{}", transport.name, transport.content_version);
        if let Some(client) = self.transports.get(&key) {
            return Ok(client.clone());
        }
        let config = self.upstream.with_transport(transport);
        let client = Arc::new(UpstreamClient::new(&config, Some(transport))?);
        self.transports.insert(key, client.clone());
        Ok(client)
    }

    /// Forgets the clients of transports no longer in use (`name#version`).
    pub(crate) fn retain_transports(&self, in_use: &HashSet<String>) {
        self.transports.retain(|key, _| in_use.contains(key));
    }

    /// The rotation position of service `name`.
    pub(crate) fn position(&self, name: &str) -> Arc<AtomicUsize> {
        if let Some(position) = self.positions.get(name) {
            return position.clone();
        }
        self.positions.entry(name.to_owned()).or_default().clone()
    }

    /// The counts of mirroring service `name` with `mirrors` mirrors (fresh
    /// ones if it had another number of mirrors).
    pub(crate) fn mirror_counts(&self, name: &str, mirrors: usize) -> Arc<MirrorCounts> {
        if let Some(counts) = self.mirror_counts.get(name)
            && counts.mirrors() == mirrors
        {
            return counts.clone();
        }
        let counts = Arc::new(MirrorCounts::new(mirrors));
        self.mirror_counts.insert(name.to_owned(), counts.clone());
        counts
    }

    /// Forgets the positions and mirror counts of services no longer in use.
    pub(crate) fn retain_positions(&self, in_use: &HashSet<&str>) {
        self.positions
            .retain(|name, _| in_use.contains(name.as_str()));
        self.mirror_counts
            .retain(|name, _| in_use.contains(name.as_str()));
    }
}

/// Identity of one piece of middleware state: the middleware's type and
/// qualified name, and a fingerprint (SHA-256) of the options the state
/// depends on. A snapshot that changes those options gets fresh state; one
/// that does not keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct StateKey {
    kind: &'static str,
    name: String,
    fingerprint: [u8; 32],
}

impl StateKey {
    /// The key of `kind` middleware `name` whose options hash to `fingerprint`.
    pub(crate) fn new(kind: &'static str, name: &str, fingerprint: [u8; 32]) -> Self {
        Self {
            kind,
            name: name.to_owned(),
            fingerprint,
        }
    }
}

/// Middleware state by [`StateKey`], each entry of the type its middleware
/// chose. Runtimes get their entries while they are built and keep an `Arc`,
/// so the request path never looks the map up.
#[derive(Default)]
pub(crate) struct MiddlewareStates {
    states: DashMap<StateKey, Arc<dyn Any + Send + Sync>>,
}

impl fmt::Debug for MiddlewareStates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MiddlewareStates")
            .field("entries", &self.states.len())
            .finish()
    }
}

impl MiddlewareStates {
    /// The state under `key`, made with `init` if there is none (or if the
    /// entry holds another type).
    pub(crate) fn get_or_insert<T: Any + Send + Sync>(
        &self,
        key: &StateKey,
        init: impl FnOnce() -> T,
    ) -> Arc<T> {
        if let Some(state) = self.states.get(key)
            && let Ok(state) = state.value().clone().downcast::<T>()
        {
            return state;
        }
        let state = Arc::new(init());
        self.states.insert(key.clone(), state.clone());
        state
    }

    /// Forgets the state of middlewares no runtime uses any more.
    pub(crate) fn retain(&self, in_use: &HashSet<&StateKey>) {
        self.states.retain(|key, _| in_use.contains(key));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    #[test]
    fn state_survives_until_its_key_is_dropped() {
        let states = MiddlewareStates::default();
        let key = StateKey::new("rateLimit", "rl@file", [1; 32]);
        let first = states.get_or_insert(&key, || AtomicUsize::new(7));
        first.fetch_add(1, Ordering::Relaxed);
        let again = states.get_or_insert(&key, || AtomicUsize::new(0));
        assert_eq!(again.load(Ordering::Relaxed), 8);

        let changed = StateKey::new("rateLimit", "rl@file", [2; 32]);
        let fresh = states.get_or_insert(&changed, || AtomicUsize::new(0));
        assert_eq!(fresh.load(Ordering::Relaxed), 0);

        states.retain(&HashSet::from([&changed]));
        let reset = states.get_or_insert(&key, || AtomicUsize::new(0));
        assert_eq!(reset.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn another_type_under_the_same_key_is_replaced() {
        let states = MiddlewareStates::default();
        let key = StateKey::new("x", "x@file", [0; 32]);
        let _ = states.get_or_insert(&key, || 1u8);
        assert_eq!(*states.get_or_insert(&key, || "s"), "s");
    }
}
