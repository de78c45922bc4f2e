//! A lean client for `CommandRoom.Watch`. A hundred subscribers each receive
//! every moved unit's fix four times a second; decoding all of that into prost
//! structs (a `String` per unit id) would make the bench, not the server, the
//! bottleneck on a 2-core machine. This codec scans the protobuf wire format
//! and keeps only what freshness needs: each position's `fix_time_unix_ms`.
//! Rare frames (snapshot end, resync) are decoded fully with prost; snapshot
//! chunks are skipped unread.

use patrol_proto::v1 as pb;
use prost::Message;
use prost::bytes::Buf;
use tonic::Status;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::Channel;

use crate::server::MAX_MESSAGE_BYTES;

/// What a subscriber needs from one `WatchEvent`.
#[derive(Debug, Clone, PartialEq)]
pub enum WatchFrame {
    /// A `PositionBatch`: the fix time (Unix ms) of each position in it.
    Positions {
        seq: u64,
        fix_times_ms: Vec<i64>,
    },
    SnapshotChunk,
    SnapshotEnd {
        seq: u64,
        units: u64,
    },
    Resync {
        missed: u64,
    },
    /// Any other change (unit, incident, order, ...).
    Other {
        seq: u64,
    },
}

/// A malformed message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanError(&'static str);

impl std::fmt::Display for ScanError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "malformed WatchEvent: {}", self.0)
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    fn done(&self) -> bool {
        self.pos >= self.buf.len()
    }

    fn varint(&mut self) -> Result<u64, ScanError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self
                .buf
                .get(self.pos)
                .ok_or(ScanError("truncated varint"))?;
            self.pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err(ScanError("varint too long"))
    }

    /// (field number, wire type)
    fn key(&mut self) -> Result<(u64, u8), ScanError> {
        let k = self.varint()?;
        Ok((k >> 3, (k & 7) as u8))
    }

    fn advance(&mut self, n: usize) -> Result<(), ScanError> {
        if self.buf.len() - self.pos < n {
            return Err(ScanError("truncated field"));
        }
        self.pos += n;
        Ok(())
    }

    fn len_delimited(&mut self) -> Result<&'a [u8], ScanError> {
        let n = usize::try_from(self.varint()?).map_err(|_| ScanError("length overflow"))?;
        let start = self.pos;
        self.advance(n)?;
        Ok(&self.buf[start..start + n])
    }

    fn skip(&mut self, wire: u8) -> Result<(), ScanError> {
        match wire {
            0 => self.varint().map(drop),
            1 => self.advance(8),
            2 => self.len_delimited().map(drop),
            5 => self.advance(4),
            _ => Err(ScanError("unsupported wire type")),
        }
    }
}

// Field numbers from patrol.proto.
const EVENT_SEQ: u64 = 1;
const EVENT_SNAPSHOT: u64 = 10;
const EVENT_SNAPSHOT_END: u64 = 11;
const EVENT_RESYNC: u64 = 12;
const EVENT_POSITIONS: u64 = 20;
const BATCH_POSITIONS: u64 = 1;
const POSITION_FIX: u64 = 2;
const FIX_TIME: u64 = 3;

/// Scans one encoded `WatchEvent`.
pub fn scan(buf: &[u8]) -> Result<WatchFrame, ScanError> {
    let mut r = Reader::new(buf);
    let mut seq = 0;
    let mut frame = None;
    while !r.done() {
        let (field, wire) = r.key()?;
        match (field, wire) {
            (EVENT_SEQ, 0) => seq = r.varint()?,
            (EVENT_POSITIONS, 2) => frame = Some(scan_batch(r.len_delimited()?)?),
            (EVENT_SNAPSHOT, 2) => {
                r.skip(wire)?;
                frame = Some(WatchFrame::SnapshotChunk);
            }
            (EVENT_SNAPSHOT_END | EVENT_RESYNC, 2) => {
                let event = pb::WatchEvent::decode(buf)
                    .map_err(|_| ScanError("bad snapshot_end or resync"))?;
                return Ok(match event.kind {
                    Some(pb::watch_event::Kind::SnapshotEnd(e)) => WatchFrame::SnapshotEnd {
                        seq: e.seq,
                        units: e.units,
                    },
                    Some(pb::watch_event::Kind::Resync(r)) => {
                        WatchFrame::Resync { missed: r.missed }
                    }
                    _ => WatchFrame::Other { seq: event.seq },
                });
            }
            _ => r.skip(wire)?,
        }
    }
    Ok(match frame {
        Some(WatchFrame::Positions { fix_times_ms, .. }) => {
            WatchFrame::Positions { seq, fix_times_ms }
        }
        Some(f) => f,
        None => WatchFrame::Other { seq },
    })
}

/// The fix time of an encoded `Fix` laid out as prost writes it (lon = 1 and
/// lat = 2 as 8-byte doubles, then fix_time_unix_ms = 3 as a varint), without
/// the generic field loop; `None` for any other layout.
fn fast_fix_time(fix: &[u8]) -> Option<i64> {
    const LON_KEY: u8 = (1 << 3) | 1;
    const LAT_KEY: u8 = (2 << 3) | 1;
    const TIME_KEY: u8 = (3 << 3) as u8;
    if fix.len() < 20 || fix[0] != LON_KEY || fix[9] != LAT_KEY || fix[18] != TIME_KEY {
        return None;
    }
    let mut r = Reader::new(&fix[19..]);
    r.varint().ok().map(|v| v as i64)
}

fn scan_batch(buf: &[u8]) -> Result<WatchFrame, ScanError> {
    let mut fix_times_ms = Vec::new();
    let mut r = Reader::new(buf);
    while !r.done() {
        let (field, wire) = r.key()?;
        if (field, wire) != (BATCH_POSITIONS, 2) {
            r.skip(wire)?;
            continue;
        }
        let mut pos = Reader::new(r.len_delimited()?);
        while !pos.done() {
            let (field, wire) = pos.key()?;
            if (field, wire) != (POSITION_FIX, 2) {
                pos.skip(wire)?;
                continue;
            }
            let fix = pos.len_delimited()?;
            if let Some(t) = fast_fix_time(fix) {
                fix_times_ms.push(t);
                continue;
            }
            let mut fix = Reader::new(fix);
            while !fix.done() {
                let (field, wire) = fix.key()?;
                if (field, wire) == (FIX_TIME, 0) {
                    fix_times_ms.push(fix.varint()? as i64);
                } else {
                    fix.skip(wire)?;
                }
            }
        }
    }
    Ok(WatchFrame::Positions {
        seq: 0,
        fix_times_ms,
    })
}

/// Encodes `WatchRequest` with prost, decodes `WatchEvent` with [`scan`].
#[derive(Debug, Clone, Copy, Default)]
pub struct WatchScanCodec;

#[derive(Debug, Clone, Copy, Default)]
pub struct RequestEncoder;

#[derive(Debug, Clone, Copy, Default)]
pub struct FrameDecoder;

impl Encoder for RequestEncoder {
    type Item = pb::WatchRequest;
    type Error = Status;

    fn encode(&mut self, item: Self::Item, dst: &mut EncodeBuf<'_>) -> Result<(), Self::Error> {
        item.encode(dst)
            .map_err(|e| Status::internal(e.to_string()))
    }
}

impl Decoder for FrameDecoder {
    type Item = WatchFrame;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Self::Item>, Self::Error> {
        let len = src.remaining();
        // The message is normally one contiguous chunk: scan it in place.
        let frame = if src.chunk().len() >= len {
            let frame = scan(&src.chunk()[..len]);
            src.advance(len);
            frame
        } else {
            scan(&src.copy_to_bytes(len))
        };
        frame.map(Some).map_err(|e| Status::internal(e.to_string()))
    }
}

impl Codec for WatchScanCodec {
    type Encode = pb::WatchRequest;
    type Decode = WatchFrame;
    type Encoder = RequestEncoder;
    type Decoder = FrameDecoder;

    fn encoder(&mut self) -> Self::Encoder {
        RequestEncoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        FrameDecoder
    }
}

/// Opens `CommandRoom.Watch` with the scanning codec.
pub async fn watch(
    channel: Channel,
    request: pb::WatchRequest,
) -> Result<tonic::Streaming<WatchFrame>, Status> {
    let mut grpc = tonic::client::Grpc::new(channel).max_decoding_message_size(MAX_MESSAGE_BYTES);
    grpc.ready()
        .await
        .map_err(|e| Status::unavailable(format!("service was not ready: {e}")))?;
    let path = PathAndQuery::from_static("/patrol.v1.CommandRoom/Watch");
    let mut req = tonic::Request::new(request);
    req.extensions_mut()
        .insert(tonic::GrpcMethod::new("patrol.v1.CommandRoom", "Watch"));
    Ok(grpc
        .server_streaming(req, path, WatchScanCodec)
        .await?
        .into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fix(t: i64) -> pb::Fix {
        pb::Fix {
            lon: 24.9,
            lat: 60.1,
            fix_time_unix_ms: t,
            speed_mps: Some(3.0),
            heading_deg: Some(90.0),
            accuracy_m: None,
        }
    }

    fn encode(seq: u64, kind: pb::watch_event::Kind) -> Vec<u8> {
        pb::WatchEvent {
            seq,
            time_unix_ms: 1_700_000_000_000,
            kind: Some(kind),
        }
        .encode_to_vec()
    }

    #[test]
    fn positions_yield_their_fix_times() {
        let times = [1_700_000_000_123i64, 1, 1_700_000_000_999];
        let batch = pb::PositionBatch {
            left_area: Default::default(),
            positions: times
                .iter()
                .enumerate()
                .map(|(i, &t)| pb::UnitPosition {
                    unit_id: format!("unit-{i}"),
                    fix: Some(fix(t)),
                })
                .collect(),
        };
        let bytes = encode(42, pb::watch_event::Kind::Positions(batch));
        assert_eq!(
            scan(&bytes),
            Ok(WatchFrame::Positions {
                seq: 42,
                fix_times_ms: times.to_vec()
            })
        );
        // a position without a fix contributes nothing
        let bytes = encode(
            1,
            pb::watch_event::Kind::Positions(pb::PositionBatch {
                left_area: Default::default(),
                positions: vec![pb::UnitPosition {
                    unit_id: "x".into(),
                    fix: None,
                }],
            }),
        );
        assert_eq!(
            scan(&bytes),
            Ok(WatchFrame::Positions {
                seq: 1,
                fix_times_ms: vec![]
            })
        );
    }

    #[test]
    fn fixes_in_any_layout_are_read() {
        // lon = 0 is not encoded at all, so the fast path does not apply.
        let mut odd = fix(77);
        odd.lon = 0.0;
        odd.speed_mps = None;
        let batch = pb::PositionBatch {
            left_area: Default::default(),
            positions: vec![
                pb::UnitPosition {
                    unit_id: "a".into(),
                    fix: Some(odd),
                },
                pb::UnitPosition {
                    unit_id: "b".into(),
                    fix: Some(fix(1_700_000_000_000)),
                },
            ],
        };
        let bytes = encode(5, pb::watch_event::Kind::Positions(batch));
        assert_eq!(
            scan(&bytes),
            Ok(WatchFrame::Positions {
                seq: 5,
                fix_times_ms: vec![77, 1_700_000_000_000]
            })
        );
        assert_eq!(fast_fix_time(&fix(42).encode_to_vec()), Some(42));
    }

    #[test]
    fn rare_frames_are_recognised() {
        let end = encode(
            7,
            pb::watch_event::Kind::SnapshotEnd(pb::SnapshotEnd {
                seq: 7,
                units: 10_000,
                cameras: 3,
                incidents: 0,
                log_epoch: 1,
            }),
        );
        assert_eq!(
            scan(&end),
            Ok(WatchFrame::SnapshotEnd {
                seq: 7,
                units: 10_000
            })
        );
        let resync = encode(
            0,
            pb::watch_event::Kind::Resync(pb::Resync {
                reason: pb::ResyncReason::Lagged as i32,
                missed: 99,
            }),
        );
        assert_eq!(scan(&resync), Ok(WatchFrame::Resync { missed: 99 }));
        let chunk = encode(
            7,
            pb::watch_event::Kind::Snapshot(pb::SnapshotChunk {
                units: vec![pb::Unit {
                    id: "u".into(),
                    fix: Some(fix(5)),
                    ..Default::default()
                }],
                ..Default::default()
            }),
        );
        assert_eq!(scan(&chunk), Ok(WatchFrame::SnapshotChunk));
        let unit = encode(9, pb::watch_event::Kind::Unit(pb::Unit::default()));
        assert_eq!(scan(&unit), Ok(WatchFrame::Other { seq: 9 }));
    }

    #[test]
    fn truncated_input_is_an_error_not_a_panic() {
        let batch = pb::PositionBatch {
            left_area: Default::default(),
            positions: vec![pb::UnitPosition {
                unit_id: "unit-1".into(),
                fix: Some(fix(12345)),
            }],
        };
        let bytes = encode(3, pb::watch_event::Kind::Positions(batch));
        for cut in 1..bytes.len() {
            let _ = scan(&bytes[..cut]);
        }
        assert!(scan(&bytes[..bytes.len() - 1]).is_err());
    }
}
