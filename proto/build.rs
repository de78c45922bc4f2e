//! Compiles `patrol/v1/patrol.proto` with protox (pure Rust, no system protoc) and
//! generates prost messages and tonic client/server stubs. The encoded descriptor
//! set is written beside them for gRPC server reflection.
//!
//! A second pass generates server stubs for `CommandRoom` and `UnitService` over
//! two hand-written message types that are identical on the wire: the Watch
//! stream's `EncodedWatchEvent` (bytes encoded once, shared by every
//! subscriber) and the ping stream's `PingBatch` (pings kept as zero-copy byte
//! slices and parsed without allocating).

use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto = "patrol/v1/patrol.proto";
    println!("cargo:rerun-if-changed={proto}");
    let fds = protox::compile([proto], ["."])?;
    let out_dir = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out_dir.join("patrol_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(fds.clone())?;

    let mut command_room_only = fds;
    for file in &mut command_room_only.file {
        file.service
            .retain(|s| s.name() == "CommandRoom" || s.name() == "UnitService");
    }
    let shared_dir = out_dir.join("shared");
    std::fs::create_dir_all(&shared_dir)?;
    tonic_prost_build::configure()
        .build_client(false)
        .build_server(true)
        .extern_path(".patrol.v1", "crate::v1")
        .extern_path(".patrol.v1.WatchEvent", "crate::shared::EncodedWatchEvent")
        .extern_path(
            ".patrol.v1.ReportPositionsRequest",
            "crate::shared::PingBatch",
        )
        .out_dir(&shared_dir)
        .compile_fds(command_room_only)?;
    Ok(())
}
