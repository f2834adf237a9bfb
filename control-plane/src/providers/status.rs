//! What each watching provider is doing: `starting` until its first read,
//! `ok` while its source answers, `error` while it does not (it then keeps
//! serving its last known configuration and retries). Providers write here;
//! the admin API shows it at `/api/providers`.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

/// The state of one provider's source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderState {
    /// Not read yet.
    Starting,
    /// The last read succeeded.
    Ok,
    /// The last read failed; the last known configuration is kept.
    Error,
}

/// One provider's health, as the admin API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProviderHealth {
    /// What the provider is doing now.
    pub state: ProviderState,
    /// The most recent failure, kept after recovery so it can be looked up.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// When `state` last changed, in milliseconds since the Unix epoch.
    pub last_change_ms: u64,
    /// When the provider last sent a changed configuration, in milliseconds
    /// since the Unix epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_update_ms: Option<u64>,
}

/// Provider name to health, shared by the providers and the admin API.
#[derive(Debug, Default)]
pub struct ProviderHealthRegistry {
    providers: Mutex<BTreeMap<String, ProviderHealth>>,
}

impl ProviderHealthRegistry {
    /// Registers `provider` as starting (again).
    pub fn starting(&self, provider: &str) {
        self.set_state(provider, ProviderState::Starting, None);
    }

    /// Records a successful read.
    pub fn ok(&self, provider: &str) {
        self.set_state(provider, ProviderState::Ok, None);
    }

    /// Records a failed read and why.
    pub fn error(&self, provider: &str, error: String) {
        self.set_state(provider, ProviderState::Error, Some(error));
    }

    /// Records that a changed configuration was sent.
    pub fn updated(&self, provider: &str) {
        let mut providers = self.lock();
        if let Some(health) = providers.get_mut(provider) {
            health.last_update_ms = Some(now_ms());
        }
    }

    /// Every provider's health, by name.
    pub fn snapshot(&self) -> BTreeMap<String, ProviderHealth> {
        self.lock().clone()
    }

    /// One provider's health.
    pub fn get(&self, provider: &str) -> Option<ProviderHealth> {
        self.lock().get(provider).cloned()
    }

    fn set_state(&self, provider: &str, state: ProviderState, error: Option<String>) {
        let now = now_ms();
        let mut providers = self.lock();
        let health = providers
            .entry(provider.to_owned())
            .or_insert_with(|| ProviderHealth {
                state,
                last_error: None,
                last_change_ms: now,
                last_update_ms: None,
            });
        if health.state != state {
            health.state = state;
            health.last_change_ms = now;
        }
        if error.is_some() {
            health.last_error = error;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, ProviderHealth>> {
        // A panic while holding the lock leaves a consistent map: every
        // update is a single assignment.
        self.providers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_error_after_recovery() {
        let registry = ProviderHealthRegistry::default();
        registry.starting("consul");
        assert_eq!(
            registry.get("consul").unwrap().state,
            ProviderState::Starting
        );
        registry.error("consul", "connection refused".to_owned());
        let failed = registry.get("consul").unwrap();
        assert_eq!(failed.state, ProviderState::Error);
        registry.ok("consul");
        registry.updated("consul");
        let health = registry.get("consul").unwrap();
        assert_eq!(health.state, ProviderState::Ok);
        assert_eq!(health.last_error.as_deref(), Some("connection refused"));
        assert!(health.last_change_ms >= failed.last_change_ms);
        assert!(health.last_update_ms.is_some());
        let json = serde_json::to_value(registry.snapshot()).unwrap();
        assert_eq!(json["consul"]["state"], "ok");
        assert_eq!(json["consul"]["lastError"], "connection refused");
    }
}
