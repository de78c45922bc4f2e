//! `patrol.v1`: the wire types and gRPC stubs of the patrol service.
//!
//! Generated from `proto/patrol/v1/patrol.proto` at build time. Only the service
//! edge (conversion modules in `patrol-services`) and clients use these types; the
//! dispatcher core never sees them.
//!
//! # Layout
//! - [`v1`]: messages, enums, `*_client` and `*_server` modules.
//! - [`shared`]: a `CommandRoom` server stub that streams pre-encoded events, so
//!   the server encodes each event once however many operators watch it.

/// Messages, enums, `*_client` and `*_server` modules of `patrol.v1`.
pub mod v1 {
    tonic::include_proto!("patrol.v1");

    /// Encoded `FileDescriptorSet` of `patrol.v1`, for gRPC server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/patrol_descriptor.bin"));
}

/// The `CommandRoom` server over pre-encoded [`EncodedWatchEvent`]s.
pub mod shared {
    use prost::bytes::{Buf, BufMut, Bytes};
    use prost::encoding::{DecodeContext, WireType, skip_field};

    include!(concat!(env!("OUT_DIR"), "/shared/patrol.v1.rs"));

    /// A `patrol.v1.WatchEvent` already encoded (without length prefix). Cloning
    /// it shares the bytes. It is only ever sent: decoding one skips every field
    /// (clients decode the ordinary `v1::WatchEvent`).
    #[derive(Clone, Debug, Default, PartialEq)]
    pub struct EncodedWatchEvent(pub Bytes);

    impl EncodedWatchEvent {
        /// Encodes `event` once.
        pub fn encode(event: &super::v1::WatchEvent) -> Self {
            Self(Bytes::from(prost::Message::encode_to_vec(event)))
        }
    }

    impl prost::Message for EncodedWatchEvent {
        fn encode_raw(&self, buf: &mut impl BufMut) {
            buf.put_slice(&self.0);
        }

        fn merge_field(
            &mut self,
            tag: u32,
            wire_type: WireType,
            buf: &mut impl Buf,
            ctx: DecodeContext,
        ) -> Result<(), prost::DecodeError> {
            skip_field(wire_type, tag, buf, ctx)
        }

        fn encoded_len(&self) -> usize {
            self.0.len()
        }

        fn clear(&mut self) {
            self.0 = Bytes::new();
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use prost::Message;

        #[test]
        fn encoded_event_is_the_same_on_the_wire() {
            let event = crate::v1::WatchEvent {
                seq: 42,
                time_unix_ms: 7,
                kind: Some(crate::v1::watch_event::Kind::Unit(crate::v1::Unit {
                    id: "u1".into(),
                    ..Default::default()
                })),
            };
            let shared = EncodedWatchEvent::encode(&event);
            let decoded = crate::v1::WatchEvent::decode(shared.encode_to_vec().as_slice()).unwrap();
            assert_eq!(decoded, event);
            assert_eq!(shared.encoded_len(), event.encoded_len());
        }
    }
}
