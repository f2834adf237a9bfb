//! Telling an entry point's connections to stop (it went away, or the proxy
//! shuts down) at the cost of one atomic load per request: a connection
//! registers its task's waker once, and is woken once when the stop comes.

use std::collections::HashMap;
use std::future::poll_fn;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

/// The stop of one entry point's connections.
#[derive(Debug, Default)]
pub(crate) struct StopSignal {
    stopped: AtomicBool,
    /// Connections to wake, by registration.
    waiting: Mutex<HashMap<u64, Waker>>,
    next: AtomicU64,
}

impl StopSignal {
    /// Stops every connection: idle ones at once, busy ones after their
    /// response.
    pub(crate) fn stop(&self) {
        self.stopped.store(true, Ordering::Release);
        let waiting = std::mem::take(&mut *self.waiting.lock().unwrap_or_else(|e| e.into_inner()));
        for waker in waiting.into_values() {
            waker.wake();
        }
    }

    /// Whether the stop came.
    pub(crate) fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }

    /// A connection's view of the stop.
    pub(crate) fn watch(self: &Arc<Self>) -> StopWatch {
        StopWatch {
            signal: self.clone(),
            id: self.next.fetch_add(1, Ordering::Relaxed),
            registered: None,
        }
    }
}

/// One connection's view of a [`StopSignal`].
#[derive(Debug)]
pub(crate) struct StopWatch {
    signal: Arc<StopSignal>,
    id: u64,
    /// The waker registered, to see whether it changed.
    registered: Option<Waker>,
}

impl StopWatch {
    /// Whether the stop came; when not, `cx` is woken when it does.
    pub(crate) fn poll_stopped(&mut self, cx: &Context<'_>) -> bool {
        if self.signal.is_stopped() {
            return true;
        }
        if self
            .registered
            .as_ref()
            .is_some_and(|waker| waker.will_wake(cx.waker()))
        {
            return false;
        }
        self.signal
            .waiting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(self.id, cx.waker().clone());
        self.registered = Some(cx.waker().clone());
        // A stop between the first check and the registration woke nobody.
        self.signal.is_stopped()
    }

    /// Whether the stop came, without waiting.
    pub(crate) fn is_stopped(&self) -> bool {
        self.signal.is_stopped()
    }

    /// Waits for the stop.
    pub(crate) async fn stopped(&mut self) {
        poll_fn(|cx| {
            if self.poll_stopped(cx) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await;
    }
}

impl Drop for StopWatch {
    fn drop(&mut self) {
        if self.registered.is_some() {
            self.signal
                .waiting
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_stop_wakes_every_waiting_connection_once() {
        let signal = Arc::new(StopSignal::default());
        let mut waiting: Vec<_> = (0..3)
            .map(|_| {
                let mut watch = signal.watch();
                tokio::spawn(async move { watch.stopped().await })
            })
            .collect();
        // A watch that never waited costs nothing to drop.
        drop(signal.watch());
        let registered = || signal.waiting.lock().unwrap().len();
        let until_registered = async |count| {
            for _ in 0..100 {
                if registered() == count {
                    break;
                }
                tokio::task::yield_now().await;
            }
            assert_eq!(registered(), count, "waiting tasks registered");
        };
        until_registered(3).await;
        // A watch that waited and is dropped leaves no waker behind.
        let abandoned = {
            let mut watch = signal.watch();
            tokio::spawn(async move { watch.stopped().await })
        };
        until_registered(4).await;
        abandoned.abort();
        let _ = abandoned.await;
        assert_eq!(registered(), 3);
        assert!(!signal.is_stopped());
        signal.stop();
        for task in waiting.drain(..) {
            task.await.unwrap();
        }
        assert!(signal.waiting.lock().unwrap().is_empty());
        let mut late = signal.watch();
        late.stopped().await;
        assert!(late.is_stopped());
    }
}
