//! Harness for Sluice's integration scenarios.
