//! `patrol.v1`: the wire types and gRPC stubs of the patrol service.
//!
//! Generated from `proto/patrol/v1/patrol.proto` at build time. Only the service
//! edge (conversion modules in `patrol-services`) and clients use these types; the
//! dispatcher core never sees them.

/// Messages, enums, `*_client` and `*_server` modules of `patrol.v1`.
pub mod v1 {
    tonic::include_proto!("patrol.v1");

    /// Encoded `FileDescriptorSet` of `patrol.v1`, for gRPC server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/patrol_descriptor.bin"));
}
