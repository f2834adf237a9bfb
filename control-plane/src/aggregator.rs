//! The aggregator keeps the latest update of every provider, waits for a
//! burst of changes to settle (debounce), then compiles the merged model and
//! publishes it to the store.
//!
//! Debounce: a change that comes after a quiet period without changes is
//! compiled at once, as Traefik applies the first configuration of a burst
//! at once. A change that follows others closely waits until no further
//! change has arrived for the quiet period, but never longer than the
//! maximum delay since the first pending change, so a burst costs few
//! compilations and a constant trickle still ships. The first snapshot
//! always waits for the quiet period, so that providers starting together
//! land in it together and a restarted control plane never publishes a
//! half-gathered configuration.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::compiler::{CompileInput, Compiler};
use crate::config::{DebounceConfig, EntryPointConfig};
use crate::providers::ProviderUpdate;
use crate::store::SnapshotStore;

/// How long to wait for a burst of changes to end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Debounce {
    /// Compile once no change arrived for this long.
    pub quiet_period: Duration,
    /// Compile at the latest this long after the first pending change.
    pub max_delay: Duration,
}

impl Debounce {
    /// From `controlPlane.debounce`; Traefik's `providers.providersThrottleDuration`,
    /// when longer, stretches the quiet period (and the maximum delay with it),
    /// so a Traefik configuration keeps its pacing.
    pub(crate) fn from_config(
        config: &DebounceConfig,
        throttle: Option<crate::dynamic::Duration>,
    ) -> Self {
        let quiet_period = throttle.map_or(config.quiet_period.0, |throttle| {
            throttle.0.max(config.quiet_period.0)
        });
        Self {
            quiet_period,
            max_delay: config.max_delay.0.max(quiet_period),
        }
    }
}

/// Merges provider updates and publishes compiled snapshots.
#[derive(Debug)]
pub(crate) struct Aggregator {
    entry_points: Arc<BTreeMap<String, EntryPointConfig>>,
    store: Arc<SnapshotStore>,
    debounce: Debounce,
    /// Used by one compilation at a time (they run one after the other).
    compiler: Arc<Mutex<Compiler>>,
}

impl Aggregator {
    pub(crate) fn new(
        entry_points: BTreeMap<String, EntryPointConfig>,
        store: Arc<SnapshotStore>,
        debounce: Debounce,
    ) -> Self {
        Self {
            entry_points: Arc::new(entry_points),
            store,
            debounce,
            compiler: Arc::default(),
        }
    }

    /// Runs until every provider is gone or `shutdown` is cancelled.
    pub(crate) async fn run(
        self,
        mut updates: mpsc::Receiver<ProviderUpdate>,
        shutdown: CancellationToken,
    ) {
        // Shared with the compile task, never copied: the task's reference is
        // gone when it ends (even by panic), so `make_mut` edits in place.
        let mut latest: Arc<BTreeMap<String, ProviderUpdate>> = Arc::default();
        let mut previous_change: Option<Instant> = None;
        loop {
            let first = tokio::select! {
                update = updates.recv() => update,
                () = shutdown.cancelled() => None,
            };
            let Some(first) = first else {
                return;
            };
            // Freeing a large replaced configuration waits until the
            // snapshot is out.
            let mut replaced = Vec::new();
            replaced.extend(Arc::make_mut(&mut latest).insert(first.provider.clone(), first));
            let now = Instant::now();
            let after_a_quiet_period = previous_change
                .is_some_and(|previous| now - previous >= self.debounce.quiet_period);
            previous_change = Some(now);
            let latest_allowed = now + self.debounce.max_delay;
            if !after_a_quiet_period {
                loop {
                    let deadline =
                        (Instant::now() + self.debounce.quiet_period).min(latest_allowed);
                    tokio::select! {
                        update = updates.recv() => match update {
                            Some(update) => {
                                previous_change = Some(Instant::now());
                                replaced.extend(
                                    Arc::make_mut(&mut latest).insert(update.provider.clone(), update),
                                );
                            }
                            None => break,
                        },
                        () = tokio::time::sleep_until(deadline) => break,
                        () = shutdown.cancelled() => return,
                    }
                }
            }
            self.compile_and_publish(Arc::clone(&latest)).await;
            drop(replaced);
        }
    }

    /// Compiles off the async workers: a large configuration takes a while.
    async fn compile_and_publish(&self, providers: Arc<BTreeMap<String, ProviderUpdate>>) {
        let entry_points = Arc::clone(&self.entry_points);
        let store = Arc::clone(&self.store);
        let compiler = Arc::clone(&self.compiler);
        let result = tokio::task::spawn_blocking(move || {
            // A compilation that panicked left a cache that is still consistent.
            let mut compiler = compiler.lock().unwrap_or_else(PoisonError::into_inner);
            let started = std::time::Instant::now();
            let previous = store.current();
            let previous_certificates = previous
                .as_ref()
                .map_or(&[][..], |published| &published.resources.certificates);
            let compiled = compiler.compile(CompileInput {
                entry_points: &entry_points,
                providers: &providers,
                previous_certificates,
            });
            let errors = compiled.report.errors.len();
            for error in &compiled.report.errors {
                tracing::warn!(%error, "configuration error");
            }
            let published = store.publish(compiled);
            (published, errors, started.elapsed())
        })
        .await;
        match result {
            Ok((Some(published), errors, took)) => tracing::info!(
                version = %published.version(),
                routers = published.resources.routers.len(),
                errors,
                compile_ms = took.as_secs_f64() * 1e3,
                "published snapshot"
            ),
            Ok((None, errors, _)) => {
                tracing::debug!(
                    errors,
                    "configuration changed without changing the snapshot"
                );
            }
            Err(error) => {
                tracing::error!(%error, "compilation panicked; keeping the previous snapshot")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dynamic::{DynamicConfig, HttpConfig, RouterConfig, ServiceConfig};
    use crate::store::Published;
    use tokio::sync::watch;

    fn update_with_router(rule_path: usize) -> ProviderUpdate {
        let mut http = HttpConfig::default();
        http.routers.insert(
            "r".to_owned(),
            Arc::new(RouterConfig {
                rule: format!("Path(`/{rule_path}`)"),
                service: "s".to_owned(),
                ..RouterConfig::default()
            }),
        );
        http.services.insert(
            "s".to_owned(),
            ServiceConfig {
                load_balancer: Some(Default::default()),
                ..ServiceConfig::default()
            },
        );
        ProviderUpdate {
            provider: "file".to_owned(),
            config: DynamicConfig {
                http: Some(http),
                ..DynamicConfig::default()
            },
            errors: Vec::new(),
            origins: BTreeMap::new(),
        }
    }

    #[test]
    fn providers_throttle_duration_stretches_the_quiet_period() {
        let config = DebounceConfig::default();
        let ms = |millis| Duration::from_millis(millis);
        let plain = Debounce::from_config(&config, None);
        assert_eq!((plain.quiet_period, plain.max_delay), (ms(100), ms(1000)));
        let throttled = Debounce::from_config(&config, Some(crate::dynamic::Duration(ms(2000))));
        assert_eq!(
            (throttled.quiet_period, throttled.max_delay),
            (ms(2000), ms(2000))
        );
        let short = Debounce::from_config(&config, Some(crate::dynamic::Duration(ms(10))));
        assert_eq!(short.quiet_period, ms(100));
    }

    #[tokio::test(start_paused = true)]
    async fn a_change_after_a_quiet_period_compiles_at_once() {
        let quiet_period = Duration::from_millis(100);
        let store = Arc::new(SnapshotStore::new(8));
        let aggregator = Aggregator::new(
            BTreeMap::new(),
            Arc::clone(&store),
            Debounce {
                quiet_period,
                max_delay: Duration::from_secs(1),
            },
        );
        let (sender, receiver) = mpsc::channel(16);
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(aggregator.run(receiver, shutdown.clone()));
        let mut versions = store.subscribe();
        let generation = |versions: &mut watch::Receiver<Option<Arc<Published>>>| {
            versions
                .borrow_and_update()
                .as_ref()
                .map_or(0, |published| published.generation)
        };

        // The first snapshot waits for the quiet period.
        let sent = Instant::now();
        sender.send(update_with_router(0)).await.unwrap();
        versions.changed().await.unwrap();
        assert!(sent.elapsed() >= quiet_period, "{:?}", sent.elapsed());
        assert_eq!(generation(&mut versions), 1);

        // A lone change later is compiled without waiting.
        tokio::time::sleep(quiet_period * 3).await;
        let sent = Instant::now();
        sender.send(update_with_router(1)).await.unwrap();
        versions.changed().await.unwrap();
        assert!(sent.elapsed() < quiet_period, "{:?}", sent.elapsed());
        assert_eq!(generation(&mut versions), 2);

        // One that follows it closely waits for the quiet period again.
        sender.send(update_with_router(2)).await.unwrap();
        let sent = Instant::now();
        versions.changed().await.unwrap();
        assert!(sent.elapsed() >= quiet_period, "{:?}", sent.elapsed());
        assert_eq!(generation(&mut versions), 3);

        shutdown.cancel();
        task.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_yields_few_versions_and_the_last_is_exact() {
        let store = Arc::new(SnapshotStore::new(8));
        let aggregator = Aggregator::new(
            BTreeMap::new(),
            Arc::clone(&store),
            Debounce {
                quiet_period: Duration::from_millis(100),
                max_delay: Duration::from_secs(1),
            },
        );
        let (sender, receiver) = mpsc::channel(16);
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(aggregator.run(receiver, shutdown.clone()));
        let mut versions = store.subscribe();
        for index in 0..1000 {
            sender.send(update_with_router(index)).await.unwrap();
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        drop(sender);
        task.await.unwrap();
        // 2 s of changes with a 1 s maximum delay: at most three compilations.
        let generation = versions.borrow_and_update().as_ref().unwrap().generation;
        assert!((1..=3).contains(&generation), "generation {generation}");
        let current = store.current().unwrap();
        let routers = &current.resources.routers;
        assert_eq!(routers[0].rule, "Path(`/999`)");
    }
}
