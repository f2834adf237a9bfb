//! Compiles `sluice/v1/*.proto` with protox (pure Rust, no system `protoc`)
//! and generates prost messages plus tonic client and server code.

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
    Ok(())
}
