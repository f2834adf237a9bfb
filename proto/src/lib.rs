//! The snapshot protocol of Sluice: the only contract between the control
//! plane and its data-plane proxies.
//!
//! Start with [`v1::Snapshot`] (what a proxy serves) and
//! [`v1::snapshot_service_server::SnapshotService`] (how it gets there). The
//! `.proto` sources live in `proto/sluice/v1/`.

/// Generated messages and the `SnapshotService` client and server.
pub mod v1 {
    #![allow(unreachable_pub, clippy::all)]
    tonic::include_proto!("sluice.v1");
}

/// The client side of the part of etcd's v3 API that the control plane's
/// etcd provider uses (`KV.Range`, `Watch.Watch`, `Auth.Authenticate`),
/// wire-compatible with etcd; the `.proto` subsets live in `proto/etcd/`.
pub mod etcd {
    /// etcd's `etcdserverpb` package: the services and their messages.
    pub mod etcdserverpb {
        #![allow(unreachable_pub, clippy::all)]
        tonic::include_proto!("etcdserverpb");
    }

    /// etcd's `mvccpb` package: keys, values and watch events.
    pub mod mvccpb {
        #![allow(unreachable_pub, clippy::all)]
        tonic::include_proto!("mvccpb");
    }
}

mod resources;

pub use resources::ResourceNames;

/// Encoded `FileDescriptorSet` of the protocol, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/sluice_descriptor.bin"));
