//! Ping batches: the zero-copy `PingBatch` decode, `parse_ping` against
//! prost's own decoding, and the stateless checks of `from_wire::pings`.

use bytes::Bytes;
use patrol_proto::shared::{PingBatch, parse_ping};
use patrol_proto::v1 as pb;
use proptest::prelude::*;
use prost::Message;

use super::{
    NOW, TOLERANCE_MS, byte_mutation, cases, hostile_f32, hostile_f64, hostile_string, hostile_time,
};
use crate::convert::from_wire;

fn ping() -> impl Strategy<Value = pb::Ping> {
    (
        hostile_string(),
        hostile_time(),
        hostile_f64(-180.0..=180.0),
        hostile_f64(-90.0..=90.0),
        proptest::option::of(hostile_f32(0.0..250.0)),
        proptest::option::of(hostile_f32(0.0..400.0)),
        proptest::option::of(hostile_f32(0.0..200_000.0)),
    )
        .prop_map(
            |(unit_id, time, lon, lat, speed, heading, accuracy)| pb::Ping {
                unit_id,
                fix_time_unix_ms: time,
                lon,
                lat,
                speed_mps: speed,
                heading_deg: heading,
                accuracy_m: accuracy,
            },
        )
}

/// One ping's bytes: a valid ping, maybe with a second (partial) ping's
/// fields after it (protobuf: the last one wins), then a byte mutation.
fn ping_bytes() -> impl Strategy<Value = Vec<u8>> {
    (ping(), proptest::option::of(ping()), byte_mutation()).prop_map(|(p, again, mutation)| {
        let mut bytes = p.encode_to_vec();
        if let Some(again) = again {
            bytes.extend(again.encode_to_vec());
        }
        mutation.apply(bytes)
    })
}

/// A batch's bytes: field 1 once per ping, maybe unknown fields between,
/// then a mutation of the whole.
fn batch_bytes() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::collection::vec((ping_bytes(), any::<bool>()), 0..24),
        byte_mutation(),
    )
        .prop_map(|(pings, mutation)| {
            let mut wire = Vec::new();
            for (ping, unknown) in pings {
                prost::encoding::bytes::encode(1, &ping, &mut wire);
                if unknown {
                    prost::encoding::uint64::encode(9, &7, &mut wire);
                }
            }
            mutation.apply(wire)
        })
}

/// `parse_ping` agrees with prost on every input: the same verdict and, when
/// both read it, the same fields.
fn agrees_with_prost(raw: &[u8]) {
    let ours = parse_ping(raw);
    let theirs = pb::Ping::decode(raw);
    match (&ours, &theirs) {
        (Ok(view), Ok(ping)) => {
            assert_eq!(view.unit_id, ping.unit_id);
            assert_eq!(view.fix_time_unix_ms, ping.fix_time_unix_ms);
            assert_eq!(view.lon.to_bits(), ping.lon.to_bits());
            assert_eq!(view.lat.to_bits(), ping.lat.to_bits());
            let bits = |v: Option<f32>| v.map(f32::to_bits);
            assert_eq!(bits(view.speed_mps), bits(ping.speed_mps));
            assert_eq!(bits(view.heading_deg), bits(ping.heading_deg));
            assert_eq!(bits(view.accuracy_m), bits(ping.accuracy_m));
        }
        (Err(_), Err(_)) => {}
        _ => panic!("parse_ping {ours:?} but prost {theirs:?} for {raw:02x?}"),
    }
}

/// The whole edge path of one received batch.
fn check_batch(wire: &[u8]) {
    let Ok(batch) = PingBatch::decode(wire) else {
        // A batch that is not protobuf is refused whole; prost refuses it too.
        assert!(pb::ReportPositionsRequest::decode(wire).is_err());
        return;
    };
    for raw in &batch.pings {
        agrees_with_prost(raw);
    }
    let n = batch.pings.len();
    let checked = from_wire::pings(batch.pings.clone(), NOW, TOLERANCE_MS, |_| Ok(()));
    assert_eq!(checked.kept.len(), checked.index.len());
    assert_eq!(
        checked.kept.len() as u64 + checked.refused.rejected,
        n as u64
    );
    for (raw, &i) in checked.kept.iter().zip(&checked.index) {
        assert_eq!(raw, &batch.pings[i as usize]);
        let view = parse_ping(raw).expect("a kept ping parses");
        assert!(!view.unit_id.is_empty());
        assert!(view.lon.is_finite() && (-180.0..=180.0).contains(&view.lon));
        assert!(view.lat.is_finite() && (-90.0..=90.0).contains(&view.lat));
        assert!(view.fix_time_unix_ms > 0 && view.fix_time_unix_ms <= NOW + TOLERANCE_MS);
        for v in [view.speed_mps, view.heading_deg, view.accuracy_m]
            .into_iter()
            .flatten()
        {
            assert!(v.is_finite() && v >= 0.0, "kept motion value {v}");
        }
    }
    for r in &checked.refused.rejections {
        assert!((r.index as usize) < n);
        assert!(!checked.index.contains(&(r.index as u32)));
        assert_ne!(r.reason, pb::PingRejectReason::Unspecified as i32);
        assert!(r.unit_id.chars().count() <= 128);
        // The message names what is wrong with the ping.
        let names_field = [
            "unit_id",
            "lon/lat",
            "fix_time_unix_ms",
            "speed_mps",
            "heading_deg",
            "accuracy_m",
            "not a valid Ping",
        ]
        .iter()
        .any(|f| r.message.contains(f));
        assert!(names_field, "rejection names no field: {:?}", r.message);
    }
}

proptest! {
    #![proptest_config(cases(512))]

    #[test]
    fn fuzz_ping_batches(wire in batch_bytes()) {
        check_batch(&wire);
    }

    #[test]
    fn fuzz_ping_bytes(raw in ping_bytes()) {
        agrees_with_prost(&raw);
        let mut wire = Vec::new();
        prost::encoding::bytes::encode(1, &raw, &mut wire);
        check_batch(&wire);
    }

    #[test]
    fn fuzz_ping_random_bytes(raw in prop::collection::vec(any::<u8>(), 0..256)) {
        agrees_with_prost(&raw);
        check_batch(&raw);
    }
}

#[test]
fn a_batch_of_nothing_but_garbage_fields_is_empty() {
    // Unknown fields only: an empty batch, not an error.
    let batch = PingBatch::decode(&[0x50, 0x01, 0x5a, 0x00][..]).unwrap();
    assert!(batch.pings.is_empty());
    let checked = from_wire::pings(
        vec![Bytes::from_static(&[0x19, 0x01])],
        NOW,
        TOLERANCE_MS,
        |_| Ok(()),
    );
    assert_eq!(checked.refused.rejected, 1);
    assert!(
        checked.refused.rejections[0]
            .message
            .contains("not a valid Ping")
    );
}
