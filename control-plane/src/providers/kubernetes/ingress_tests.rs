//! Ingress building, on clusters made from manifests.
