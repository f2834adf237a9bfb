//! Compiles `sluice/v1/*.proto` with protox (pure Rust, no system `protoc`)
//! and generates prost messages plus tonic client and server code; and the
//! client side of the small part of etcd's v3 API in `etcd/` that the
//! control plane's etcd provider uses.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = ["sluice/v1/snapshot.proto", "sluice/v1/middleware.proto"];
    for file in files {
        println!("cargo:rerun-if-changed={file}");
    }
    let descriptors = protox::compile(files, ["."])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join("sluice_descriptor.bin"),
        prost::Message::encode_to_vec(&descriptors),
    )?;
    tonic_prost_build::configure()
        // BTreeMap keeps map encoding, and so snapshot hashes, deterministic.
        .btree_map(".")
        .compile_fds(descriptors)?;

    let etcd_files = ["etcd/etcdserverpb/rpc.proto", "etcd/mvccpb/kv.proto"];
    for file in etcd_files {
        println!("cargo:rerun-if-changed={file}");
    }
    tonic_prost_build::configure()
        .build_server(false)
        .compile_fds(protox::compile(etcd_files, ["etcd"])?)?;
    Ok(())
}
