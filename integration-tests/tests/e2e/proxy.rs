//! Proxy scenarios: routing, hot swap, resilience, streaming, shutdown.
