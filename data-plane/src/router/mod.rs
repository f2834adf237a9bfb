//! Routing: the request path normalised ([`path`]), rules compiled into
//! matchers ([`matcher`]) and an index that finds the highest-priority
//! matching router of an entry point ([`index`]); [`lookup`] offers that
//! index on its own, for benchmarks.

mod index;
mod lookup;
mod matcher;
mod path;

pub(crate) use index::{Route, RouterTable, default_priority};
pub use lookup::RouterIndex;
pub use matcher::MatcherError;
pub(crate) use matcher::{Matcher, RequestView, canonical_host};
pub(crate) use path::normalize;
