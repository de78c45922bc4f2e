//! `patrol.v1`: the wire types and gRPC stubs of the patrol service.
//!
//! Generated from `proto/patrol/v1/patrol.proto` at build time. Only the service
//! edge (conversion modules in `patrol-services`) and clients use these types; the
//! dispatcher core never sees them.
//!
//! # Layout
//! - [`v1`]: messages, enums, `*_client` and `*_server` modules.
//! - [`shared`]: server stubs over wire-identical types for the two hot paths:
//!   `CommandRoom` streams pre-encoded events (encoded once however many
//!   operators watch), `UnitService` reads ping batches without allocating.

/// Messages, enums, `*_client` and `*_server` modules of `patrol.v1`.
pub mod v1 {
    tonic::include_proto!("patrol.v1");

    /// Encoded `FileDescriptorSet` of `patrol.v1`, for gRPC server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/patrol_descriptor.bin"));
}

/// The client side of authentication: every call through an [`Authed`]
/// channel carries `authorization: Bearer <token>` (or nothing, for a server
/// with `auth.required = false` or a mutual-TLS client).
pub mod auth {
    use tonic::metadata::{Ascii, MetadataValue};
    use tonic::service::interceptor::InterceptedService;
    use tonic::transport::Channel;

    /// Adds the bearer token to each request.
    #[derive(Clone, Default)]
    pub struct Bearer(Option<MetadataValue<Ascii>>);

    impl Bearer {
        /// `token` as a bearer credential; `None` or empty: no credential.
        /// Fails when the token is not printable ASCII.
        pub fn new(
            token: Option<&str>,
        ) -> Result<Self, tonic::metadata::errors::InvalidMetadataValue> {
            match token.map(str::trim).filter(|t| !t.is_empty()) {
                None => Ok(Self(None)),
                Some(token) => Ok(Self(Some(format!("Bearer {token}").parse()?))),
            }
        }
    }

    impl tonic::service::Interceptor for Bearer {
        fn call(
            &mut self,
            mut request: tonic::Request<()>,
        ) -> Result<tonic::Request<()>, tonic::Status> {
            if let Some(value) = &self.0 {
                request
                    .metadata_mut()
                    .insert("authorization", value.clone());
            }
            Ok(request)
        }
    }

    /// Where a demo server writes its credentials and clients on the same
    /// machine look for them: `$XDG_RUNTIME_DIR/patrol/demo-credentials.json`,
    /// else `$HOME/.local/state/patrol/demo-credentials.json`, else the temp
    /// dir.
    pub fn demo_credentials_path() -> std::path::PathBuf {
        let base = std::env::var_os("XDG_RUNTIME_DIR")
            .filter(|d| !d.is_empty())
            .map(std::path::PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME")
                    .filter(|d| !d.is_empty())
                    .map(|h| std::path::PathBuf::from(h).join(".local/state"))
            })
            .unwrap_or_else(std::env::temp_dir);
        base.join("patrol").join("demo-credentials.json")
    }

    /// A channel whose calls carry a [`Bearer`] token.
    pub type Authed = InterceptedService<Channel, Bearer>;

    /// `channel` with `bearer` on every call.
    pub fn authed(channel: Channel, bearer: Bearer) -> Authed {
        InterceptedService::new(channel, bearer)
    }
}

/// `CommandRoom` and `UnitService` servers over [`EncodedWatchEvent`] and
/// [`PingBatch`].
pub mod shared {
    use prost::bytes::{Buf, BufMut, Bytes};
    use prost::encoding::{DecodeContext, WireType, decode_key, decode_varint, skip_field};

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

    /// A `patrol.v1.ReportPositionsRequest` as received: each ping is a
    /// zero-copy slice of the request buffer, parsed on use by [`parse_ping`].
    /// Decoding never fails on a bad ping, so one bad ping rejects only itself.
    /// It is only ever received: encoding it writes the pings back verbatim.
    #[derive(Clone, Debug, Default, PartialEq)]
    pub struct PingBatch {
        pub pings: Vec<Bytes>,
    }

    impl prost::Message for PingBatch {
        fn encode_raw(&self, buf: &mut impl BufMut) {
            for ping in &self.pings {
                prost::encoding::bytes::encode(1, ping, buf);
            }
        }

        fn merge_field(
            &mut self,
            tag: u32,
            wire_type: WireType,
            buf: &mut impl Buf,
            ctx: DecodeContext,
        ) -> Result<(), prost::DecodeError> {
            if tag == 1 {
                // Zero-copy: the tonic decode buffer hands out a slice of itself.
                let mut ping = Bytes::new();
                prost::encoding::bytes::merge(wire_type, &mut ping, buf, ctx)?;
                self.pings.push(ping);
                Ok(())
            } else {
                skip_field(wire_type, tag, buf, ctx)
            }
        }

        fn encoded_len(&self) -> usize {
            self.pings
                .iter()
                .map(|p| prost::encoding::bytes::encoded_len(1, p))
                .sum()
        }

        fn clear(&mut self) {
            self.pings.clear();
        }
    }

    /// One ping read in place: `unit_id` borrows the request buffer.
    #[derive(Clone, Copy, Debug, PartialEq)]
    pub struct PingView<'a> {
        pub unit_id: &'a str,
        pub fix_time_unix_ms: i64,
        pub lon: f64,
        pub lat: f64,
        pub speed_mps: Option<f32>,
        pub heading_deg: Option<f32>,
        pub accuracy_m: Option<f32>,
    }

    /// Why a ping's bytes are not a `patrol.v1.Ping`.
    #[derive(Clone, Debug, PartialEq)]
    pub enum PingParseError {
        /// The bytes are not a protobuf message of the expected shape.
        Malformed(String),
        /// `unit_id` is not UTF-8.
        UnitIdNotUtf8,
    }

    /// Parses one `patrol.v1.Ping` (fields as in `patrol.proto`) without
    /// allocating. Unknown fields are skipped, as protobuf requires.
    pub fn parse_ping(mut buf: &[u8]) -> Result<PingView<'_>, PingParseError> {
        let malformed = |e: prost::DecodeError| PingParseError::Malformed(e.to_string());
        let mut ping = PingView {
            unit_id: "",
            fix_time_unix_ms: 0,
            lon: 0.0,
            lat: 0.0,
            speed_mps: None,
            heading_deg: None,
            accuracy_m: None,
        };
        let fixed32 = |buf: &mut &[u8]| -> Result<f32, PingParseError> {
            if buf.len() < 4 {
                return Err(PingParseError::Malformed("truncated float".into()));
            }
            Ok(buf.get_f32_le())
        };
        let fixed64 = |buf: &mut &[u8]| -> Result<f64, PingParseError> {
            if buf.len() < 8 {
                return Err(PingParseError::Malformed("truncated double".into()));
            }
            Ok(buf.get_f64_le())
        };
        while !buf.is_empty() {
            let (tag, wire_type) = decode_key(&mut buf).map_err(malformed)?;
            match (tag, wire_type) {
                (1, WireType::LengthDelimited) => {
                    let len = decode_varint(&mut buf).map_err(malformed)? as usize;
                    if len > buf.len() {
                        return Err(PingParseError::Malformed("truncated unit_id".into()));
                    }
                    let (id, rest) = buf.split_at(len);
                    ping.unit_id =
                        std::str::from_utf8(id).map_err(|_| PingParseError::UnitIdNotUtf8)?;
                    buf = rest;
                }
                (2, WireType::Varint) => {
                    ping.fix_time_unix_ms = decode_varint(&mut buf).map_err(malformed)? as i64
                }
                (3, WireType::SixtyFourBit) => ping.lon = fixed64(&mut buf)?,
                (4, WireType::SixtyFourBit) => ping.lat = fixed64(&mut buf)?,
                (5, WireType::ThirtyTwoBit) => ping.speed_mps = Some(fixed32(&mut buf)?),
                (6, WireType::ThirtyTwoBit) => ping.heading_deg = Some(fixed32(&mut buf)?),
                (7, WireType::ThirtyTwoBit) => ping.accuracy_m = Some(fixed32(&mut buf)?),
                (1..=7, _) => {
                    return Err(PingParseError::Malformed(format!(
                        "field {tag} has wire type {wire_type:?}"
                    )));
                }
                _ => skip_field(wire_type, tag, &mut buf, DecodeContext::default())
                    .map_err(malformed)?,
            }
        }
        Ok(ping)
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

        #[test]
        fn ping_batches_parse_like_prost() {
            use crate::v1::{Ping, ReportPositionsRequest};
            let pings = vec![
                Ping {
                    unit_id: "car-1".into(),
                    fix_time_unix_ms: 1_700_000_000_123,
                    lon: 24.94,
                    lat: 60.17,
                    speed_mps: Some(8.5),
                    heading_deg: Some(270.0),
                    accuracy_m: None,
                },
                Ping {
                    unit_id: "".into(),
                    fix_time_unix_ms: -5,
                    lon: f64::NAN,
                    lat: -91.0,
                    speed_mps: None,
                    heading_deg: None,
                    accuracy_m: Some(3.0),
                },
                Ping {
                    unit_id: "ünit ✓".into(),
                    ..Default::default()
                },
            ];
            let wire = ReportPositionsRequest {
                pings: pings.clone(),
            }
            .encode_to_vec();
            let batch = PingBatch::decode(wire.as_slice()).unwrap();
            assert_eq!(batch.pings.len(), 3);
            for (raw, want) in batch.pings.iter().zip(&pings) {
                let got = parse_ping(raw).unwrap();
                assert_eq!(got.unit_id, want.unit_id);
                assert_eq!(got.fix_time_unix_ms, want.fix_time_unix_ms);
                assert_eq!(got.lon.to_bits(), want.lon.to_bits());
                assert_eq!(got.lat, want.lat);
                assert_eq!(
                    (got.speed_mps, got.heading_deg, got.accuracy_m),
                    (want.speed_mps, want.heading_deg, want.accuracy_m)
                );
            }
            // re-encoding is byte-identical
            assert_eq!(batch.encode_to_vec(), wire);
            // a bad ping is an error for that ping only
            assert_eq!(
                parse_ping(&[0x0a, 0x02, 0xff, 0xfe]),
                Err(PingParseError::UnitIdNotUtf8)
            );
            assert!(matches!(
                parse_ping(&[0x19, 0x01]),
                Err(PingParseError::Malformed(_))
            ));
            // unknown fields are skipped
            assert_eq!(
                parse_ping(&[0x50, 0x01, 0x0a, 0x01, b'x']).unwrap().unit_id,
                "x"
            );
        }
    }
}
