//! Applying one snapshot update: new resource state, new runtime, listeners
//! bound, runtime published, long-lived state reconciled, in that order, so
//! that any failure leaves the proxy exactly as it was.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use sluice_proto::v1::SnapshotUpdate;

use crate::listeners::{BindError, Listeners};
use crate::matchers::MatcherCache;
use crate::runtime::{BuildError, Built, Runtime};
use crate::shared::SharedState;
use crate::state::{ResourceState, StateError};

/// Why an update was rejected (the text of the NACK).
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The update does not apply to the state held.
    #[error(transparent)]
    State(#[from] StateError),
    /// The runtime cannot be built.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// A new listener cannot be bound.
    #[error(transparent)]
    Bind(#[from] BindError),
}

impl ApplyError {
    /// True when the proxy must ask for the full state again.
    pub(crate) fn needs_full_state(&self) -> bool {
        matches!(self, Self::State(StateError::BaseMismatch { .. }))
    }
}

/// Applies updates and owns what they change.
#[derive(Debug)]
pub(crate) struct Applier {
    state: ResourceState,
    runtime: Arc<ArcSwap<Runtime>>,
    listeners: Listeners,
    shared: Arc<SharedState>,
    overrides: HashMap<String, String>,
    /// Compiled rules of the routers held, for the next build.
    matchers: MatcherCache,
}

impl Applier {
    /// An applier publishing to `runtime`; `overrides` replace entry point
    /// addresses by name.
    pub(crate) fn new(
        runtime: Arc<ArcSwap<Runtime>>,
        listeners: Listeners,
        shared: Arc<SharedState>,
        overrides: HashMap<String, String>,
    ) -> Self {
        Self {
            state: ResourceState::default(),
            runtime,
            listeners,
            shared,
            overrides,
            matchers: MatcherCache::default(),
        }
    }

    /// The version being served (`""` before the first update).
    pub(crate) fn version(&self) -> &str {
        self.state.version()
    }

    /// Applies `update`, or leaves everything as it was and says why.
    pub(crate) async fn apply(&mut self, update: SnapshotUpdate) -> Result<(), ApplyError> {
        let full_state = update.full_state;
        let result = self.apply_update(update).await;
        match &result {
            Ok(()) => self.shared.updates.applied(full_state),
            Err(_) => self.shared.updates.rejected(),
        }
        result
    }

    async fn apply_update(&mut self, update: SnapshotUpdate) -> Result<(), ApplyError> {
        let next = self.state.apply(update)?;
        let Built {
            mut runtime,
            checks,
            services,
            middleware_states,
            certificates,
            transports,
        } = Runtime::build(
            next.version(),
            &next.resources(),
            &self.shared,
            &self.overrides,
            &mut self.matchers,
        )?;
        let plan = self.listeners.prepare(&runtime).await?;
        for (name, address) in plan.bound() {
            runtime.set_bound(name, *address);
        }
        self.runtime.store(Arc::new(runtime));
        self.listeners.commit(plan);
        self.shared.health.reconcile(checks);
        self.shared
            .retain_positions(&services.iter().map(String::as_str).collect());
        self.shared
            .middlewares
            .retain(&middleware_states.iter().collect());
        self.shared
            .certificates
            .retain(&certificates.into_iter().collect());
        self.shared
            .retain_transports(&transports.into_iter().collect());
        self.state = next;
        Ok(())
    }

    /// Updates applied and rejected so far.
    #[cfg(test)]
    pub(crate) fn updates(&self) -> &crate::shared::UpdateCounters {
        &self.shared.updates
    }

    /// Stops the listeners, letting connections finish within the grace period.
    pub(crate) async fn shutdown(&mut self) {
        self.listeners.shutdown().await;
    }
}
