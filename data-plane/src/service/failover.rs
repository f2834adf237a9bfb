//! `failover` services: the main service while it has a healthy server, the
//! fallback otherwise.

use std::sync::Arc;

use super::{Selected, Service};

/// A failover service.
#[derive(Debug)]
pub(crate) struct Failover {
    main: Arc<Service>,
    fallback: Arc<Service>,
}

impl Failover {
    /// Main service with its fallback.
    pub(crate) fn new(main: Arc<Service>, fallback: Arc<Service>) -> Self {
        Self { main, fallback }
    }

    /// A server of the main service, else of the fallback.
    pub(crate) fn select(&self) -> Option<Selected<'_>> {
        if self.main.is_available() {
            self.main.select()
        } else {
            self.fallback.select()
        }
    }

    /// True when either service can take traffic.
    pub(crate) fn is_available(&self) -> bool {
        self.main.is_available() || self.fallback.is_available()
    }
}
