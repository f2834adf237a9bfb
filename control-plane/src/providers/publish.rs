//! Sending a watching provider's updates: only when something changed, and
//! with its health recorded for the admin API.

use std::fmt;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{ProviderHealthRegistry, ProviderUpdate};

/// One provider's side of the updates channel.
#[derive(Debug)]
pub(crate) struct Publisher {
    provider: String,
    updates: mpsc::Sender<ProviderUpdate>,
    health: Arc<ProviderHealthRegistry>,
    last_sent: Option<ProviderUpdate>,
}

impl Publisher {
    /// A publisher for `provider`, registered as starting.
    pub(crate) fn new(
        provider: &str,
        updates: mpsc::Sender<ProviderUpdate>,
        health: Arc<ProviderHealthRegistry>,
    ) -> Self {
        health.starting(provider);
        Self {
            provider: provider.to_owned(),
            updates,
            health,
            last_sent: None,
        }
    }

    /// Records that the source answers.
    pub(crate) fn healthy(&self) {
        self.health.ok(&self.provider);
    }

    /// Sends `update` if it differs from the last one sent. False once the
    /// provider should stop (`shutdown`, or the aggregator is gone).
    pub(crate) async fn publish(
        &mut self,
        update: ProviderUpdate,
        shutdown: &CancellationToken,
    ) -> bool {
        if self.last_sent.as_ref() == Some(&update) {
            return true;
        }
        let sent = tokio::select! {
            () = shutdown.cancelled() => false,
            sent = self.updates.send(update.clone()) => sent.is_ok(),
        };
        if sent {
            self.health.updated(&self.provider);
            self.last_sent = Some(update);
        }
        sent
    }

    /// Records a failed read: the last configuration sent stays in place.
    pub(crate) fn failed(&self, error: &dyn fmt::Display) {
        tracing::warn!(
            provider = %self.provider,
            %error,
            "provider source failed; keeping its last known configuration"
        );
        self.health.error(&self.provider, error.to_string());
    }
}
