//! `weighted` services: a service of services, smooth weighted round robin
//! over the children that have a healthy server, with sticky sessions when
//! `sticky.cookie` is set (the cookie names the child service).

use std::sync::Arc;

use http::{HeaderMap, HeaderValue};

use super::sticky::Sticky;
use super::wrr::Rotation;
use super::{Service, Target};
use crate::shared::SharedState;

/// A weighted service.
#[derive(Debug)]
pub(crate) struct Weighted {
    children: Vec<Arc<Service>>,
    rotation: Rotation,
    /// Set with `sticky.cookie`.
    sticky: Option<Sticky>,
}

impl Weighted {
    /// A rotation named `name` over `(child name, child, weight)`, sticky
    /// when `sticky` is set.
    pub(crate) fn new(
        name: &str,
        children: Vec<(String, Arc<Service>, u32)>,
        sticky: Option<&sluice_proto::v1::StickyCookie>,
        shared: &SharedState,
    ) -> Self {
        let sticky = sticky
            .map(|cookie| Sticky::new(name, cookie, children.iter().map(|(name, _, _)| name)));
        let (children, weights): (Vec<_>, Vec<_>) = children
            .into_iter()
            .map(|(_, child, weight)| (child, weight))
            .unzip();
        Self {
            children,
            rotation: Rotation::new(weights, shared.position(name), shared.health.epoch()),
            sticky,
        }
    }

    /// Where a request with `headers` goes: into the child its sticky cookie
    /// names while that child can take traffic, else into the next available
    /// child (whose `Set-Cookie` is pushed when sessions are sticky).
    pub(crate) fn target<'a>(
        &'a self,
        headers: &HeaderMap,
        set_cookies: &mut Vec<&'a HeaderValue>,
    ) -> Option<Target<'a>> {
        let children = &self.children;
        let child = match &self.sticky {
            None => self.rotation.next(|i| children[i].is_available())?,
            Some(sticky) => match sticky
                .target(headers)
                .filter(|&i| children[i].is_available())
            {
                Some(i) => i,
                None => {
                    let i = self.rotation.next(|i| children[i].is_available())?;
                    set_cookies.push(sticky.set_cookie(i));
                    i
                }
            },
        };
        children[child].target(headers, set_cookies)
    }

    /// Whether a request is forwarded straight to an `http://` server,
    /// whichever child it goes to, with no cookie set.
    pub(crate) fn forwards_directly(&self) -> bool {
        self.sticky.is_none() && self.children.iter().all(|child| child.forwards_directly())
    }

    /// True when some child with a non-zero weight can take traffic.
    pub(crate) fn is_available(&self) -> bool {
        self.children
            .iter()
            .zip(self.rotation.weights())
            .any(|(child, &weight)| weight > 0 && child.is_available())
    }
}
