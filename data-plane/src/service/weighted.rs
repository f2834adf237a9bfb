//! `weighted` services: a service of services, smooth weighted round robin
//! over the children that have a healthy server.

use std::sync::Arc;

use super::wrr::Rotation;
use super::{Selected, Service};
use crate::shared::SharedState;

/// A weighted service.
#[derive(Debug)]
pub(crate) struct Weighted {
    children: Vec<Arc<Service>>,
    rotation: Rotation,
}

impl Weighted {
    /// A rotation named `name` over `(child, weight)` pairs.
    pub(crate) fn new(
        name: &str,
        children: Vec<(Arc<Service>, u32)>,
        shared: &SharedState,
    ) -> Self {
        let (children, weights): (Vec<_>, Vec<_>) = children.into_iter().unzip();
        Self {
            children,
            rotation: Rotation::new(weights, shared.position(name), shared.health.epoch()),
        }
    }

    /// A server of the next available child.
    pub(crate) fn select(&self) -> Option<Selected<'_>> {
        let children = &self.children;
        let child = self.rotation.next(|i| children[i].is_available())?;
        children[child].select()
    }

    /// True when some child with a non-zero weight can take traffic.
    pub(crate) fn is_available(&self) -> bool {
        self.children
            .iter()
            .zip(self.rotation.weights())
            .any(|(child, &weight)| weight > 0 && child.is_available())
    }
}
