//! Retry delays for providers whose source failed: exponential, capped, with
//! jitter so that many control planes do not retry in step.

use std::time::Duration;

use rand::Rng;
use tokio_util::sync::CancellationToken;

/// The first retry waits about this long...
const INITIAL: Duration = Duration::from_millis(200);

/// ...each failure doubles it, up to this.
const MAX: Duration = Duration::from_secs(10);

/// Exponential backoff with "equal jitter": each delay is between half and
/// all of the current step.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    step: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self { step: INITIAL }
    }
}

impl Backoff {
    /// The delay before the next retry; doubles the step for the one after.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let step = self.step;
        self.step = (step * 2).min(MAX);
        let half = step / 2;
        half + rand::rng().random_range(Duration::ZERO..=half)
    }

    /// Sleeps for [`Self::next_delay`]; false if `shutdown` came first.
    pub(crate) async fn wait(&mut self, shutdown: &CancellationToken) -> bool {
        tokio::select! {
            () = shutdown.cancelled() => false,
            () = tokio::time::sleep(self.next_delay()) => true,
        }
    }

    /// Starts over after a success.
    pub(crate) fn reset(&mut self) {
        self.step = INITIAL;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_with_jitter_and_resets() {
        let mut backoff = Backoff::default();
        let mut step = INITIAL;
        for _ in 0..12 {
            let delay = backoff.next_delay();
            assert!(
                delay >= step / 2 && delay <= step,
                "{delay:?} for step {step:?}"
            );
            step = (step * 2).min(MAX);
        }
        assert!(backoff.next_delay() <= MAX);
        backoff.reset();
        assert!(backoff.next_delay() <= INITIAL);
    }
}
