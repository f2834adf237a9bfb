//! Smooth weighted round robin (nginx's algorithm), lock-free on the hot path.
//!
//! nginx keeps a running "current weight" per peer and picks the largest on
//! every request. The sequence this produces is periodic (its period is the
//! sum of the weights), so instead of mutating shared weights under a lock we
//! compute one period up front — weights 5, 1, 1 give `a a b a c a a` — and
//! walk it with an atomic counter.
//!
//! The period is recomputed only when the set of available targets changes,
//! which the health registry signals by bumping a global epoch. The counter
//! lives in the proxy's shared state, keyed by service name, so a snapshot
//! swap does not restart the rotation.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use arc_swap::ArcSwap;

/// Longest period kept: larger weight sums are scaled down proportionally.
const MAX_PERIOD: u64 = 1 << 16;

/// The rotation over the targets of one balancer.
#[derive(Debug)]
pub(crate) struct Rotation {
    weights: Box<[u32]>,
    position: Arc<AtomicUsize>,
    epoch: Arc<AtomicU64>,
    schedule: ArcSwap<Schedule>,
}

/// One period of the sequence, valid for one health epoch.
#[derive(Debug)]
struct Schedule {
    epoch: u64,
    order: Box<[u32]>,
}

impl Rotation {
    /// A rotation over targets with these weights (0 = never picked), walking
    /// with `position` and revalidated whenever `epoch` moves.
    pub(crate) fn new(
        weights: Vec<u32>,
        position: Arc<AtomicUsize>,
        epoch: Arc<AtomicU64>,
    ) -> Self {
        Self {
            weights: weights.into_boxed_slice(),
            position,
            epoch,
            // Forces a computation on first use.
            schedule: ArcSwap::from_pointee(Schedule {
                epoch: u64::MAX,
                order: Box::default(),
            }),
        }
    }

    /// The weight of each target.
    pub(crate) fn weights(&self) -> &[u32] {
        &self.weights
    }

    /// The next target among those for which `available` holds.
    pub(crate) fn next(&self, available: impl Fn(usize) -> bool) -> Option<usize> {
        let epoch = self.epoch.load(Ordering::Acquire);
        let mut schedule = self.schedule.load();
        if schedule.epoch != epoch {
            let weights: Vec<u32> = self
                .weights
                .iter()
                .enumerate()
                .map(|(i, &w)| if available(i) { w } else { 0 })
                .collect();
            self.schedule.store(Arc::new(Schedule {
                epoch,
                order: smooth_sequence(&weights).into_boxed_slice(),
            }));
            schedule = self.schedule.load();
        }
        match schedule.order.len() {
            0 => return None,
            // One target: nothing to rotate, and no shared counter to bump.
            1 => return Some(schedule.order[0] as usize),
            _ => {}
        }
        let n = self.position.fetch_add(1, Ordering::Relaxed);
        Some(schedule.order[n % schedule.order.len()] as usize)
    }
}

/// One period of nginx's smooth weighted round robin over `weights`, as
/// target indices. Zero weights are never picked; weights are reduced by
/// their greatest common divisor first.
pub(crate) fn smooth_sequence(weights: &[u32]) -> Vec<u32> {
    let divisor = weights.iter().copied().filter(|&w| w > 0).fold(0, gcd);
    if divisor == 0 {
        return Vec::new();
    }
    let mut weights: Vec<u64> = weights.iter().map(|&w| u64::from(w / divisor)).collect();
    let total: u64 = weights.iter().sum();
    if total > MAX_PERIOD {
        for w in weights.iter_mut().filter(|w| **w > 0) {
            *w = (*w * MAX_PERIOD / total).max(1);
        }
    }
    let total: i64 = weights.iter().map(|&w| w as i64).sum();
    let mut current = vec![0i64; weights.len()];
    let mut order = Vec::with_capacity(total as usize);
    for _ in 0..total {
        let mut best: Option<usize> = None;
        for (i, &w) in weights.iter().enumerate() {
            if w == 0 {
                continue;
            }
            current[i] += w as i64;
            if best.is_none_or(|b| current[i] > current[b]) {
                best = Some(i);
            }
        }
        let Some(best) = best else { break };
        current[best] -= total;
        order.push(best as u32);
    }
    order
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 { a } else { gcd(b, a % b) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn letters(order: &[u32]) -> String {
        order.iter().map(|&i| char::from(b'a' + i as u8)).collect()
    }

    #[test]
    fn nginx_sequence() {
        assert_eq!(letters(&smooth_sequence(&[5, 1, 1])), "aabacaa");
        assert_eq!(letters(&smooth_sequence(&[1, 1, 1])), "abc");
        assert_eq!(letters(&smooth_sequence(&[2, 1])), "aba");
        assert_eq!(letters(&smooth_sequence(&[10, 5])), "aba");
    }

    #[test]
    fn zero_weights_are_skipped() {
        assert_eq!(letters(&smooth_sequence(&[0, 3, 0])), "b");
        assert!(smooth_sequence(&[0, 0]).is_empty());
        assert!(smooth_sequence(&[]).is_empty());
    }

    #[test]
    fn large_weights_are_scaled() {
        let order = smooth_sequence(&[u32::MAX - 1, 1, 3]);
        assert!(order.len() as u64 <= MAX_PERIOD + 2);
        assert!(order.contains(&1) && order.contains(&2));
    }

    #[test]
    fn rotation_follows_availability_and_keeps_position() {
        let position = Arc::new(AtomicUsize::new(0));
        let epoch = Arc::new(AtomicU64::new(0));
        let rotation = Rotation::new(vec![5, 1, 1], position.clone(), epoch.clone());
        let picks: String = (0..7)
            .map(|_| char::from(b'a' + rotation.next(|_| true).unwrap() as u8))
            .collect();
        assert_eq!(picks, "aabacaa");
        // `a` goes down: the health epoch moves, the schedule is rebuilt.
        epoch.fetch_add(1, Ordering::Release);
        let picks: String = (0..4)
            .map(|_| char::from(b'a' + rotation.next(|i| i != 0).unwrap() as u8))
            .collect();
        // The position carries on (7 % 2 = 1): `b c` is walked from `c`.
        assert_eq!(picks, "cbcb");
        epoch.fetch_add(1, Ordering::Release);
        assert_eq!(rotation.next(|_| false), None);
        // A rotation rebuilt by a snapshot swap continues where the old one was.
        let before = position.load(Ordering::Relaxed);
        let rebuilt = Rotation::new(vec![5, 1, 1], position.clone(), epoch);
        rebuilt.next(|_| true);
        assert_eq!(position.load(Ordering::Relaxed), before + 1);
    }
}
