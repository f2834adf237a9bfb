//! `failover` services: the main service while it has a healthy server, the
//! fallback otherwise.

use std::sync::Arc;

use http::{HeaderMap, HeaderValue};

use super::{Service, Target};

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

    /// Where a request with `headers` goes in the main service, else in the
    /// fallback.
    pub(crate) fn target<'a>(
        &'a self,
        headers: &HeaderMap,
        set_cookies: &mut Vec<&'a HeaderValue>,
    ) -> Option<Target<'a>> {
        if self.main.is_available() {
            self.main.target(headers, set_cookies)
        } else {
            self.fallback.target(headers, set_cookies)
        }
    }

    /// Whether a request is forwarded straight to an `http://` server,
    /// whichever service it goes to, with no cookie set.
    pub(crate) fn forwards_directly(&self) -> bool {
        self.main.forwards_directly() && self.fallback.forwards_directly()
    }

    /// True when either service can take traffic.
    pub(crate) fn is_available(&self) -> bool {
        self.main.is_available() || self.fallback.is_available()
    }
}
