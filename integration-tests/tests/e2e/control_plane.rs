//! Control-plane scenarios: gRPC, Watch protocol, validation, debounce.
